package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

const testUsage = `usage: fess test --run RUN [--data PREPARED] --out DIR [--quiet]

Evaluates a trained run (best.safetensors, else last.safetensors; an older
run's best.ckpt/last.ckpt are read too, and a best checkpoint that cannot be
loaded falls back to the last one with a warning) on the test split of the
prepared data (default: the data it was trained on). Writes DIR/metrics.csv
(one row per case and region: dice, iou, precision, sensitivity, specificity, hd,
hd95, assd in mm on the prepared grid, and the confusion counts),
DIR/summary.json ({"cases": n, "metrics": {"dice": {"mean","std","sem",
"median","n","nans"}, …}}) and the predicted masks DIR/pred/<id>.nii.gz.
Metrics are per case and region, on the prediction thresholded at 0.5
(softmax classes: the arg-max); metrics.csv has one row per case and region
(columns case, region, the metrics, tp, fp, fn, tn, and for the BraTS
regions wt, tc, et the lesion-wise lesion_dice, lesion_hd95, lesion_tp,
lesion_fn, lesion_fp); summary.json adds "regions": {name: {metric:
aggregate}} when there are several. With several regions pred/<id>.nii.gz
is a label map in the data's convention. See docs/metrics.md.

example:
  fess test --run runs/fess --out runs/fess/test`

func init() {
	register("test", "evaluate a run on the test split: metrics.csv, summary.json",
		func(args []string) error { return runTest(args, os.Stdout, os.Stderr) })
}

func runTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("test", testUsage)
	run := fs.String("run", "", "run folder")
	data := fs.String("data", "", "prepared data (default: the run's)")
	out := fs.String("out", "", "output folder")
	quiet := fs.Bool("quiet", false, "no progress")
	if err := parseFlags(fs, testUsage, args); err != nil {
		return err
	}
	if *run == "" || *out == "" || fs.NArg() > 0 {
		return errs.Usage("test: --run and --out are required\n%s", testUsage)
	}
	var prog io.Writer
	if !*quiet {
		prog = stderr
	}
	sum, _, err := train.Evaluate(*run, *data, *out, prog)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(sum.Metrics))
	for n := range sum.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%d test cases (%s)\n%-12s %10s %10s %10s %10s\n", sum.Cases, *out, "metric", "mean", "std", "sem", "median")
	for _, n := range names {
		s := sum.Metrics[n]
		fmt.Fprintf(stdout, "%-12s %10.4f %10.4f %10.4f %10.4f\n", n, s.Mean, s.Std, s.SEM, s.Median)
	}
	if len(sum.Regions) > 0 {
		cols := []string{"dice", "iou", "hd95", "lesion_dice", "lesion_hd95"}
		fmt.Fprintf(stdout, "\nper region (mean ± SEM; the table above is each case's mean over its regions)\n%-10s", "region")
		for _, c := range cols {
			fmt.Fprintf(stdout, " %19s", c)
		}
		fmt.Fprintln(stdout)
		for _, r := range sum.RegionOrder {
			fmt.Fprintf(stdout, "%-10s", r)
			for _, c := range cols {
				m, ok := sum.Regions[r][c]
				if !ok {
					fmt.Fprintf(stdout, " %19s", "-")
					continue
				}
				fmt.Fprintf(stdout, " %19s", fmt.Sprintf("%.4f ± %.4f", m.Mean, m.SEM))
			}
			fmt.Fprintln(stdout)
		}
	}
	return nil
}

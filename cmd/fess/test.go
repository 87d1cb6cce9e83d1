package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/infer"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
	"github.com/fess-seg/fess/train"
)

const testUsage = `usage: fess test (--run RUN | --runs R0,R1,…) [--data PREPARED] --out DIR
                 [--tta] [--overlap 0.5] [--keep-largest] [--native] [--threads N] [--quiet]
                 [--checkpoint best|last|ema] [--precision fp32|bf16]

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

A patch-trained run (fess train --patch) predicts each whole test case by
sliding window (windows of its patch, Gaussian-weighted, --overlap between
neighbours) and is scored in native space: the prediction is put back into
the case's own grid (crop restored, spacing undone) and compared with the
raw label file at its spacing; pred/ then holds native-grid label maps.
--native does the same for a cube-mode run. --runs averages the
probabilities of several runs (e.g. the folds of fess train --fold) before
thresholding. --tta averages each window's outputs over the 8 mirrorings;
--keep-largest keeps only the largest connected component of each region.
summary.json's "space" says where the metrics were computed.
--checkpoint picks the weights: best (default, as above), last
(last.safetensors only) or ema (ema.safetensors, the EMA weights of a run
trained with fess train --ema; a run without them is refused, exit 2).
--precision bf16 runs the network's matrix products with bfloat16
operands (float32 accumulation; needs AVX-512-BF16); default fp32.
--threads
defaults to fess train's (every CPU the process may use, or
SLURM_CPUS_PER_TASK if smaller); results are bit-identical for a given count.

examples:
  fess test --run runs/fess --out runs/fess/test
  fess test --runs runs/f0,runs/f1,runs/f2,runs/f3,runs/f4 --tta --out runs/ensemble-test`

func init() {
	register("test", "evaluate a run on the test split: metrics.csv, summary.json",
		func(args []string) error { return runTest(args, os.Stdout, os.Stderr) })
}

func runTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("test", testUsage)
	run := fs.String("run", "", "run folder")
	runsFlag := fs.String("runs", "", "several run folders (comma list) whose probabilities are averaged")
	data := fs.String("data", "", "prepared data (default: the run's)")
	out := fs.String("out", "", "output folder")
	quiet := fs.Bool("quiet", false, "no progress")
	threads := fs.Int("threads", 0, "worker threads (0: every CPU the process may use, or SLURM_CPUS_PER_TASK if smaller)")
	precision := fs.String("precision", "fp32", "matrix-product arithmetic: fp32, or bf16 (needs AVX-512-BF16)")
	winograd := fs.Int("winograd", 2, "Winograd output tile of the 3×3×3 convolutions: 2 (F(2,3)), or 4 (F(4,3): faster, about ten times the float32 rounding error)")
	var iopt train.InferOptions
	addInferFlags(fs, &iopt)
	fs.StringVar(&iopt.Checkpoint, "checkpoint", "best", "weights to test: best, last or ema (ema.safetensors of a run trained with --ema)")
	if err := parseFlags(fs, testUsage, args); err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := train.SetPrecision(*precision); err != nil {
		return err
	}
	if err := train.SetWinograd(*winograd); err != nil {
		return err
	}
	if (*run == "") == (*runsFlag == "") || *out == "" || fs.NArg() > 0 {
		return errs.Usage("test: --out and one of --run or --runs are required\n%s", testUsage)
	}
	if err := checkInferFlags(&iopt); err != nil {
		return err
	}
	if !slices.Contains(train.Checkpoints, iopt.Checkpoint) {
		return errs.Usage("test: --checkpoint %q: want one of %s\n%s", iopt.Checkpoint, strings.Join(train.Checkpoints, ", "), testUsage)
	}
	runs := []string{*run}
	if *runsFlag != "" {
		var err error
		if runs, err = train.RunsArg(*runsFlag); err != nil {
			return err
		}
	}
	var prog io.Writer
	if !*quiet {
		prog = stderr
	}
	sum, _, err := train.EvaluateRuns(runs, *data, *out, iopt, prog)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(sum.Metrics))
	for n := range sum.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%d test cases (%s; metrics in the %s grid)\n%-12s %10s %10s %10s %10s\n", sum.Cases, *out, sum.Space, "metric", "mean", "std", "sem", "median")
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

// setThreads applies --threads of test and predict as fess train does
// (0: train.DefaultThreads).
func setThreads(n int) error {
	if n < 0 {
		return errs.Usage("--threads %d: want ≥ 1 (or 0: all CPUs)", n)
	}
	if n == 0 {
		n = train.DefaultThreads()
	}
	tensor.SetThreads(n)
	kernels.SetThreads(n)
	return nil
}

// addInferFlags registers the whole-case inference flags of test and predict.
func addInferFlags(fs *flag.FlagSet, o *train.InferOptions) {
	fs.BoolVar(&o.TTA, "tta", false, "test-time augmentation: mean over the 8 mirrorings")
	fs.Float64Var(&o.Overlap, "overlap", 0.5, "sliding-window overlap in [0, 1) (patch-trained runs)")
	fs.BoolVar(&o.KeepLargest, "keep-largest", false, "keep only the largest connected component of each region")
	fs.BoolVar(&o.Native, "native", false, "cube-mode runs: score in each case's native grid (patch runs always do)")
}

// checkInferFlags validates --overlap and maps 0 to the sliding window's
// "no overlap".
func checkInferFlags(o *train.InferOptions) error {
	if !(o.Overlap >= 0 && o.Overlap < 1) {
		return errs.Usage("--overlap %g: want a fraction in [0, 1)", o.Overlap)
	}
	if o.Overlap == 0 {
		o.Overlap = infer.NoOverlap
	}
	return nil
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/volume"
)

const metricsUsage = `usage: fess metrics --pred A --truth B [--threshold T] [--json]
                    [--regions wt,tc,et --convention brats2021|brats2023|msd [--challenge GLI]]

Scores the predicted mask A against the true mask B (any two volume files
of the same dimensions: .nii, .nii.gz, .hdr/.img, .mha/.mhd, .npy). Nonzero
voxels are foreground; with --threshold, voxels of A at or above T are
(for probability maps). Surface distances are in mm, with the voxel spacing
of B. Empty masks: both empty gives Dice = IoU = 1 and distances 0; one empty
gives Dice 0 and distances equal to the image diagonal; other 0/0 ratios are
NaN (null in JSON). See docs/metrics.md for the formulas.

With --regions, A and B are label maps in the --convention's label values
(BraTS 2015–2021: 1 necrosis, 2 oedema, 4 enhancing; BraTS 2023: 1, 2, 3;
MSD: 1 oedema, 2 non-enhancing, 3 enhancing; abdomenct1k: organs 1–4) and
each region (wt, tc, et, an organ, or label values joined by +) is scored
on its own. For the BraTS regions wt, tc and et the BraTS 2023 lesion-wise
Dice and HD95 and the counts of true-positive, false-negative and
false-positive lesions are added (--challenge GLI, SSA, PED: dilation 3,
lesions over 50 mm³; MEN: dilation 1; MET: dilation 1, over 2 mm³; the
default is the BraTS-XXX- prefix of the truth file's name, else GLI).
The JSON is then {"region": {metrics…, "lesion_dice", …}, …}.

example:
  fess metrics --pred case001_pred.nii.gz --truth case001_seg.nii.gz --json`

func init() {
	register("metrics", "metrics (Dice … HD95) between a predicted and a true mask file",
		func(args []string) error { return runMetrics(args, os.Stdout, os.Stderr) })
}

func runMetrics(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("metrics", metricsUsage)
	predPath := fs.String("pred", "", "predicted mask `file`")
	truthPath := fs.String("truth", "", "true mask `file`")
	threshold := fs.Float64("threshold", 0.5, "if given, foreground is a prediction ≥ `T` instead of nonzero")
	asJSON := fs.Bool("json", false, "print the metrics as JSON")
	regions := fs.String("regions", "", "score these regions of label maps, e.g. wt,tc,et")
	conv := fs.String("convention", "", "label convention of --regions: "+strings.Join(dataset.Conventions, ", "))
	challenge := fs.String("challenge", "", "BraTS 2023 sub-challenge for the lesion-wise options (GLI, SSA, PED, MEN, MET)")
	if err := parseFlags(fs, metricsUsage, args); err != nil {
		return err
	}
	if *predPath == "" || *truthPath == "" || fs.NArg() > 0 {
		return errs.Usage("metrics: need --pred and --truth (and no other arguments)\n%s", metricsUsage)
	}
	pv, err := volume.Read(*predPath)
	if err != nil {
		return err
	}
	tv, err := volume.Read(*truthPath)
	if err != nil {
		return err
	}
	for _, v := range []struct {
		path string
		vol  *volume.Volume
	}{{*predPath, pv}, {*truthPath, tv}} {
		if v.vol.Dims[3] > 1 {
			return errs.Input(v.path, "has %d volumes; a mask must be 3-D", v.vol.Dims[3])
		}
	}
	if pv.Dims != tv.Dims {
		return errs.Input(*predPath, "dims %s differ from those of %s, %s",
			dimsString(pv.Dims), *truthPath, dimsString(tv.Dims))
	}
	for i := range 3 {
		if math.Abs(pv.Spacing[i]-tv.Spacing[i]) > 1e-3*tv.Spacing[i] {
			fmt.Fprintf(stderr, "fess metrics: warning: %s has spacing %v, %s has %v; using the latter\n",
				*predPath, pv.Spacing, *truthPath, tv.Spacing)
			break
		}
	}
	thresholded := false
	fs.Visit(func(f *flag.Flag) { thresholded = thresholded || f.Name == "threshold" })
	n := tv.NumVoxels()
	if *regions != "" {
		if thresholded {
			return errs.Usage("metrics: --threshold applies to probability maps, --regions to label maps; give one")
		}
		return regionMetrics(stdout, *predPath, *truthPath, pv, tv, *regions, *conv, *challenge, *asJSON)
	}
	if *conv != "" || *challenge != "" {
		return errs.Usage("metrics: --convention and --challenge need --regions")
	}
	var pred []uint8
	if !thresholded {
		pred = nonzero(pv.Data[:n])
	} else {
		pred = metric.FromProbabilities(pv.Data[:n], float32(*threshold))
	}
	truth := nonzero(tv.Data[:n])
	dims := [3]int{tv.Dims[0], tv.Dims[1], tv.Dims[2]}
	r, err := metric.Compute(pred, truth, dims, tv.Spacing)
	if err != nil {
		return errs.Input(*truthPath, "%v", err)
	}
	if *asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "pred   %s\ntruth  %s\n", *predPath, *truthPath)
	fmt.Fprintf(stdout, "image  %s voxels, spacing %g×%g×%g mm\n\n", dimsString(tv.Dims),
		tv.Spacing[0], tv.Spacing[1], tv.Spacing[2])
	for _, name := range metric.Names {
		v, _ := r.Get(name)
		unit := ""
		if name == "hd" || name == "hd95" || name == "assd" {
			unit = " mm"
		}
		if math.IsNaN(v) {
			fmt.Fprintf(stdout, "%-12s NaN (0/0)\n", name)
		} else {
			fmt.Fprintf(stdout, "%-12s %.6f%s\n", name, v, unit)
		}
	}
	_, err = fmt.Fprintf(stdout, "\ntp %d  fp %d  fn %d  tn %d\n", r.TP, r.FP, r.FN, r.TN)
	return err
}

// regionMetrics scores each region of two label maps.
func regionMetrics(stdout io.Writer, predPath, truthPath string, pv, tv *volume.Volume, regions, conv, challenge string, asJSON bool) error {
	if conv == "" {
		return errs.Usage("metrics: --regions needs --convention (%s)", strings.Join(dataset.Conventions, ", "))
	}
	task, err := dataset.NewTask(regions, "", conv)
	if err != nil {
		return err
	}
	n := tv.NumVoxels()
	pm, err := task.RegionMasks(pv.Data[:n])
	if err != nil {
		return errs.Input(predPath, "%v", err)
	}
	tm, err := task.RegionMasks(tv.Data[:n])
	if err != nil {
		return errs.Input(truthPath, "%v", err)
	}
	if challenge == "" {
		if m := regexp.MustCompile(`BraTS-([A-Za-z]+)-`).FindStringSubmatch(filepath.Base(truthPath)); m != nil {
			challenge = m[1]
		}
	}
	lopt, err := metric.LesionOptionsFor(challenge)
	if err != nil {
		return errs.Usage("metrics: --challenge: %v", err)
	}
	dims := [3]int{tv.Dims[0], tv.Dims[1], tv.Dims[2]}
	out := map[string]map[string]any{}
	for k, reg := range task.Regions {
		r, err := metric.Compute(pm[k], tm[k], dims, tv.Spacing)
		if err != nil {
			return errs.Input(truthPath, "%v", err)
		}
		row := map[string]any{}
		for _, name := range metric.Names {
			v, _ := r.Get(name)
			row[name] = jsonNum(v)
		}
		row["tp"], row["fp"], row["fn"], row["tn"] = r.TP, r.FP, r.FN, r.TN
		if task.IsBraTS() && (reg.Name == "wt" || reg.Name == "tc" || reg.Name == "et") {
			lw, err := metric.LesionWise(pm[k], tm[k], dims, tv.Spacing, lopt)
			if err != nil {
				return errs.Input(truthPath, "%v", err)
			}
			row["lesion_dice"], row["lesion_hd95"] = jsonNum(lw.Dice), jsonNum(lw.HD95)
			row["lesion_tp"], row["lesion_fn"], row["lesion_fp"] = lw.TP, lw.FN, lw.FP
		}
		out[reg.Name] = row
	}
	if asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "pred   %s\ntruth  %s\nlabels %s convention\n\n", predPath, truthPath, task.Convention)
	cols := append(append([]string(nil), metric.Names...), "lesion_dice", "lesion_hd95", "lesion_tp", "lesion_fn", "lesion_fp")
	fmt.Fprintf(stdout, "%-8s", "region")
	for _, c := range cols {
		fmt.Fprintf(stdout, " %11s", c)
	}
	fmt.Fprintln(stdout)
	for _, reg := range task.Regions {
		fmt.Fprintf(stdout, "%-8s", reg.Name)
		for _, c := range cols {
			switch v := out[reg.Name][c].(type) {
			case jsonNum:
				fmt.Fprintf(stdout, " %11.4f", float64(v))
			case nil:
				fmt.Fprintf(stdout, " %11s", "-")
			default:
				fmt.Fprintf(stdout, " %11v", v)
			}
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// jsonNum writes NaN as null.
type jsonNum float64

func (f jsonNum) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// nonzero returns the mask of the voxels that are neither 0 nor NaN.
func nonzero(data []float32) []uint8 {
	m := make([]uint8, len(data))
	for i, v := range data {
		if v != 0 && v == v {
			m[i] = 1
		}
	}
	return m
}

func dimsString(d [4]int) string {
	if d[3] > 1 {
		return fmt.Sprintf("%d×%d×%d×%d", d[0], d[1], d[2], d[3])
	}
	return fmt.Sprintf("%d×%d×%d", d[0], d[1], d[2])
}

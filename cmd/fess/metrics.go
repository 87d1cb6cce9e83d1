package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/volume"
)

const metricsUsage = `usage: fess metrics --pred A --truth B [--threshold T] [--json]

Scores the predicted mask A against the true mask B (any two volume files
of the same dimensions: .nii, .nii.gz, .hdr/.img, .mha/.mhd, .npy). Nonzero
voxels are foreground; with --threshold, voxels of A at or above T are
(for probability maps). Surface distances are in mm, with the voxel spacing
of B. Empty masks: both empty gives Dice = IoU = 1 and distances 0; one empty
gives Dice 0 and distances equal to the image diagonal; other 0/0 ratios are
NaN (null in JSON). See package metric for the formulas.

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

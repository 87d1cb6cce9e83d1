package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
)

const prepareUsage = `usage: fess prepare --in DIR [--layout auto|brats2015|brats2017|msd|abdomenct1k|npy] --out DIR
                    [--size 64] [--target wt|tc|et|any|LABELS] [--modality flair|t1|t1ce|t2]
                    [--seed 42] [--split 0.7,0.1,0.2] [--window -200,300]

Prepares a raw data set for training: picks the modality, crops each case to
its foreground box (MRI: voxels ≠ 0; CT: the body, the largest region
above −500 HU per slice, without the table), resamples the box
to S³ (trilinear image, nearest label), normalises (MRI: z-score inside the
brain, 0 outside; CT: clip to the HU window and scale to [0, 1]), binarises
the label and splits the cases into train/val/test by seed. Writes
DIR/cases/<id>_image.nii.gz (float32), DIR/cases/<id>_mask.nii.gz (uint8 0/1)
and DIR/manifest.json (options; per case the source files, native dims,
spacing, affine and crop box, so predictions go back to native space).
A second run with the same options and unchanged source files does nothing.

Targets: wt/any = every label > 0; tc = BraTS 1,3,4 (MSD 2,3); et = BraTS 4
(MSD 3); liver, kidney, spleen, pancreas for AbdomenCT-1K; or a comma list of
label values, e.g. 1,4.

example:
  fess prepare --in data/brats-synth --out data/brats-prep --size 64 --target wt`

func init() {
	register("prepare", "crop, resample, normalise and split a data set",
		func(args []string) error { return runPrepare(args, os.Stdout, os.Stderr) })
}

func runPrepare(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prepare", prepareUsage)
	in := fs.String("in", "", "raw data set directory")
	out := fs.String("out", "", "prepared output directory")
	layout := fs.String("layout", "auto", "auto, "+strings.Join(dataset.Layouts, ", "))
	size := fs.Int("size", 64, "edge S of the prepared cube")
	target := fs.String("target", "", "wt, tc, et, any, an organ or label values (default wt for MRI, any otherwise)")
	modality := fs.String("modality", "", "flair (default for MRI), t1, t1ce, t2")
	seed := fs.Int64("seed", 42, "seed of the train/val/test split")
	split := fs.String("split", "0.7,0.1,0.2", "train,val,test fractions")
	window := fs.String("window", "-200,300", "CT window in HU: low,high")
	workers := fs.Int("workers", 2, "cases prepared in parallel")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, prepareUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("prepare: unexpected argument %q\n%s", fs.Arg(0), prepareUsage)
	}
	if *in == "" || *out == "" {
		return errs.Usage("prepare: --in and --out are required\n%s", prepareUsage)
	}
	fr, err := parseFloats(*split, 3, "--split")
	if err != nil {
		return err
	}
	wn, err := parseFloats(*window, 2, "--window")
	if err != nil {
		return err
	}
	opts := dataset.Options{
		Layout: *layout, Modality: *modality, Target: *target, Size: *size, Seed: *seed,
		Split: [3]float64{fr[0], fr[1], fr[2]}, Window: [2]float64{wn[0], wn[1]}, Workers: *workers,
	}
	if !*quiet {
		opts.Progress = progressWriter(stderr)
	}
	m, cached, err := dataset.Prepare(*in, *out, opts)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, c := range m.Cases {
		count[c.Split]++
	}
	state := "prepared"
	if cached {
		state = "up to date:"
	}
	fmt.Fprintf(stdout, "%s %d cases (%s, %s, target %s, %d³) in %s: train %d, val %d, test %d\n",
		state, len(m.Cases), m.Options.Layout, m.Options.Modality, m.Options.Target, m.Options.Size,
		*out, count["train"], count["val"], count["test"])
	return nil
}

// parseFloats parses a comma list of exactly n numbers.
func parseFloats(s string, n int, flag string) ([]float64, error) {
	f := strings.Split(s, ",")
	if len(f) != n {
		return nil, errs.Usage("%s %q: want %d comma-separated numbers", flag, s, n)
	}
	out := make([]float64, n)
	for i, x := range f {
		v, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, errs.Usage("%s %q: %q is not a number", flag, s, x)
		}
		out[i] = v
	}
	return out, nil
}

// progressWriter returns w as an io.Writer, or nil (no progress) when w
// is a nil *os.File or nil.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && f == nil {
		return nil
	}
	return w
}

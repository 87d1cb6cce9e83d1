package main

import (
	"fmt"
	"io"
	"os"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

const predictUsage = `usage: fess predict --run RUN --in CASE.nii.gz --out MASK.nii.gz [--frame T] [--threshold 0.5]

Segments one image with a trained run. The image goes through the run's
preparation (crop, resample, normalise, from RUN/data_options.json); the
predicted mask is mapped back into the input's native grid and written as a
uint8 NIfTI with the input's dims and affine, so it overlays the input.
--frame picks the volume of a 4-D file (MSD: 0 = FLAIR).

example:
  fess predict --run runs/fess --in BraTS17_Synth_001_flair.nii.gz --out mask.nii.gz`

func init() {
	register("predict", "segment one image into a mask in its native space",
		func(args []string) error { return runPredict(args, os.Stderr) })
}

func runPredict(args []string, stderr io.Writer) error {
	fs := newFlags("predict", predictUsage)
	run := fs.String("run", "", "run folder")
	in := fs.String("in", "", "input image")
	out := fs.String("out", "", "output mask (.nii or .nii.gz)")
	frame := fs.Int("frame", 0, "volume of a 4-D input")
	thr := fs.Float64("threshold", 0.5, "probability threshold")
	if err := parseFlags(fs, predictUsage, args); err != nil {
		return err
	}
	if *run == "" || *in == "" || *out == "" || fs.NArg() > 0 {
		return errs.Usage("predict: --run, --in and --out are required\n%s", predictUsage)
	}
	if err := train.PredictFile(*run, *in, *out, *frame, float32(*thr)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

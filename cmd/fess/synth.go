package main

import (
	"fmt"
	"os"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
)

const synthUsage = `usage: fess synth --kind brain|abdomen --cases N [--size S] [--seed K] --out DIR

Writes a synthetic data set as real NIfTI files, so the whole pipeline runs
with no download.

  brain    BraTS 2017 layout: DIR/BraTS17_Synth_000/BraTS17_Synth_000_flair.nii.gz,
           _t1, _t1ce, _t2 (int16) and _seg.nii.gz (labels 1 necrotic core,
           2 edema, 4 enhancing tumour). The head grid is S × 9S/8 × 7S/8 at
           160/S mm isotropic; 1–3 lobulated tumours of random size and place,
           with bias field, texture, Rician noise and FLAIR-bright non-tumour
           structures.
  abdomen  AbdomenCT-1K layout: DIR/Case_00001_0000.nii.gz (int16 HU) and
           DIR/Mask/Case_00001.nii.gz (1 liver, 2 kidney, 3 spleen, 4 pancreas),
           S × S × 5S/8 voxels of 0.8·512/S × 0.8·512/S × 250/(5S/8) mm.

Case i depends only on (seed, i, S): the same flags give the same files.

example:
  fess synth --kind brain --cases 100 --size 64 --seed 42 --out data/brats-synth`

func init() {
	register("synth", "write a synthetic brain-MRI or abdomen-CT data set",
		func(args []string) error { return runSynth(args) })
}

func runSynth(args []string) error {
	fs := newFlags("synth", synthUsage)
	kind := fs.String("kind", "", "brain or abdomen")
	cases := fs.Int("cases", 0, "number of cases")
	size := fs.Int("size", 64, "cube edge S of the generated grid")
	seed := fs.Int64("seed", 42, "random seed")
	out := fs.String("out", "", "output directory")
	workers := fs.Int("workers", 2, "cases generated in parallel")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, synthUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("synth: unexpected argument %q\n%s", fs.Arg(0), synthUsage)
	}
	if *kind == "" || *out == "" || *cases == 0 {
		return errs.Usage("synth: --kind, --cases and --out are required\n%s", synthUsage)
	}
	progress := os.Stderr
	if *quiet {
		progress = nil
	}
	var w = progressWriter(progress)
	if err := dataset.WriteSynth(*kind, *out, *cases, *size, *seed, *workers, w); err != nil {
		return err
	}
	fmt.Printf("wrote %d synthetic %s cases to %s\n", *cases, *kind, *out)
	return nil
}

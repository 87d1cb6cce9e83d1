package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
)

const synthUsage = `usage: fess synth --kind brain|abdomen [--layout L] --cases N [--size S] [--seed K] --out DIR

Writes a synthetic data set as real NIfTI files, so the whole pipeline runs
with no download.

  brain    Multimodal glioma MRI: an S × 9S/8 × 7S/8 head at 160/S mm
           isotropic with 1–3 lobulated tumours of random size and place,
           each an enhancing rim (mostly around necrosis) inside edema; bias
           field, texture, Rician noise and FLAIR-bright non-tumour
           structures. FLAIR and T2 show the whole tumour, T1ce the rim and
           the necrosis, T1 the tumour mildly dark, so the tumour core and
           the enhancing tumour need more than FLAIR. Images int16, labels
           uint8.
  abdomen  Abdominal CT in HU (int16): S × S × 5S/8 voxels of
           0.8·512/S × 0.8·512/S × 250/(5S/8) mm with 1 liver, 2 kidney,
           3 spleen, 4 pancreas.

--layout (default: brats2021 for brain, abdomenct1k for abdomen):

  brats2021    (also brats2017) DIR/BraTS17_Synth_000/BraTS17_Synth_000_flair.nii.gz,
               _t1, _t1ce, _t2 and _seg.nii.gz; labels 1 necrotic core,
               2 edema, 4 enhancing tumour.
  brats2023    DIR/BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2f.nii.gz (FLAIR),
               -t1n (T1), -t1c (T1ce), -t2w (T2), -seg; labels 1 necrotic
               core, 2 edema, 3 enhancing tumour.
  msd          Decathlon Task01: DIR/imagesTr/BRATS_001.nii.gz, one 4-D image
               of frames FLAIR, T1w, T1gd, T2w; DIR/labelsTr/BRATS_001.nii.gz
               with 1 edema, 2 non-enhancing tumour, 3 enhancing tumour;
               DIR/dataset.json.
  nnunet       nnU-Net v2 raw data set: DIR/imagesTr/BraTS_001_0000.nii.gz …
               _0003 (FLAIR, T1, T1ce, T2), DIR/labelsTr/BraTS_001.nii.gz
               with the MSD labels, DIR/dataset.json declaring the regions
               whole tumour 1,2,3, tumour core 2,3, enhancing tumour 3.
  abdomenct1k  DIR/Case_00001_0000.nii.gz and DIR/Mask/Case_00001.nii.gz.

Case i depends only on (seed, i, S): the same flags give the same files, and
every layout holds the same phantoms under its own names and label values.

examples:
  fess synth --kind brain --cases 100 --size 64 --seed 42 --out data/brats-synth
  fess synth --kind brain --layout msd --cases 20 --out data/Task01_BrainTumour
  fess synth --kind brain --layout nnunet --cases 20 --out data/Dataset001_BrainTumour
  fess synth --kind abdomen --cases 10 --out data/abdomen-synth`

func init() {
	register("synth", "write a synthetic brain-MRI or abdomen-CT data set",
		func(args []string) error { return runSynth(args) })
}

func runSynth(args []string) error {
	fs := newFlags("synth", synthUsage)
	kind := fs.String("kind", "", "brain or abdomen")
	layout := fs.String("layout", "", "brats2021, brats2023, msd, nnunet (brain) or abdomenct1k (abdomen); default brats2021 / abdomenct1k")
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
	if *kind == "" && *layout != "" {
		// The layout names its kind.
		*kind = "brain"
		if strings.EqualFold(*layout, dataset.SynthAbdomenCT1K) {
			*kind = "abdomen"
		}
	}
	if *kind == "" || *out == "" || *cases == 0 {
		return errs.Usage("synth: --kind, --cases and --out are required\n%s", synthUsage)
	}
	progress := os.Stderr
	if *quiet {
		progress = nil
	}
	var w = progressWriter(progress)
	if err := dataset.WriteSynthLayout(*kind, *layout, *out, *cases, *size, *seed, *workers, w); err != nil {
		return err
	}
	what := *kind
	if *layout != "" {
		what += " (" + *layout + ")"
	}
	fmt.Printf("wrote %d synthetic %s cases to %s\n", *cases, what, *out)
	return nil
}

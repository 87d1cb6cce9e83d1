package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/lock"
)

const prepareUsage = `usage: fess prepare --in DIR [--layout auto|brats2015|brats2017|brats2023|msd|nnunet|abdomenct1k|npy] --out DIR
                    [--size 64 | --spacing X,Y,Z|median] [--folds K]
                    [--modalities flair,t1,t1ce,t2] [--target wt,tc,et | --classes liver,kidney,…]
                    [--convention brats2021|brats2023|msd|abdomenct1k|binary]
                    [--seed 42] [--split 0.7,0.1,0.2] [--window -200,300]

Prepares a raw data set for training: picks the input channels, crops each
case to its foreground box (MRI: voxels ≠ 0 in any channel; CT: the body,
the largest region above −500 HU per slice, without the table), resamples
the box (trilinear image, nearest label), normalises each channel on its
own (MRI: z-score inside its non-zero region, 0 outside; CT: clip to the HU
window and scale to [0, 1]), turns the label map into one 0/1 mask per
output region or class, and splits the cases into train/val/test by seed.
Writes DIR/cases/<id>_image.nii.gz (float32, X×Y×Z×C), DIR/cases/<id>_mask.nii.gz
(uint8 0/1, X×Y×Z×K) and DIR/manifest.json (options, channels, regions and
convention; per case the source files, native dims, spacing, affine, crop
box and prepared dims, so predictions go back to native space). A second
run with the same options and unchanged source files does nothing.
Otherwise the data set is written into DIR.tmp-<pid> next to DIR and
swapped in whole when complete (the old DIR is removed, other files kept in
it are moved over), so a failed or killed run leaves the old DIR as it was;
the next prepare removes what a killed one left. One prepare at a time per
DIR: a second one exits 2 naming the first's host and pid.

Resampling, one of two modes:
  --size S        the cube mode (default, S = 64): every box is stretched to
                  S×S×S, whatever its extent and spacing.
  --spacing X,Y,Z the spacing mode: every box is resampled to this voxel
                  spacing in mm and keeps its physical shape, max(1,
                  round(n·native/target)) voxels per axis, so cases have
                  different dims (train on patches). --spacing median takes
                  the data set's median native spacing per axis and records
                  it in the manifest. A case that would exceed 1024 voxels
                  along an axis or 2^28 in all is an error (exit 2).
--size and --spacing are exclusive.

Cross-validation (--folds K): also writes DIR/splits.json, a JSON list of K
{"train": [ids], "val": [ids]} folds (nnU-Net's splits_final.json shape) over
the cases outside the test split, shuffled by --seed; every such case is in
exactly one val list. The manifest's train/val split stays as without
--folds. splits.json may be edited by hand; a rerun with the same options
keeps it, a rerun with another K writes it anew (without re-preparing the
cases).

Channels (--modalities, alias --modality; any subset, in the order given):
flair, t1, t1ce, t2 (BraTS 2023 names t2f, t1n, t1c, t2w are the same),
the frames of MSD's 4-D files, nnU-Net's channel_names (default: all of
them); ct for CT. Default: flair for MRI.

Regions (--target, one sigmoid output each): wt, tc, et (whole tumour,
tumour core, enhancing tumour, in the data's label convention), any (every
label > 0), an organ (liver, kidney, spleen, pancreas), an nnU-Net label or
region name, or label values joined by + (1+4). A comma list of plain label
values (1,4) is one region, their union, as in earlier versions. Default: wt
for MRI, any otherwise, all of dataset.json's labels for nnU-Net.
Classes (--classes, mutually exclusive, softmax with a background channel):
organ names or label values, e.g. liver,kidney,spleen,pancreas.

Label conventions (detected from the layout; --convention overrides):
  brats2021  BraTS 2015–2021: 1 necrosis/non-enhancing, 2 oedema, 4 enhancing (WT 1,2,4; TC 1,4; ET 4)
  brats2023  BraTS 2023+:     1 necrosis, 2 oedema, 3 enhancing            (WT 1,2,3; TC 1,3; ET 3)
  msd        MSD Task01:      1 oedema, 2 non-enhancing, 3 enhancing       (WT 1,2,3; TC 2,3; ET 3)
A label value the convention does not have, or a region that selects no
voxel in any case, is an error (exit 2), never an empty training set.

examples:
  fess prepare --in data/brats-synth --out data/brats-prep --size 64 --target wt
  fess prepare --in BraTS2023-GLI --out data/gli --modalities t2f,t1n,t1c,t2w --target wt,tc,et
  fess prepare --in AbdomenCT-1K --out data/abd --classes liver,kidney,spleen,pancreas
  fess prepare --in Dataset001_BrainTumour --out data/bt --spacing median --folds 5`

func init() {
	register("prepare", "crop, resample, normalise and split a data set",
		func(args []string) error { return runPrepare(args, os.Stdout, os.Stderr) })
}

func runPrepare(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prepare", prepareUsage)
	in := fs.String("in", "", "raw data set directory")
	out := fs.String("out", "", "prepared output directory")
	layout := fs.String("layout", "auto", "auto, "+strings.Join(dataset.Layouts, ", "))
	size := fs.Int("size", 64, "edge S of the prepared cube (the cube mode)")
	spacing := fs.String("spacing", "", "target voxel spacing in mm, X,Y,Z, or median (the spacing mode)")
	folds := fs.Int("folds", 0, "write K cross-validation folds to splits.json (0: none)")
	target := fs.String("target", "", "output regions: wt,tc,et, any, an organ, or label values (default wt for MRI, any otherwise)")
	classes := fs.String("classes", "", "mutually exclusive output classes (softmax), e.g. liver,kidney,spleen,pancreas")
	conv := fs.String("convention", "", "label convention: "+strings.Join(dataset.Conventions, ", ")+" (default: the layout's)")
	modality := fs.String("modality", "", "input channels, e.g. flair or flair,t1,t1ce,t2 (default flair for MRI)")
	fs.StringVar(modality, "modalities", "", "same as --modality")
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
		Layout: *layout, Modality: *modality, Target: *target, Classes: *classes, Convention: *conv, Size: *size, Seed: *seed,
		Split: [3]float64{fr[0], fr[1], fr[2]}, Window: [2]float64{wn[0], wn[1]}, Workers: *workers, Folds: *folds,
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["size"] && *size < 1 {
		return errs.Usage("prepare: --size %d: want a cube edge in [4, 1024]\n%s", *size, prepareUsage)
	}
	if set["split"] && opts.Split == [3]float64{} {
		return errs.Usage("prepare: --split %s: fractions sum to 0", *split)
	}
	if set["window"] && opts.Window == [2]float64{} {
		return errs.Usage("prepare: --window %s: the CT window is empty (want low < high)", *window)
	}
	if set["workers"] && *workers < 1 {
		return errs.Usage("prepare: --workers %d: want ≥ 1", *workers)
	}
	if set["spacing"] {
		if set["size"] {
			return errs.Usage("prepare: --size and --spacing are exclusive (the cube mode or the spacing mode)\n%s", prepareUsage)
		}
		opts.Size = 0
		if strings.EqualFold(strings.TrimSpace(*spacing), "median") {
			opts.SpacingMode = dataset.SpacingMedian
		} else {
			sp, err := parseFloats(*spacing, 3, "--spacing")
			if err != nil {
				return err
			}
			opts.SpacingMode, opts.Spacing = dataset.SpacingFixed, [3]float64{sp[0], sp[1], sp[2]}
		}
	}
	if err := opts.Defaults().Validate(); err != nil {
		return errs.Usage("prepare: %v", err)
	}
	if !*quiet {
		opts.Progress = progressWriter(stderr)
	}
	lk, err := lock.Acquire(*out, "prepare")
	if err != nil {
		return err
	}
	defer lk.Release()
	if err := lk.RemoveStaleTemps(stderr, "cases"); err != nil {
		return err
	}
	// Staging folders of a prepare into the same folder that died (kept
	// with their lock free) go now, with a note even under --quiet.
	if err := dataset.RemoveStaleStaging(*out, stderr); err != nil {
		return err
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
	p := &dataset.Prepared{Manifest: *m}
	task := p.Task()
	kind := "target"
	if task.Softmax {
		kind = "classes"
	}
	grid := fmt.Sprintf("%d³", m.Options.Size)
	if m.Options.Patched() {
		sp := m.Options.Spacing
		grid = fmt.Sprintf("%.4g×%.4g×%.4g mm", sp[0], sp[1], sp[2])
		if m.Options.SpacingMode == dataset.SpacingMedian {
			grid = "median spacing " + grid
		}
	}
	fmt.Fprintf(stdout, "%s %d cases (%s, %s, %s %s, %s; %s labels) in %s: train %d, val %d, test %d\n",
		state, len(m.Cases), m.Options.Layout, strings.Join(task.Channels, ","), kind, strings.Join(task.RegionNames(), ","),
		grid, task.Convention, *out, count["train"], count["val"], count["test"])
	if m.Options.Folds > 0 {
		fmt.Fprintf(stdout, "%d cross-validation folds in %s\n", m.Options.Folds, filepath.Join(*out, dataset.SplitsName))
	}
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

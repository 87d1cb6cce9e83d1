package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

const predictUsage = `usage: fess predict (--run RUN | --runs R0,R1,…) --in CASE --out LABELS.nii.gz [--probabilities FILE]
                    [--frame T] [--threshold 0.5] [--convention brats2021|brats2023|msd]
                    [--tta] [--overlap 0.5] [--keep-largest] [--threads N]
                    [--checkpoint best|last|ema]

Segments one case with a trained run. The input gives the run's channels
(RUN/task.json lists them, in order): one file for a one-channel run; for
several channels a comma list of files in the run's channel order, one 4-D
file holding them (its frames in the training data's order, e.g. MSD), or a
BraTS case folder (files ending _flair/_t1/_t1ce/_t2 or -t2f/-t1n/-t1c/-t2w).
An input that lacks a channel is refused. The case goes through the run's
preparation (crop, resample, normalise, from RUN/data_options.json); the
prediction is mapped back into the input's native grid and written as a
uint8 NIfTI with the input's dims and affine, so it overlays the input:
for one region a 0/1 mask; for several regions or classes a label map in
the training data's label convention (BraTS 2015–2021: 1 necrosis,
2 oedema, 4 enhancing; BraTS 2023: 1, 2, 3; MSD: 1 oedema, 2 non-enhancing,
3 enhancing; nnU-Net: regions_class_order; classes: their label values), or
in --convention's. --probabilities also writes the per-region
probabilities (float32, X×Y×Z×K, K in the run's region order).
--frame picks the volume of a 4-D file for a one-channel run (default: the
frame its channel had in the training data). A patch-trained run prepares
the case at its training spacing and predicts it whole by Gaussian-weighted
sliding window (--overlap; --tta averages the 8 mirrorings); --runs
averages several runs' probabilities (cross-validation folds);
--keep-largest keeps each region's largest connected component.
--checkpoint picks the weights as for fess test: best (default), last, or
ema (a run trained with --ema).
--threads defaults to fess train's (every CPU the process may use, or
SLURM_CPUS_PER_TASK if smaller); results are bit-identical for a given count.

example:
  fess predict --run runs/brats --in data/raw/BraTS-GLI-00001-000 --out BraTS-GLI-00001-000-seg.nii.gz`

func init() {
	register("predict", "segment one case into a mask or label map in its native space",
		func(args []string) error { return runPredict(args, os.Stderr) })
}

func runPredict(args []string, stderr io.Writer) error {
	fs := newFlags("predict", predictUsage)
	run := fs.String("run", "", "run folder")
	runsFlag := fs.String("runs", "", "several run folders (comma list) whose probabilities are averaged")
	in := fs.String("in", "", "input: a file, a comma list of files (one per channel), a 4-D file or a case folder")
	out := fs.String("out", "", "output mask or label map (.nii or .nii.gz)")
	frame := fs.Int("frame", -1, "volume of a 4-D input for a one-channel run (default: the run's)")
	thr := fs.Float64("threshold", 0.5, "probability threshold of sigmoid outputs, in (0, 1)")
	probs := fs.String("probabilities", "", "also write the per-region probabilities to this NIfTI file")
	conv := fs.String("convention", "", "write the label map in this convention instead of the training data's")
	threads := fs.Int("threads", 0, "worker threads (0: every CPU the process may use, or SLURM_CPUS_PER_TASK if smaller)")
	var iopt train.InferOptions
	addInferFlags(fs, &iopt)
	fs.StringVar(&iopt.Checkpoint, "checkpoint", "best", "weights: best, last or ema (ema.safetensors of a run trained with --ema)")
	if err := parseFlags(fs, predictUsage, args); err != nil {
		return err
	}
	if !slices.Contains(train.Checkpoints, iopt.Checkpoint) {
		return errs.Usage("predict: --checkpoint %q: want one of %s\n%s", iopt.Checkpoint, strings.Join(train.Checkpoints, ", "), predictUsage)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if (*run == "") == (*runsFlag == "") || *in == "" || *out == "" || fs.NArg() > 0 {
		return errs.Usage("predict: --in, --out and one of --run or --runs are required\n%s", predictUsage)
	}
	if err := checkInferFlags(&iopt); err != nil {
		return err
	}
	if iopt.Native {
		return errs.Usage("predict: --native applies to fess test (predictions are always written in the input's grid)")
	}
	runs := []string{*run}
	if *runsFlag != "" {
		var err error
		if runs, err = train.RunsArg(*runsFlag); err != nil {
			return err
		}
	}
	if !(*thr > 0 && *thr < 1) {
		return errs.Usage("predict: --threshold %g: want a probability in (0, 1)", *thr)
	}
	if *frame < -1 {
		return errs.Usage("predict: --frame %d: want a volume index ≥ 0", *frame)
	}
	inputs := strings.Split(*in, ",")
	opt := train.PredictOptions{Frame: *frame, Threshold: float32(*thr), Probabilities: *probs, Convention: *conv, Infer: iopt}
	if err := train.PredictRuns(runs, inputs, *out, opt); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

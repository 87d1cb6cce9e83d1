package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/lock"
	"github.com/fess-seg/fess/train"
)

const predictUsage = `usage: fess predict (--run RUN | --runs R0,R1,…) --in CASE --out LABELS.nii.gz [--probabilities FILE]
       fess predict (--run RUN | --runs R0,R1,…) --in DATASET --out DIR [--layout auto] [--part I/N]
                    [--frame T] [--threshold 0.5] [--convention brats2021|brats2023|msd]
                    [--tta] [--overlap 0.5] [--keep-largest] [--threads N]
                    [--checkpoint best|last|ema] [--precision fp32|bf16]

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
--precision bf16 as for fess test (bfloat16 operands, float32 accumulation).
--threads defaults to fess train's (every CPU the process may use, or
SLURM_CPUS_PER_TASK if smaller); results are bit-identical for a given count.

Whole folders: with an --in folder and an --out that does not end in .nii
or .nii.gz, --in is a raw data set (any layout fess prepare reads;
--layout, default auto) and every case (labelled or not) is written to
DIR/<case>.nii.gz as above.
--part I/N predicts only the cases I, I+N, I+2N, … of the data set's
sorted case list (I from 0 to N-1), so N jobs, e.g. a Slurm array with
--array=0-(N-1) and --part $SLURM_ARRAY_TASK_ID/N, share a folder between
them without overlap; each part locks its own part of DIR, each file is
written atomically.

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
	layout := fs.String("layout", "auto", "whole-folder mode: the layout of the --in data set")
	part := fs.String("part", "", "whole-folder mode: predict only part I of N (I/N, I from 0)")
	threads := fs.Int("threads", 0, "worker threads (0: every CPU the process may use, or SLURM_CPUS_PER_TASK if smaller)")
	precision := fs.String("precision", "fp32", "matrix-product arithmetic: fp32, or bf16 (needs AVX-512-BF16)")
	winograd := fs.Int("winograd", 2, "Winograd output tile of the 3×3×3 convolutions: 2 (F(2,3)), or 4 (F(4,3): faster, about ten times the float32 rounding error)")
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
	if err := train.SetPrecision(*precision); err != nil {
		return err
	}
	if err := train.SetWinograd(*winograd); err != nil {
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
	opt := train.PredictOptions{Frame: *frame, Threshold: float32(*thr), Probabilities: *probs, Convention: *conv, Infer: iopt}
	lower := strings.ToLower(*out)
	if st, err := os.Stat(*in); err == nil && st.IsDir() && !strings.HasSuffix(lower, ".nii") && !strings.HasSuffix(lower, ".nii.gz") {
		return predictFolder(runs, *in, *out, *layout, *part, opt, stderr)
	}
	if *part != "" {
		return errs.Usage("predict: --part needs whole-folder mode (an --out folder, not %s)", *out)
	}
	inputs := strings.Split(*in, ",")
	if err := train.PredictRuns(runs, inputs, *out, opt); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

// parsePart reads --part I/N (0 ≤ I < N).
func parsePart(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, errs.Usage("predict: --part %q: want I/N with N ≥ 1 and 0 ≤ I < N (e.g. 0/4 … 3/4)", s)
	}
	return i, n, nil
}

// predictFolder predicts every case of the raw data set in (or, with part,
// every N-th from the I-th) into out/<case>.nii.gz.
func predictFolder(runs []string, in, out, layout, part string, opt train.PredictOptions, stderr io.Writer) error {
	pi, pn, err := parsePart(part)
	if err != nil {
		return err
	}
	if opt.Probabilities != "" {
		return errs.Usage("predict: --probabilities FILE names one file; it applies to a single case (--out FILE.nii.gz), not to whole-folder mode")
	}
	if layout == "" || layout == "auto" {
		if layout, err = dataset.Detect(in); err != nil {
			return err
		}
	}
	cases, err := dataset.Scan(in, layout)
	if err != nil {
		return err
	}
	pred, err := train.NewPredictor(runs, opt)
	if err != nil {
		return err
	}
	task, err := train.LoadTask(runs[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return errs.WrapInput(out, err, "cannot create the output folder")
	}
	lockDir := out
	if pn > 1 {
		lockDir = filepath.Join(out, fmt.Sprintf(".part-%d-of-%d", pi, pn))
	}
	lk, err := lock.Acquire(lockDir, "predict")
	if err != nil {
		return err
	}
	defer func() {
		lk.Release()
		if lockDir != out {
			os.RemoveAll(lockDir)
		}
	}()
	n := 0
	for k := pi; k < len(cases); k += pn {
		c := cases[k]
		inputs, err := caseInputs(c, task)
		if err != nil {
			return err
		}
		dst := filepath.Join(out, c.ID+".nii.gz")
		if err := pred.Predict(inputs, dst); err != nil {
			return fmt.Errorf("case %s: %w", c.ID, err)
		}
		n++
		fmt.Fprintf(stderr, "wrote %s\n", dst)
	}
	fmt.Fprintf(stderr, "predicted %d of %d cases (part %d/%d) into %s\n", n, len(cases), pi, pn, out)
	return nil
}

// caseInputs lists a scanned case's files in the run's channel order: one
// file when every channel is a frame of the same 4-D file (MSD), else one
// file per channel.
func caseInputs(c dataset.CaseSource, task dataset.Task) ([]string, error) {
	files := make([]string, len(task.Channels))
	same := true
	for i, ch := range task.Channels {
		f, ok := c.Images[ch]
		if !ok {
			return nil, errs.Usage("predict: case %s has no %s image; the run takes %s", c.ID, ch, strings.Join(task.Channels, ","))
		}
		files[i] = f
		same = same && f == files[0]
	}
	if same && len(files) > 1 {
		return files[:1], nil
	}
	return files, nil
}

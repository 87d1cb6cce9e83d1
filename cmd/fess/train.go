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
	"github.com/fess-seg/fess/train"
)

const trainUsage = `usage: fess train --data PREPARED --out RUN [--loss fess|dice|simclr|infonce|bce|dicebce|focal|tversky]
                  [--pairing previous-batch|same-batch|seed-exact] [--preset seed|unet3d]
                  [--filters F] [--levels L] [--dropout P] [--epochs E] [--batch B] [--lr LR] [--seed K]
                  [--train-cases N] [--val-every K] [--clip-norm C] [--weight-decay W [--decoupled]]
                  [--lambda L] [--temperature T] [--threads N] [--resume [--extend]]
                  [--config FILE] [--init WEIGHTS.safetensors]
                  [--patch P|PX,PY,PZ] [--iters-per-epoch N] [--augment[=false]] [--fold K]
                  [--lr-schedule constant|poly|cosine] [--warmup-epochs W] [--ema D]
                  [--precision fp32|bf16] [--winograd 2|4]

Trains a 3-D U-Net on a prepared data set (fess prepare). The run folder gets
config.json (the full configuration: re-run with --config RUN/config.json),
log.jsonl (one line per epoch: loss parts, train Dice, validation Dice and
loss), last.safetensors and best.safetensors (best validation Dice; PyTorch
state_dict names, see fess export), all written atomically.
--resume continues a killed run from its last checkpoint; with the same seed and
thread count the final weights equal an uninterrupted run's bit for bit.
A recipe flag given with --resume must match the run's config.json (a
change is refused, exit 2, naming each field with its old and new value,
and nothing is rewritten); --extend allows a larger --epochs, to train on.
--threads defaults to every CPU the process may use (its affinity mask),
or SLURM_CPUS_PER_TASK when set and smaller; results are bit-identical
for a given thread count. Values out of range (--epochs 0, --lr NaN,
--dropout -0.5, --train-cases beyond the training split, …) are refused
with exit 2; --dropout 0 means no dropout and --clip-norm 0 no clipping
for every preset.
Defaults: unet3d preset, F=8, 3 levels, Adam lr 1e-3, batch 2, 30 epochs;
--preset seed takes the reference's network and recipe (lr 1e-5, batch 5,
150 epochs, dropout 0.2). Gradients are clipped at global norm 1.0.
FESS = λ·Dice + (1−λ)·1e-4·L_con with λ = 0.5, T = 0.5 (docs/method.md).
--init starts from weights trained elsewhere instead of the seeded
initialisation: the state_dict of model/torch/fess_unet.py's PyTorch module
saved as safetensors (as fess export writes it), BatchNorm running
statistics included. Its "config" metadata gives the architecture (model
flags given explicitly take precedence); without it the model flags do. A
missing, unexpected or differently shaped tensor is refused (exit 2). A
fess checkpoint (RUN/last.safetensors, best.safetensors, ema.safetensors)
is accepted too: its weights and statistics, without the training state.
--patch trains on random patches instead of whole cubes (required for a data
set prepared with --spacing, whose cases have their own dims; allowed on cube
data): P voxels on each axis, or PX,PY,PZ along x, y, z, each a multiple of
2^levels. Each step draws --batch patches, each from a uniformly chosen
training case, a third of them centred on a foreground voxel, the rest placed
uniformly; what sticks out of the case is zero. An epoch is --iters-per-epoch
steps (default: ceil(training cases / batch), a cube epoch's length), and
validation predicts each validation case whole by sliding window (the patch,
overlap 0.5). --augment (default on with --patch, off for cubes) applies
random flips, rotation (±15°, p 0.2), scaling (0.85-1.25, p 0.2), intensity
scale (0.75-1.25, p 0.15), shift (±0.1, p 0.15) and gamma (0.7-1.5, p 0.3)
to every training sample (docs/method.md, "Patch training").
The same augmentation, one implementation, applies to whole cubes with
--augment (drawn per sample and step from the seed; rotation and scaling
zero-pad what they bring in from outside the cube).
--fold K trains on fold K of the data set's splits.json (fess prepare
--folds) and validates on that fold's val cases.
--lr-schedule sets the learning rate per epoch (0-based i, E epochs, W
warm-up epochs, t = i − W, T = E − W): constant lr (default), poly
lr·(1 − t/T)^0.9 (nnU-Net's) or cosine lr·0.5·(1 + cos(π·t/T)); with
--warmup-epochs W the first W epochs ramp linearly, lr·(i+1)/(W+1).
log.jsonl records each epoch's rate (lr). --resume --extend refuses a
poly or cosine run (T would change and with it the rates already used).
--ema D (in [0, 1); 0: off) keeps an exponential moving average of the
weights and BatchNorm running statistics, avg ← D·avg + (1 − D)·live after
every optimiser step; it is checkpointed (resume stays bit-identical),
validated each validation epoch (val_dice_ema in log.jsonl) and saved as
ema.safetensors (state_dict names as last/best; fess test --checkpoint ema).
--precision bf16 rounds the operands of every matrix product (the
convolutions' GEMMs) to bfloat16 and accumulates in float32, with float32
master weights, optimiser and the rest (the CPU's counterpart of GPU
mixed precision); it needs AVX-512-BF16 and is an error elsewhere; it
applies to validation too and a resumed run keeps it.
--winograd 4 runs the 3×3×3 convolutions as Winograd F(4×4×4, 3×3×3)
instead of the default F(2×2×2, 3×3×3) on volumes with enough 4×4×4 tiles:
2.4× fewer multiplications, training steps about 1.2–1.4× faster on the
paper's networks, for about ten times the float32 rounding error (a few
1e-6 of a convolution's largest output; docs/performance.md). A resumed
run keeps it.
See docs/training.md.

examples:
  fess train --data data/brats-prep --out runs/fess --loss fess --epochs 20
  fess train --data data/brats-prep --out runs/tuned --init pretrained.safetensors --lr 1e-4
  fess train --data data/msd-spacing --out runs/patch --loss dice --patch 96,96,64 --fold 0`

func init() {
	register("train", "train a U-Net with FESS or a baseline loss",
		func(args []string) error { return runTrain(args, os.Stderr) })
}

func runTrain(args []string, stderr io.Writer) error {
	fs := newFlags("train", trainUsage)
	cfgFile := fs.String("config", "", "start from this config.json (flags given override it)")
	data := fs.String("data", "", "prepared data folder")
	out := fs.String("out", "", "run folder")
	lossName := fs.String("loss", "fess", "loss")
	pairing := fs.String("pairing", "previous-batch", "FESS pairing")
	preset := fs.String("preset", "unet3d", "network preset: unet3d or seed")
	filters := fs.Int("filters", 0, "F, channels of the first level (0: preset default)")
	levels := fs.Int("levels", 0, "pooled levels (0: preset default)")
	dropout := fs.Float64("dropout", 0, "dropout probability in [0, 1) (not given: preset default; 0: none)")
	epochs := fs.Int("epochs", 0, "epochs (0: preset default)")
	batch := fs.Int("batch", 0, "batch size (0: preset default)")
	lr := fs.Float64("lr", 0, "Adam learning rate (0: preset default)")
	seed := fs.Uint64("seed", 42, "seed of initialisation, shuffling, dropout and augmentation")
	trainCases := fs.Int("train-cases", 0, "use only the first N training cases (0: all)")
	valEvery := fs.Int("val-every", 1, "validate every K epochs")
	clip := fs.Float64("clip-norm", 1.0, "clip the global gradient norm (0: off)")
	wd := fs.Float64("weight-decay", 0, "weight decay (L2 added to the gradient, as PyTorch Adam)")
	decoupled := fs.Bool("decoupled", false, "decoupled weight decay (AdamW)")
	threads := fs.Int("threads", 0, "worker threads (0: every CPU the process may use, or SLURM_CPUS_PER_TASK if smaller)")
	lambda := fs.Float64("lambda", 0.5, "λ, the Dice weight of the contrastive losses, in (0, 1]")
	temperature := fs.Float64("temperature", 0.5, "temperature of the contrastive losses, > 0")
	extend := fs.Bool("extend", false, "with --resume: allow a larger --epochs than the run's")
	resume := fs.Bool("resume", false, "continue the run in --out from its last checkpoint")
	initFrom := fs.String("init", "", "start from these weights: a PyTorch state_dict as safetensors (model/torch/fess_unet.py)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	patch := fs.String("patch", "", "train on random patches: P, or PX,PY,PZ (x,y,z); each a multiple of 2^levels")
	iters := fs.Int("iters-per-epoch", 0, "patch training: steps per epoch (0: ceil(training cases / batch))")
	augmentOn := fs.Bool("augment", false, "augment training samples (default: on with --patch, off for cubes)")
	fold := fs.Int("fold", -1, "train and validate on fold K of splits.json (-1: the manifest's train and val splits)")
	schedule := fs.String("lr-schedule", "constant", "learning-rate schedule: constant, poly or cosine (per epoch)")
	warmup := fs.Int("warmup-epochs", 0, "linear learning-rate warm-up over the first W epochs (0: none)")
	ema := fs.Float64("ema", 0, "EMA decay of the weights in [0, 1) (0: no EMA)")
	precision := fs.String("precision", "fp32", "matrix-product arithmetic: fp32, or bf16 (bfloat16 operands, float32 accumulation and master weights; needs AVX-512-BF16)")
	winograd := fs.Int("winograd", 2, "Winograd output tile of the 3×3×3 convolutions: 2 (F(2,3)), or 4 (F(4,3): faster, about ten times the float32 rounding error)")
	if err := parseFlags(fs, trainUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("train: unexpected argument %q\n%s", fs.Arg(0), trainUsage)
	}
	if *out == "" {
		return errs.Usage("train: --out RUN is required\n%s", trainUsage)
	}
	given := explicitFlags(fs)
	if err := checkTrainFlags(given, *epochs, *batch, *lr, *dropout, *clip, *lambda, *temperature); err != nil {
		return err
	}
	if *extend && !*resume {
		return errs.Usage("train: --extend goes with --resume (it lets a resumed run train more epochs)\n%s", trainUsage)
	}
	var cfg train.Config
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *cfgFile != "":
		c, err := train.LoadConfig(*cfgFile)
		if err != nil {
			return err
		}
		cfg = c
	case *resume:
		c, err := train.LoadConfig(filepath.Join(*out, "config.json"))
		if err != nil {
			return err
		}
		cfg = c
	default:
		set = nil // take every flag
	}
	take := func(name string) bool { return set == nil || set[name] }
	if take("data") {
		cfg.Data = *data
	}
	if take("loss") {
		cfg.Loss = *lossName
	}
	if take("pairing") {
		cfg.Pairing = *pairing
	}
	if take("preset") {
		cfg.Model.Preset = *preset
	}
	if take("filters") {
		cfg.Model.Filters = *filters
	}
	if take("levels") {
		cfg.Model.Levels = *levels
	}
	if take("dropout") {
		cfg.Model.Dropout = float32(*dropout)
		if given["dropout"] && *dropout == 0 {
			cfg.Model.Dropout = -1 // an explicit 0, also for the seed preset (model.Config)
		}
	}
	if take("epochs") {
		cfg.Epochs = *epochs
	}
	if take("batch") {
		cfg.Batch = *batch
	}
	if take("lr") {
		cfg.LR = *lr
	}
	if take("seed") {
		cfg.Seed = *seed
	}
	if take("train-cases") {
		cfg.TrainCases = *trainCases
	}
	if take("val-every") {
		cfg.ValEvery = *valEvery
	}
	if take("clip-norm") {
		cfg.ClipNorm = *clip
		if *clip == 0 {
			cfg.ClipNorm = train.ClipOff
		}
	}
	if take("lambda") {
		cfg.Lambda = *lambda
	}
	if take("temperature") {
		cfg.Temperature = *temperature
	}
	if take("weight-decay") {
		cfg.WeightDecay = *wd
	}
	if take("decoupled") {
		cfg.DecoupledDecay = *decoupled
	}
	if take("threads") {
		cfg.Threads = *threads
	}
	if take("patch") {
		p, err := parsePatch(*patch)
		if err != nil {
			return err
		}
		cfg.Patch = p
	}
	if take("iters-per-epoch") {
		cfg.ItersPerEpoch = *iters
	}
	if explicitFlags(fs)["augment"] {
		a := *augmentOn
		cfg.Augment = &a
	}
	if take("lr-schedule") {
		cfg.LRSchedule = *schedule
	}
	if take("warmup-epochs") {
		cfg.WarmupEpochs = *warmup
	}
	if take("ema") {
		cfg.EMA = *ema
	}
	if take("precision") {
		cfg.Precision = *precision
		if cfg.Precision == "fp32" {
			cfg.Precision = ""
		}
	}
	if take("winograd") {
		if *winograd != 2 && *winograd != 4 {
			return errs.Usage("train: --winograd %d: want 2 (F(2,3), the default) or 4 (F(4,3))\n%s", *winograd, trainUsage)
		}
		cfg.Winograd = *winograd
		if cfg.Winograd == 2 {
			cfg.Winograd = 0
		}
	}
	if take("fold") {
		if *fold < -1 {
			return errs.Usage("train: --fold %d: want a fold number ≥ 0 (or -1: none)\n%s", *fold, trainUsage)
		}
		cfg.Fold = nil
		if *fold >= 0 {
			k := *fold
			cfg.Fold = &k
		}
	}
	if *initFrom != "" {
		if *resume {
			return errs.Usage("train: --init starts a run; --resume continues one from its checkpoint (give one of them)\n%s", trainUsage)
		}
		cfg.InitFrom = *initFrom
		if *cfgFile == "" {
			if err := applyInitConfig(&cfg, *initFrom, explicitFlags(fs)); err != nil {
				return err
			}
		}
	}
	if cfg.Data == "" {
		return errs.Usage("train: --data PREPARED is required\n%s", trainUsage)
	}
	if err := cfg.Defaults().Validate(); err != nil {
		return err
	}
	if p, err := dataset.Open(cfg.Data); err == nil {
		if err := cfg.CheckData(p); err != nil {
			return err
		}
	}
	if *resume {
		if err := checkResume(filepath.Join(*out, "config.json"), cfg, *extend); err != nil {
			return err
		}
	}
	opts := train.Options{Resume: *resume}
	if !*quiet {
		opts.Progress = stderr
	}
	// One fess at a time in a run folder, for the whole training.
	lk, err := lock.Acquire(*out, "train")
	if err != nil {
		return err
	}
	defer lk.Release()
	if err := lk.RemoveStaleTemps(stderr); err != nil {
		return err
	}
	t, err := train.New(cfg, *out, opts)
	if err != nil {
		return err
	}
	// SIGTERM, SIGUSR1 (Slurm's --signal=B:USR1@120) and SIGINT stop the
	// run after the step in progress with its state saved: exit 3 (130
	// for SIGINT), and --resume continues it.
	stop, release := train.NotifyStop()
	defer release()
	opts.Stop = stop
	logs, err := t.Run(opts)
	if opts.Progress == nil {
		for _, w := range t.Warnings {
			fmt.Fprintf(stderr, "fess: warning: %s\n", w)
		}
	}
	if err != nil {
		return err
	}
	if len(logs) > 0 {
		l := logs[len(logs)-1]
		fmt.Fprintf(stderr, "trained %d epochs: loss %.4f, train Dice %.3f", l.Epoch, l.Loss, l.TrainDice)
		if l.ValDice != nil {
			fmt.Fprintf(stderr, ", val Dice %.3f", *l.ValDice)
		}
		fmt.Fprintf(stderr, "; run in %s\n", *out)
	} else {
		fmt.Fprintf(stderr, "run in %s is already complete (%d epochs)\n", *out, cfg.Epochs)
	}
	return nil
}

// parsePatch reads --patch: "" (none), "P" (a cube) or "PX,PY,PZ".
func parsePatch(s string) ([3]int, error) {
	var p [3]int
	if s == "" {
		return p, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return p, errs.Usage("train: --patch %q: want P or PX,PY,PZ\n%s", s, trainUsage)
	}
	for i, f := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return p, errs.Usage("train: --patch %q: sizes must be positive integers\n%s", s, trainUsage)
		}
		p[i] = v
	}
	if len(parts) == 1 {
		p[1], p[2] = p[0], p[0]
	}
	return p, nil
}

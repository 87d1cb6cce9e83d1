// Package train runs the training loop of docs/method.md (FESS and the baseline
// losses on the UNet3D), its validation, checkpoints, logs and resumption,
// and the evaluation and prediction that read a finished run.
//
// A run folder holds everything needed to re-run or continue it:
//
//	config.json   the full, resolved Config (re-run with `fess train --config RUN/config.json`)
//	log.jsonl     one JSON object per epoch: loss parts, train and validation metrics,
//	              the epoch's learning rate (lr), seconds
//	task.json          the data set's input channels, output regions or classes and label convention
//	last.safetensors   model weights under the PyTorch module's state_dict names (model/torch/fess_unet.py),
//	                   BatchNorm statistics, and under fess/… the dropout RNGs, optimiser and loop state
//	                   after the last finished epoch (runs of earlier versions hold last.ckpt, still read)
//	best.safetensors   the same, for the epoch with the best validation Dice
//	ema.safetensors    with Config.EMA: the EMA weights as of last.safetensors
//	                   (ema.go; docs/training.md)
//
// Checkpoints are written atomically (temp file + rename). With the same
// seed and thread count, a run resumed from its last checkpoint ends with weights
// bit-identical to an uninterrupted run: every random choice (shuffle,
// augmentation, patch positions, dropout) is a pure function of the seed
// and a counter that the checkpoint stores (patch.go: the step and the
// sample's place in the batch).
package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/model"
)

// Config is a training run's full configuration.
type Config struct {
	// Data is the prepared data folder (fess prepare's output).
	Data string `json:"data"`
	// Loss is one of fess, dice, simclr, infonce, bce, dicebce, focal, tversky.
	Loss string `json:"loss"`
	// Pairing chooses FESS's feature pairs: previous-batch (default),
	// same-batch or seed-exact (docs/method.md).
	Pairing string       `json:"pairing"`
	Model   model.Config `json:"model"`
	Epochs  int          `json:"epochs"`
	Batch   int          `json:"batch"`
	LR      float64      `json:"lr"`
	Seed    uint64       `json:"seed"`
	// TrainCases, if > 0, uses only the first N training cases (in the
	// manifest's order), for the sample-size study.
	TrainCases int `json:"train_cases"`
	// ValEvery validates every k epochs (and always after the last).
	ValEvery int `json:"val_every"`
	// ClipNorm clips the global gradient norm (0, unset: 1.0; ClipOff,
	// what `--clip-norm 0` writes: no clipping).
	ClipNorm float64 `json:"clip_norm"`
	// WeightDecay is PyTorch Adam's L2 term (added to the gradient), or
	// AdamW's decoupled decay when DecoupledDecay is set.
	WeightDecay    float64 `json:"weight_decay"`
	DecoupledDecay bool    `json:"decoupled_weight_decay"`
	// Lambda, Scale and Temperature parameterise every contrastive loss:
	// total = λ·Dice + (1−λ)·scale·L_contrastive.
	Lambda      float64 `json:"lambda"`
	Scale       float64 `json:"contrastive_scale"`
	Temperature float64 `json:"temperature"`
	// ProjectionDim and QueueLen size SimCLR/InfoNCE's projection head and
	// InfoNCE's queue of previous keys.
	ProjectionDim int `json:"projection_dim"`
	QueueLen      int `json:"queue_len"`
	// Threads is the number of worker threads (results are bit-identical
	// for a given value; 0: DefaultThreads).
	Threads int `json:"threads"`
	// InitFrom, if set, is a safetensors state_dict (the PyTorch module of
	// model/torch/fess_unet.py, e.g. trained in PyTorch or written by
	// `fess export`) whose weights and BatchNorm statistics replace the
	// seeded initialisation when the run starts (not on resume). A fess
	// checkpoint (a run's last, best or ema.safetensors) is accepted too:
	// its state_dict part, without the fess/ training state.
	InitFrom string `json:"init_from,omitempty"`
	// Patch, when set, trains on random patches of Patch[0]×Patch[1]×Patch[2]
	// voxels (x, y, z; each a positive multiple of 2^levels) drawn from
	// the training cases instead of on whole cubes, and validates by
	// sliding window (see patch.go). Required for a data set prepared in
	// the spacing mode; zero (absent from older configs): cube training.
	Patch [3]int `json:"patch,omitzero"`
	// ItersPerEpoch is the number of optimiser steps of a patch-training
	// epoch (0: ceil(training cases / batch), the steps a cube epoch
	// takes; resolved when the run starts).
	ItersPerEpoch int `json:"iters_per_epoch,omitempty"`
	// Augment turns on the on-the-fly augmentation of package augment
	// (augment.DefaultPatch: flips, rotation, scaling, intensity scale,
	// shift and gamma) on every training sample. Unset: on for patch
	// training, off for cube training (as runs before the field existed).
	Augment *bool `json:"augment,omitempty"`
	// Fold, when set, trains on fold k of the data set's splits.json
	// (fess prepare --folds): its train cases (TrainCases still limits
	// them) and validates on its val cases, instead of the manifest's
	// train and val splits. Unset (older configs): the manifest's splits.
	Fold *int `json:"fold,omitempty"`
	// LRSchedule is the learning-rate schedule over the epochs: constant
	// (default; absent from older configs), poly or cosine (schedule.go,
	// Config.EpochLR). WarmupEpochs, if > 0, ramps the rate up linearly
	// over that many first epochs (< Epochs).
	LRSchedule   string `json:"lr_schedule,omitempty"`
	WarmupEpochs int    `json:"warmup_epochs,omitempty"`
	// EMA, if > 0, is the decay d in [0, 1) of an exponential moving
	// average of the model's weights and BatchNorm running statistics,
	// updated after every optimiser step (avg ← d·avg + (1−d)·live),
	// checkpointed with the run, validated each validation epoch
	// (val_dice_ema) and saved as ema.safetensors. 0 (absent): none.
	EMA float64 `json:"ema,omitempty"`
	// Precision is the arithmetic of the network's matrix products: "" or
	// "fp32" (float32 throughout), or "bf16" (operands rounded to
	// bfloat16, products accumulated in float32, float32 master weights,
	// optimiser and everything outside the GEMMs; needs AVX-512-BF16).
	// It applies to the training steps and the validation.
	Precision string `json:"precision,omitempty"`
	// Winograd is the output tile of the 3×3×3 convolutions' Winograd
	// algorithm: 0 or 2 (F(2×2×2, 3×3×3), the default), or 4
	// (F(4×4×4, 3×3×3): about 1.2–1.4× faster training steps on the
	// paper's networks, with about ten times F(2,3)'s float32 rounding
	// error; docs/performance.md). It applies to the training steps and
	// the validation; a resumed run keeps it.
	Winograd int `json:"winograd,omitempty"`
}

// SetPrecision selects the GEMM arithmetic of the whole process by a
// --precision value ("" = fp32); bf16 on a CPU without AVX-512-BF16 is a
// usage error naming the flag.
func SetPrecision(p string) error {
	if p == "" {
		p = "fp32"
	}
	prec, err := kernels.ParsePrecision(p)
	if err != nil {
		return errs.Usage("--precision %q: want fp32 or bf16", p)
	}
	if err := kernels.SetPrecision(prec); err != nil {
		return errs.Usage("--precision bf16: this CPU has no AVX-512-BF16 (VDPBF16PS), which fess's bfloat16 matrix products need; use --precision fp32")
	}
	return nil
}

// SetWinograd selects the convolutions' Winograd tile of the whole process
// by a --winograd value (0 = 2); anything but 2 or 4 is a usage error
// naming the flag.
func SetWinograd(m int) error {
	if m == 0 {
		m = 2
	}
	if err := autodiff.SetWinograd(m); err != nil {
		return errs.Usage("--winograd %d: want 2 (F(2,3), the default) or 4 (F(4,3): faster, about ten times the float32 rounding error)", m)
	}
	return nil
}

// Patched reports whether c trains on patches.
func (c Config) Patched() bool { return c.Patch != [3]int{} }

// Augmenting reports whether c augments its training samples (after
// Defaults; before, an unset Augment reads as the mode's default).
func (c Config) Augmenting() bool {
	if c.Augment != nil {
		return *c.Augment
	}
	return c.Patched()
}

// Losses lists the accepted loss names.
var Losses = []string{"fess", "dice", "simclr", "infonce", "bce", "dicebce", "focal", "tversky"}

// Pairings lists FESS's pairing modes.
var Pairings = []string{"previous-batch", "same-batch", "seed-exact"}

// Defaults fills zero fields. The `seed` preset takes the reference's recipe
// (Adam lr 1e-5, batch 5, 150 epochs); the `unet3d` preset defaults suit a
// CPU (lr 1e-3, batch 2, 30 epochs). Both clip the global norm at 1.0, use
// λ = 0.5, scale 1e-4 and T = 0.5 as the reference does.
func (c Config) Defaults() Config {
	if c.Loss == "" {
		c.Loss = "fess"
	}
	if c.Pairing == "" {
		c.Pairing = "previous-batch"
	}
	if c.Model.Preset == "" {
		c.Model.Preset = "unet3d"
	}
	seed := c.Model.Preset == "seed"
	def := func(v *int, unet, ref int) {
		if *v == 0 {
			*v = unet
			if seed {
				*v = ref
			}
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Epochs, 30, 150)
	def(&c.Batch, 2, 5)
	if c.LR == 0 {
		c.LR = 1e-3
		if seed {
			c.LR = 1e-5
		}
	}
	if c.Seed == 0 {
		c.Seed = 42
	}
	def(&c.ValEvery, 1, 1)
	deff(&c.ClipNorm, 1.0)
	deff(&c.Lambda, 0.5)
	deff(&c.Scale, 1e-4)
	deff(&c.Temperature, 0.5)
	def(&c.ProjectionDim, 128, 128)
	def(&c.QueueLen, 64, 64)
	if c.Augment == nil {
		a := c.Patched()
		c.Augment = &a
	}
	if c.Threads == 0 {
		c.Threads = DefaultThreads()
	}
	if c.LRSchedule == "" {
		c.LRSchedule = "constant"
	}
	return c
}

// ClipOff in Config.ClipNorm turns gradient clipping off (a zero ClipNorm
// is unset and takes the default 1.0).
const ClipOff = -1.0

// DefaultThreads is the default worker thread count: every CPU the
// process may use (runtime.NumCPU honours the affinity mask, so taskset
// and cgroup cpusets count), or SLURM_CPUS_PER_TASK when it is set and
// smaller.
func DefaultThreads() int {
	n := max(1, numCPU())
	if v, err := strconv.Atoi(strings.TrimSpace(os.Getenv("SLURM_CPUS_PER_TASK"))); err == nil && v >= 1 && v < n {
		n = v
	}
	return n
}

// finiteCfg reports whether v is neither NaN nor ±Inf.
func finiteCfg(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate checks a defaulted Config.
func (c Config) Validate() error {
	if c.Data == "" {
		return errs.Usage("train: --data PREPARED is required")
	}
	if !contains(Losses, c.Loss) {
		return errs.Usage("train: unknown loss %q (want one of %s)", c.Loss, strings.Join(Losses, ", "))
	}
	if !contains(Pairings, c.Pairing) {
		return errs.Usage("train: unknown pairing %q (want one of %s)", c.Pairing, strings.Join(Pairings, ", "))
	}
	if c.Epochs < 1 {
		return errs.Usage("train: --epochs %d: want ≥ 1", c.Epochs)
	}
	if c.Batch < 1 {
		return errs.Usage("train: --batch %d: want ≥ 1", c.Batch)
	}
	if !(c.LR > 0) || !finiteCfg(c.LR) {
		return errs.Usage("train: --lr %g: want a finite learning rate > 0", c.LR)
	}
	if c.TrainCases < 0 {
		return errs.Usage("train: --train-cases %d: want ≥ 1 (or 0: all training cases)", c.TrainCases)
	}
	if c.ValEvery < 1 {
		return errs.Usage("train: --val-every %d: want ≥ 1", c.ValEvery)
	}
	if _, err := kernels.ParsePrecision(c.Precision); c.Precision != "" && err != nil {
		return errs.Usage("train: --precision %q (precision): want fp32 or bf16", c.Precision)
	}
	if c.Winograd != 0 && c.Winograd != 2 && c.Winograd != 4 {
		return errs.Usage("train: --winograd %d (winograd): want 2 or 4", c.Winograd)
	}
	if c.Threads < 1 {
		return errs.Usage("train: --threads %d: want ≥ 1 (or 0: all CPUs)", c.Threads)
	}
	if !finiteCfg(c.ClipNorm) || (c.ClipNorm < 0 && c.ClipNorm != ClipOff) {
		return errs.Usage("train: --clip-norm %g: want a finite norm > 0 (or 0: no clipping)", c.ClipNorm)
	}
	if !finiteCfg(c.WeightDecay) || c.WeightDecay < 0 {
		return errs.Usage("train: --weight-decay %g: want a finite value ≥ 0", c.WeightDecay)
	}
	if !(c.Lambda > 0 && c.Lambda <= 1) {
		return errs.Usage("train: --lambda %g: want 0 < λ ≤ 1 (the Dice weight)", c.Lambda)
	}
	if !(c.Temperature > 0) || !finiteCfg(c.Temperature) {
		return errs.Usage("train: --temperature %g: want a finite temperature > 0", c.Temperature)
	}
	if !(c.Scale > 0) || !finiteCfg(c.Scale) {
		return errs.Usage("train: contrastive_scale %g: want a finite scale > 0", c.Scale)
	}
	if c.ProjectionDim < 1 || c.QueueLen < 1 {
		return errs.Usage("train: projection_dim %d, queue_len %d: want ≥ 1", c.ProjectionDim, c.QueueLen)
	}
	if d := float64(c.Model.Dropout); math.IsNaN(d) || d >= 1 || (d < 0 && d != -1) {
		return errs.Usage("train: --dropout %g: want a probability in [0, 1)", d)
	}
	if c.Patched() {
		for _, v := range c.Patch {
			if v < 1 {
				return errs.Usage("train: patch %d,%d,%d: every size must be positive", c.Patch[0], c.Patch[1], c.Patch[2])
			}
		}
	}
	if c.ItersPerEpoch < 0 {
		return errs.Usage("train: iters-per-epoch %d must be ≥ 0 (0: ceil(training cases / batch))", c.ItersPerEpoch)
	}
	if c.ItersPerEpoch > 0 && !c.Patched() {
		return errs.Usage("train: --iters-per-epoch is for patch training (--patch); a cube epoch is one pass over the training cases")
	}
	if c.Fold != nil && *c.Fold < 0 {
		return errs.Usage("train: fold %d must be ≥ 0", *c.Fold)
	}
	if !contains(Schedules, c.LRSchedule) {
		return errs.Usage("train: --lr-schedule %q (lr_schedule): want one of %s", c.LRSchedule, strings.Join(Schedules, ", "))
	}
	if c.WarmupEpochs < 0 || c.WarmupEpochs >= c.Epochs {
		return errs.Usage("train: --warmup-epochs %d (warmup_epochs): want 0 ≤ W < --epochs %d", c.WarmupEpochs, c.Epochs)
	}
	if !(c.EMA >= 0 && c.EMA < 1) {
		return errs.Usage("train: --ema %g (ema): want a decay in [0, 1) (0: no EMA)", c.EMA)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// LoadConfig reads a config.json written by a run (or by hand). A field
// given explicitly as 0 where 0 means "unset, take the default" is
// refused (naming it) rather than silently replaced, except these explicit
// zeros, which keep their meaning: model.Dropout 0 (no dropout, also with
// the seed preset) and clip_norm 0 (no clipping).
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, errs.Input(path, "cannot read config: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, errs.Input(path, "bad config: %v", err)
	}
	if err := explicitZeros(&c, data); err != nil {
		return c, errs.Input(path, "bad config: %v", err)
	}
	return c, nil
}

// explicitZeros applies LoadConfig's rule for fields written as 0.
func explicitZeros(c *Config, data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	isZero := func(m map[string]json.RawMessage, key string) bool {
		for k, v := range m {
			if strings.EqualFold(k, key) {
				var f float64
				return json.Unmarshal(v, &f) == nil && f == 0
			}
		}
		return false
	}
	for _, k := range []string{"epochs", "batch", "lr", "val_every", "lambda", "contrastive_scale", "temperature", "projection_dim", "queue_len"} {
		if isZero(raw, k) {
			return fmt.Errorf("%s 0 is not a valid value (leave the field out for the default)", k)
		}
	}
	if isZero(raw, "clip_norm") {
		c.ClipNorm = ClipOff
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw["model"], &m) == nil && isZero(m, "dropout") {
		c.Model.Dropout = -1
	}
	return nil
}

// CheckData checks c against the prepared data set p: TrainCases may not
// exceed the training cases of the split it draws from (the manifest's
// train split, or fold Fold's train list).
func (c Config) CheckData(p *dataset.Prepared) error {
	n, from := len(p.Split("train")), "the training split"
	if c.Fold != nil {
		folds, err := p.Folds()
		if err != nil {
			return err
		}
		if *c.Fold < 0 || *c.Fold >= len(folds) {
			return errs.Usage("train: --fold %d: the data set has %d folds (0 to %d)", *c.Fold, len(folds), len(folds)-1)
		}
		n, from = len(folds[*c.Fold].Train), fmt.Sprintf("fold %d's train list", *c.Fold)
	}
	if c.TrainCases > n {
		return errs.Usage("train: --train-cases %d exceeds the %d cases of %s in %s", c.TrainCases, n, from, c.Data)
	}
	return nil
}

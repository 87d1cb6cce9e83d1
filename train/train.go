package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/internal/progress"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

func numCPU() int { return runtime.NumCPU() }

// Sample is one prepared case held in memory: the image's C channels of
// S³ values one after the other and the mask's K regions of S³ 0/1 values
// one after the other, x fastest within each (as dataset.Prepared.Load
// returns them). With one channel this is exactly the [D,H,W] (z,y,x)
// row-major layout of one channels-last sample. Dims is the case's X, Y, Z
// (S, S, S for a cube; a case of the spacing mode has its own).
type Sample struct {
	ID   string
	Img  []float32
	Mask []uint8
	Dims [3]int
}

// EpochLog is one line of log.jsonl.
type EpochLog struct {
	Epoch     int                `json:"epoch"`
	Steps     int64              `json:"steps"`
	Loss      float64            `json:"loss"`
	Parts     map[string]float64 `json:"-"`
	TrainDice float64            `json:"train_dice"`
	ValDice   *float64           `json:"val_dice,omitempty"`
	ValLoss   *float64           `json:"val_loss,omitempty"`
	// ValDiceEMA is the validation Dice of the EMA weights (Config.EMA),
	// on the epochs that validate.
	ValDiceEMA *float64 `json:"val_dice_ema,omitempty"`
	Seconds    float64  `json:"seconds"`
	// LR is the learning rate of the epoch's steps (Config.EpochLR).
	LR float64 `json:"lr"`
}

// MarshalJSON flattens Parts (dice_loss, con_loss, …) into the object.
func (e EpochLog) MarshalJSON() ([]byte, error) {
	type plain EpochLog
	b, err := json.Marshal(plain(e))
	if err != nil || len(e.Parts) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range e.Parts {
		m[k] = v
	}
	return json.Marshal(m)
}

// Options are the per-invocation settings that are not part of the run's
// configuration.
type Options struct {
	Resume   bool
	Progress io.Writer // progress bar destination (nil: none)
	// Stop, when set, is read between optimiser steps without blocking: a
	// signal on it stops the run after the step in progress with its state
	// saved (signal.go; NotifyStop relays SIGTERM, SIGUSR1 and SIGINT).
	Stop <-chan os.Signal
	// killAtStep, for tests, stops the process with SIGKILL before the given
	// global step (1-based); see kill_test.go.
	killAtStep int64
	// afterStep, for tests, runs after every optimiser step, before the
	// step's checks.
	afterStep func(*Trainer)
}

// Trainer holds a run in progress.
type Trainer struct {
	Cfg   Config
	Out   string
	Model *model.UNet3D
	opt   *optim.Adam
	obj   objective
	train []Sample
	val   []Sample
	size  int
	task  dataset.Task
	fg    [][][]int32 // patch training: per training case and region, its foreground voxels

	epoch     int   // epochs completed
	step      int64 // optimiser steps taken
	bestDice  float64
	bestEpoch int
	pos       *epochPos // set while the epoch t.epoch+1 is part done (mid-epoch checkpoint)

	// With Config.EMA: ema is a second model holding the averages of
	// Model's weights and BatchNorm statistics, which emaAvg updates.
	ema    *model.UNet3D
	emaAvg *optim.EMA

	// Warnings are the run's end-of-training warnings (a stagnant loss);
	// Run also prints them to Options.Progress.
	Warnings []string
}

// LoadSamples reads the named split of a prepared folder into memory.
func LoadSamples(p *dataset.Prepared, split string, limit int) ([]Sample, error) {
	infos := p.Split(split)
	if limit > 0 && limit < len(infos) {
		infos = infos[:limit]
	}
	out := make([]Sample, 0, len(infos))
	for _, ci := range infos {
		img, mask, err := p.Load(ci.ID)
		if err != nil {
			return nil, err
		}
		s := p.Size()
		out = append(out, Sample{ID: ci.ID, Img: img, Mask: mask, Dims: [3]int{s, s, s}})
	}
	return out, nil
}

// New sets up a run in out: it loads the data, builds the model and the
// objective, and (with resume) restores the last checkpoint
// (last.safetensors, or an older run's last.ckpt).
func New(cfg Config, out string, opts Options) (*Trainer, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tensor.SetThreads(cfg.Threads)
	kernels.SetThreads(cfg.Threads)
	if err := SetPrecision(cfg.Precision); err != nil {
		return nil, err
	}
	if err := SetWinograd(cfg.Winograd); err != nil {
		return nil, err
	}
	p, err := dataset.Open(cfg.Data)
	if err != nil {
		return nil, err
	}
	spacing := p.Patched()
	if spacing && !cfg.Patched() {
		return nil, errs.Usage("train: %s was prepared in the spacing mode (every case has its own dims): train on patches with --patch X[,Y,Z]", cfg.Data)
	}
	t := &Trainer{Cfg: cfg, Out: out, size: p.Size(), bestDice: -1, task: p.Task()}
	trainIDs, valIDs := splitIDs(p, "train", cfg.TrainCases), splitIDs(p, "val", 0)
	if cfg.Fold != nil {
		if trainIDs, valIDs, err = foldIDs(p, *cfg.Fold, cfg.TrainCases); err != nil {
			return nil, err
		}
	}
	if t.train, err = loadCases(p, trainIDs); err != nil {
		return nil, err
	}
	if len(t.train) == 0 {
		return nil, errs.Input(cfg.Data, "prepared data has no training cases")
	}
	if t.val, err = loadCases(p, valIDs); err != nil {
		return nil, err
	}
	mc := cfg.Model
	if mc.InputSize == 0 {
		mc.InputSize = t.size
		if spacing {
			// No cube edge: the model records the patch's smallest edge
			// (it is fully convolutional; Config.Patch is the shape).
			mc.InputSize = min(cfg.Patch[0], cfg.Patch[1], cfg.Patch[2])
		}
	}
	if !spacing && mc.InputSize != t.size {
		return nil, errs.Usage("train: model input size %d differs from the prepared size %d", mc.InputSize, t.size)
	}
	if mc.Seed == 0 {
		mc.Seed = cfg.Seed
	}
	// The data set decides the channels in and out.
	if nc := len(t.task.Channels); mc.InChannels == 0 {
		mc.InChannels = nc
	} else if mc.InChannels != nc {
		return nil, errs.Usage("train: model input channels %d differ from the data's %d (%s)", mc.InChannels, nc, strings.Join(t.task.Channels, ","))
	}
	if ko := t.task.OutChannels(); mc.OutChannels == 0 {
		mc.OutChannels = ko
	} else if mc.OutChannels != ko {
		return nil, errs.Usage("train: model output channels %d differ from the data's %d (%s)", mc.OutChannels, ko, strings.Join(t.task.RegionNames(), ","))
	}
	if mc.Softmax != t.task.Softmax && mc.Softmax {
		return nil, errs.Usage("train: the model config asks for softmax classes but the data has sigmoid regions")
	}
	mc.Softmax = t.task.Softmax
	if t.Model, err = model.New(mc); err != nil {
		return nil, err
	}
	if cfg.InitFrom != "" && !opts.Resume {
		if err := initWeights(t.Model, cfg.InitFrom); err != nil {
			return nil, err
		}
	}
	t.Cfg.Model = t.Model.Cfg
	if cfg.EMA > 0 {
		if err := t.initEMA(); err != nil {
			return nil, err
		}
	}
	if cfg.Patched() {
		f := 1 << t.Model.Cfg.Levels
		for _, v := range cfg.Patch {
			if v%f != 0 {
				return nil, errs.Usage("train: patch %d,%d,%d: every size must be a multiple of 2^levels = %d", cfg.Patch[0], cfg.Patch[1], cfg.Patch[2], f)
			}
		}
		if t.Cfg.ItersPerEpoch == 0 {
			t.Cfg.ItersPerEpoch = (len(t.train) + cfg.Batch - 1) / cfg.Batch
		}
		t.fg = make([][][]int32, len(t.train))
		for i, s := range t.train {
			t.fg[i] = foreground(s.Mask, s.Dims[0]*s.Dims[1]*s.Dims[2])
		}
	}
	t.opt = optim.NewAdam(cfg.LR)
	t.opt.WeightDecay = cfg.WeightDecay
	t.opt.Decoupled = cfg.DecoupledDecay
	if t.obj, err = newObjective(t.Cfg, t.Model); err != nil {
		return nil, err
	}
	if cfg.Loss == "fess" && cfg.Pairing == "same-batch" && t.Model.Cfg.Dropout == 0 {
		w := "--pairing same-batch without dropout: the second pass of the batch equals the first, so the contrastive term is the constant log(N·C) with zero gradient and FESS trains λ·Dice alone (docs/method.md); add --dropout, or use previous-batch"
		t.Warnings = append(t.Warnings, w)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "fess: warning: %s\n", w)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create run folder: %w", err)
	}
	if opts.Resume {
		if err := checkScheduleExtend(filepath.Join(out, "config.json"), cfg); err != nil {
			return nil, err
		}
		if err := t.restore(LastPath(out)); err != nil {
			return nil, err
		}
	} else if HasCheckpoint(out) {
		return nil, errs.Usage("train: %s already holds a run; use --resume to continue it or choose another --out", out)
	}
	if err := atomicio.WriteJSON(filepath.Join(out, "config.json"), t.Cfg); err != nil {
		return nil, err
	}
	if err := saveDataOptions(out, p.Options()); err != nil {
		return nil, err
	}
	if err := atomicio.WriteJSON(filepath.Join(out, taskFile), t.task); err != nil {
		return nil, err
	}
	return t, nil
}

// params returns every trained parameter (the model's and the objective's).
func (t *Trainer) params() []*autodiff.Var {
	return append(append([]*autodiff.Var(nil), t.Model.Params()...), t.obj.params()...)
}

// batch fills x [n,S,S,S,C] and y [n,S,S,S,K'] (0/1) from samples idx:
// channels last, one y channel per region, or with softmax classes the
// background (1 − the classes) as channel 0 and one channel per class.
// With Augment, sample b of the batch is first augmented from
// sampleRNG(seed, step, b) (augmentCube).
func (t *Trainer) batch(samples []Sample, idx []int, step int64) (*tensor.Tensor, *tensor.Tensor) {
	s := t.size
	vox := s * s * s
	c, k := len(t.task.Channels), t.task.OutChannels()
	x := tensor.New(len(idx), s, s, s, c)
	y := tensor.New(len(idx), s, s, s, k)
	aug := t.Cfg.Augmenting()
	for b, i := range idx {
		img, mask := samples[i].Img, samples[i].Mask
		if aug {
			img, mask = t.augmentCube(samples[i], step, b)
		}
		interleave(x.Data[b*vox*c:(b+1)*vox*c], img, c)
		targetChannels(y.Data[b*vox*k:(b+1)*vox*k], mask, vox, t.task.Softmax)
	}
	return x, y
}

// interleave writes channel-after-channel values src (c blocks) into dst
// channels last.
func interleave(dst, src []float32, c int) {
	if c == 1 {
		copy(dst, src)
		return
	}
	vox := len(src) / c
	for ch := 0; ch < c; ch++ {
		blk := src[ch*vox : (ch+1)*vox]
		for i, v := range blk {
			dst[i*c+ch] = v
		}
	}
}

// targetChannels writes the K region masks (region after region) into dst
// channels last; with softmax, channel 0 is the background.
func targetChannels(dst []float32, mask []uint8, vox int, softmax bool) {
	k := len(mask) / vox
	if !softmax {
		if k == 1 {
			for j, m := range mask {
				dst[j] = float32(m)
			}
			return
		}
		for r := 0; r < k; r++ {
			for i, m := range mask[r*vox : (r+1)*vox] {
				dst[i*k+r] = float32(m)
			}
		}
		return
	}
	kk := k + 1
	for i := 0; i < vox; i++ {
		bg := float32(1)
		for r := 0; r < k; r++ {
			if mask[r*vox+i] != 0 {
				dst[i*kk+r+1] = 1
				bg = 0
			}
		}
		dst[i*kk] = bg
	}
}

// permutation is epoch e's order of the training set: a pure function of
// the seed and the epoch, so a resumed run replays it.
func permutation(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, 0x5eed0000+uint64(epoch))).Perm(n)
}

// Run trains until cfg.Epochs epochs are complete and returns the log of
// the epochs it ran. A signal on opts.Stop ends it early with the state
// saved and an *ErrInterrupted (signal.go); a non-finite training loss,
// weight or validation loss ends it with nothing of the bad step written
// and an *ErrNonFinite (guard.go).
func (t *Trainer) Run(opts Options) ([]EpochLog, error) {
	var logs []EpochLog
	n := len(t.train)
	stepsPerEpoch := (n + t.Cfg.Batch - 1) / t.Cfg.Batch
	if t.Cfg.Patched() {
		stepsPerEpoch = t.Cfg.ItersPerEpoch
	}
	total := int64(stepsPerEpoch * (t.Cfg.Epochs - t.epoch))
	if t.pos != nil {
		total -= int64(t.pos.it)
	}
	// A bar on a terminal; plain lines (every 10 s and at each epoch's
	// end) in a log.
	bar := progress.New(opts.Progress, total, fmt.Sprintf("train %s %s", t.Cfg.Loss, filepath.Base(t.Out)))
	defer bar.Finish()
	last := filepath.Join(t.Out, LastCheckpoint)
	// Arena tapes reuse their buffers from step to step, so a steady-state
	// step allocates almost nothing; no Var of theirs is used after Reset.
	tp, ng := autodiff.NewArenaTape(), autodiff.NewNoGradArena()
	for t.epoch < t.Cfg.Epochs {
		e := t.epoch + 1
		start := time.Now()
		lr := t.Cfg.EpochLR(e)
		t.opt.SetLR(lr)
		perm := permutation(t.Cfg.Seed, e, n)
		sums := map[string]float64{}
		var lossSum, diceSum, before float64
		var batches, it0 int
		if p := t.pos; p != nil {
			// Resumed mid-epoch: continue after the saved step.
			it0, batches, lossSum, diceSum, before = p.it, p.batches, p.lossSum, p.diceSum, p.seconds
			for k, v := range p.parts {
				sums[k] = v
			}
		}
		for it := it0; it < stepsPerEpoch; it++ {
			if opts.killAtStep > 0 && t.step+1 == opts.killAtStep {
				killSelf()
			}
			var xt, yt *tensor.Tensor
			if t.Cfg.Patched() {
				xt, yt = t.patchBatch(t.step)
			} else {
				b0 := it * t.Cfg.Batch
				xt, yt = t.batch(t.train, perm[b0:min(b0+t.Cfg.Batch, n)], t.step)
			}
			x, y := autodiff.Const(xt), autodiff.Const(yt)
			optim.ZeroGrad(t.params())
			res := t.obj.step(tp, ng, x, y, t.step)
			lv := float64(res.total.Item())
			d := t.hardDice(res.probs.Value.Data, yt.Data)
			if !finite(lv) {
				tp.Reset()
				ng.Reset()
				return logs, &ErrNonFinite{Quantity: "training loss", Epoch: e, Step: t.step + 1, Value: lv, Ckpt: LastPath(t.Out)}
			}
			tp.Backward(res.total)
			tp.Reset()
			ng.Reset()
			if t.Cfg.ClipNorm > 0 {
				optim.ClipGradNorm(t.params(), t.Cfg.ClipNorm)
			}
			t.opt.Step(t.params())
			if opts.afterStep != nil {
				opts.afterStep(t)
			}
			if ws := paramSum(t.params()); !finite(ws) {
				return logs, &ErrNonFinite{Quantity: "weights", Epoch: e, Step: t.step + 1, Value: ws, Ckpt: LastPath(t.Out)}
			}
			if t.emaAvg != nil {
				t.emaAvg.Update()
			}
			t.obj.after()
			t.step++
			batches++
			lossSum += lv
			for k, v := range res.parts {
				sums[k] += v
			}
			diceSum += d
			bar.Describe(fmt.Sprintf("train %s ep %d/%d step %d/%d loss %.4f dice %.3f", t.Cfg.Loss, e, t.Cfg.Epochs, it+1, stepsPerEpoch, lv, d))
			bar.Add(1)
			if it+1 < stepsPerEpoch {
				if sig := pending(opts.Stop); sig != nil {
					// Save the loop exactly here: the epoch's position and
					// sums go with the checkpoint; no log line is written.
					t.pos = &epochPos{it: it + 1, batches: batches, lossSum: lossSum, diceSum: diceSum,
						seconds: before + time.Since(start).Seconds(), parts: sums}
					if err := t.saveLast(); err != nil {
						return logs, err
					}
					return logs, &ErrInterrupted{Signal: sig, Epoch: e, Step: t.step, Ckpt: last, Out: t.Out}
				}
			}
		}
		t.epoch = e
		t.pos = nil
		el := EpochLog{Epoch: e, Steps: t.step, Loss: lossSum / float64(batches),
			TrainDice: diceSum / float64(batches), LR: lr, Parts: map[string]float64{}}
		for k, v := range sums {
			el.Parts[k] = v / float64(batches)
		}
		if len(t.val) > 0 && (e%t.Cfg.ValEvery == 0 || e == t.Cfg.Epochs) {
			vd, vl, err := t.validateModel(t.Model)
			if err != nil {
				return logs, err
			}
			if !finite(vl) || !finite(vd) {
				v := vl
				if finite(v) {
					v = vd
				}
				return logs, &ErrNonFinite{Quantity: "validation loss", Epoch: e, Step: t.step, Value: v, Ckpt: LastPath(t.Out)}
			}
			el.ValDice, el.ValLoss = &vd, &vl
			if t.ema != nil {
				ed, _, err := t.validateModel(t.ema)
				if err != nil {
					return logs, err
				}
				if finite(ed) {
					el.ValDiceEMA = &ed
				}
			}
			if vd > t.bestDice {
				t.bestDice, t.bestEpoch = vd, e
				if err := t.save(filepath.Join(t.Out, BestCheckpoint)); err != nil {
					return logs, err
				}
			}
		}
		el.Seconds = before + time.Since(start).Seconds()
		// Checkpoint first, then the log line: on resume the log is cut back
		// to the checkpoint's epoch, so the two always agree.
		if err := t.saveLast(); err != nil {
			return logs, err
		}
		if err := appendLog(filepath.Join(t.Out, "log.jsonl"), el); err != nil {
			return logs, err
		}
		logs = append(logs, el)
		// The epoch's means in a log (a terminal's bar ignores Line).
		desc := fmt.Sprintf("train %s ep %d/%d loss %.4f dice %.3f", t.Cfg.Loss, e, t.Cfg.Epochs, el.Loss, el.TrainDice)
		if el.ValDice != nil {
			desc += fmt.Sprintf(" val_dice %.3f", *el.ValDice)
		}
		bar.Describe(desc)
		bar.Line()
		if t.epoch < t.Cfg.Epochs {
			if sig := pending(opts.Stop); sig != nil {
				// The epoch's checkpoint and log line are written already.
				return logs, &ErrInterrupted{Signal: sig, Epoch: e, Step: t.step, Ckpt: last, Out: t.Out}
			}
		}
	}
	if len(t.val) == 0 {
		// No validation split: the last epoch is the best we know.
		if err := t.save(filepath.Join(t.Out, BestCheckpoint)); err != nil {
			return logs, err
		}
	}
	if w := stagnation(logLosses(filepath.Join(t.Out, "log.jsonl"))); w != "" {
		t.Warnings = append(t.Warnings, w)
		if opts.Progress != nil {
			bar.Finish()
			fmt.Fprintf(opts.Progress, "fess: warning: %s\n", w)
		}
	}
	return logs, nil
}

// validate returns the mean per-case Dice (threshold 0.5; several regions:
// the mean over regions) and mean per-case soft Dice loss over the
// validation cases, in inference mode.
func (t *Trainer) validate() (dice, loss float64) { return t.validateCube(t.Model) }

// validateModel validates m (the live model or the EMA one) as the run's
// mode does: whole cubes, or by sliding window for patch training.
func (t *Trainer) validateModel(m *model.UNet3D) (dice, loss float64, err error) {
	if t.Cfg.Patched() {
		return t.validatePatchModel(m)
	}
	dice, loss = t.validateCube(m)
	return dice, loss, nil
}

// validateCube is validate for the model m.
func (t *Trainer) validateCube(m *model.UNet3D) (dice, loss float64) {
	ng := autodiff.NewNoGradArena()
	vox := t.size * t.size * t.size
	for _, s := range t.val {
		probs := predictOn(ng, m, s.Img, t.size)
		k := t.task.OutChannels()
		masks := regionProbsCM(channelMajor(probs, vox, k), vox, k, t.task.Softmax)
		cd, cl := caseScores(masks, s.Mask, vox)
		dice += cd
		loss += cl
		ng.Reset()
	}
	n := float64(len(t.val))
	return dice / n, loss / n
}

// caseScores returns one case's Dice (probabilities thresholded at 0.5)
// and soft Dice loss, each the mean over its regions: masks holds one
// probability map per region, truth the K region masks one after the
// other (vox voxels each).
func caseScores(masks [][]float32, truth []uint8, vox int) (dice, loss float64) {
	var cd, cl float64
	for r, p := range masks {
		tr := truth[r*vox : (r+1)*vox]
		var inter, ps, ys float64
		for i, v := range p {
			y := float64(tr[i])
			inter += float64(v) * y
			ps += float64(v)
			ys += y
		}
		cl += 1 - (2*inter+1e-5)/(ps+ys+1e-5)
		cd += metric.FromCounts(metric.Confusion(metric.FromProbabilities(p, 0.5), tr)).Dice
	}
	return cd / float64(len(masks)), cl / float64(len(masks))
}

// Predict runs the model in inference mode on one S³ image (C channels one
// after the other) and returns its outputs channels last (S³·K values; one
// channel: the S³ foreground probabilities, x fastest).
func Predict(m *model.UNet3D, img []float32, s int) []float32 {
	return predictOn(nil, m, img, s)
}

// predictOn is Predict on a no-grad tape ng (nil or a NewNoGradArena); with
// an arena the result is valid until ng.Reset.
func predictOn(ng *autodiff.Tape, m *model.UNet3D, img []float32, s int) []float32 {
	c := m.Cfg.InChannels
	data := img
	if c > 1 {
		data = make([]float32, len(img))
		interleave(data, img, c)
	}
	x := autodiff.Const(tensor.FromSlice(data, 1, s, s, s, c))
	p, _ := m.Forward(ng, x, false)
	return p.Value.Data
}

// hardDice is the Dice of the 0.5-thresholded probabilities against the
// 0/1 target over the whole batch (a training-progress figure only); with
// several regions the mean over them (softmax: over the classes, not the
// background).
func (t *Trainer) hardDice(p, y []float32) float64 {
	k := t.task.OutChannels()
	if k == 1 {
		return hardDice(p, y, 1, 0)
	}
	first := 0
	if t.task.Softmax {
		first = 1
	}
	var sum float64
	for c := first; c < k; c++ {
		sum += hardDice(p, y, k, c)
	}
	return sum / float64(k-first)
}

// hardDice over channel c of k channels-last channels.
func hardDice(p, y []float32, k, c int) float64 {
	var tp, ps, ys float64
	for i := c; i < len(p); i += k {
		v := p[i]
		if v >= 0.5 {
			ps++
			if y[i] > 0.5 {
				tp++
			}
		}
		if y[i] > 0.5 {
			ys++
		}
	}
	if ps+ys == 0 {
		return 1
	}
	return 2 * tp / (ps + ys)
}

func appendLog(path string, el EpochLog) error {
	b, err := json.Marshal(el)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// trimLog keeps the log lines of epochs ≤ upTo (atomically).
func trimLog(path string, upTo int) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e struct {
			Epoch int `json:"epoch"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Epoch >= 1 && e.Epoch <= upTo {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	return atomicio.WriteFile(path, keep.Bytes(), 0o644)
}

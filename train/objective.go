package train

import (
	"fmt"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// stepResult is what an objective computes for one batch.
type stepResult struct {
	total *autodiff.Var      // the loss to minimise
	parts map[string]float64 // its named parts, for the log
	// probs is the training-mode prediction, for the train Dice: all K
	// channels [N,D,H,W,K] as the model outputs them (sigmoid regions, or
	// softmax classes with the background as channel 0).
	probs *autodiff.Var
}

// objective is one loss's way of running the model on a batch. Every loss
// sees the same data, λ, scale and temperature, so comparisons are fair.
//
// Targets y are float 0/1 tensors [N,D,H,W,K] with K = the model's
// OutChannels: for sigmoid outputs one channel per region, for softmax
// outputs (m.Cfg.Softmax) a one-hot encoding with the background as
// channel 0. With softmax outputs the Dice part of dice, dicebce, fess,
// simclr, infonce and tversky is taken on the foreground channels 1..K−1
// only (nnU-Net's default), "bce" is the categorical cross-entropy on all K
// channels, "dicebce" is Dice(foreground) + cross-entropy, and "focal" is
// refused (it is a sigmoid loss).
type objective interface {
	// step records the loss on tp; detached passes run on ng (a no-grad
	// tape whose buffers live until the step ends).
	step(tp, ng *autodiff.Tape, x, y *autodiff.Var, step int64) stepResult
	// after runs once the optimiser has stepped (e.g. to keep this batch's
	// bottleneck for the next step's pairing).
	after()
	params() []*autodiff.Var  // trained parameters besides the model's
	records() []tensor.Record // checkpointed state
	load([]tensor.Record, string) error
}

func newObjective(cfg Config, m *model.UNet3D) (objective, error) {
	if m.Cfg.Softmax && cfg.Loss == "focal" {
		return nil, errs.Usage("train: loss focal is defined for sigmoid outputs only; the model has %d softmax outputs (use dice, bce = cross-entropy, dicebce = Dice + cross-entropy, tversky, or a contrastive loss)",
			m.Cfg.OutChannels)
	}
	switch cfg.Loss {
	case "dice", "bce", "dicebce", "focal", "tversky":
		return &segObjective{m: m, name: cfg.Loss}, nil
	case "fess":
		return &fessObjective{m: m, cfg: cfg, opt: loss.FESSOptions{
			Lambda: float32(cfg.Lambda), Scale: float32(cfg.Scale),
			Temperature: float32(cfg.Temperature), Eps: loss.DiceEps}}, nil
	case "simclr", "infonce":
		return newViewObjective(cfg, m)
	}
	return nil, errs.Usage("train: unknown loss %q", cfg.Loss)
}

// segObjective is a plain segmentation loss on the training-mode output.
type segObjective struct {
	m    *model.UNet3D
	name string
}

func (o *segObjective) step(tp, _ *autodiff.Tape, x, y *autodiff.Var, _ int64) stepResult {
	p, _ := o.m.Forward(tp, x, true)
	checkTarget(o.m, p, y)
	soft := o.m.Cfg.Softmax
	var l *autodiff.Var
	switch o.name {
	case "dice":
		dp, dy := diceChannels(tp, o.m, p, y)
		l = loss.Dice(tp, dp, dy, loss.DiceEps)
	case "bce":
		if soft {
			l = loss.CrossEntropy(tp, p, y)
		} else {
			l = loss.BCE(tp, p, y)
		}
	case "dicebce":
		if soft {
			l = loss.DiceCE(tp, p, y, loss.DefaultDiceCEOptions()).Total
		} else {
			l = loss.DiceBCE(tp, p, y, loss.DefaultDiceBCEOptions()).Total
		}
	case "focal":
		l = loss.Focal(tp, p, y, 0.25, 2)
	case "tversky":
		dp, dy := diceChannels(tp, o.m, p, y)
		l = loss.Tversky(tp, dp, dy, 0.3, 0.7, loss.DiceEps)
	}
	return stepResult{total: l, probs: p, parts: map[string]float64{o.name + "_loss": float64(l.Item())}}
}

// diceChannels returns the channels of the prediction p and target y that
// the Dice-type terms are computed on: all of them for sigmoid outputs,
// the foreground channels 1..K−1 (a Slice of axis 4) for softmax outputs.
func diceChannels(tp *autodiff.Tape, m *model.UNet3D, p, y *autodiff.Var) (*autodiff.Var, *autodiff.Var) {
	if !m.Cfg.Softmax {
		return p, y
	}
	k := m.Cfg.OutChannels
	return tp.Slice(p, 4, 1, k), tp.Slice(y, 4, 1, k)
}

// checkTarget panics with a clear message when the target's shape is not
// the prediction's (a programming error: the data layer builds y with the
// model's OutChannels).
func checkTarget(m *model.UNet3D, p, y *autodiff.Var) {
	if !tensor.SameShape(p.Value.Shape, y.Value.Shape) {
		kind := "sigmoid region"
		if m.Cfg.Softmax {
			kind = "one-hot softmax class (background = channel 0)"
		}
		panic(fmt.Sprintf("train: target of shape %v for a prediction %v: want [N,D,H,W,%d], one %s channel each",
			y.Value.Shape, p.Value.Shape, m.Cfg.OutChannels, kind))
	}
}

func (o *segObjective) after()                                 {}
func (o *segObjective) params() []*autodiff.Var                { return nil }
func (o *segObjective) records() []tensor.Record               { return nil }
func (o *segObjective) load(_ []tensor.Record, _ string) error { return nil }

// fessObjective is λ·Dice + (1−λ)·scale·L_con with the configured pairing
// (docs/method.md):
//   - previous-batch: prev is the detached bottleneck of the previous
//     step's batch; at the first step (and whenever the previous batch had
//     another size, e.g. after a short last batch) a detached second
//     training-mode pass of this batch stands in;
//   - same-batch: prev is a detached second training-mode pass (dropout
//     draws differ) of this batch;
//   - seed-exact: as the reference codes it, both feature maps come from
//     inference-mode passes of the same batch (one recorded, one detached),
//     so prev == pres and the term's gradient is zero; the Dice term uses
//     the training-mode pass.
type fessObjective struct {
	m    *model.UNet3D
	cfg  Config
	opt  loss.FESSOptions
	prev *tensor.Tensor // previous step's bottleneck (previous-batch)
	cur  *tensor.Tensor
}

func (o *fessObjective) step(tp, none *autodiff.Tape, x, y *autodiff.Var, _ int64) stepResult {
	probs, pres := o.m.Forward(tp, x, true)
	var prev *autodiff.Var
	switch o.cfg.Pairing {
	case "previous-batch":
		if o.prev != nil && tensor.SameShape(o.prev.Shape, pres.Value.Shape) {
			prev = autodiff.Const(o.prev)
		} else {
			_, b := o.m.Forward(none, x, true)
			prev = autodiff.Const(b.Value)
		}
	case "same-batch":
		_, b := o.m.Forward(none, x, true)
		prev = autodiff.Const(b.Value)
	case "seed-exact":
		_, b := o.m.Forward(none, x, false)
		prev = autodiff.Const(b.Value)
		_, pres = o.m.Forward(tp, x, false)
	}
	o.cur = pres.Value.Clone()
	checkTarget(o.m, probs, y)
	dp, dy := diceChannels(tp, o.m, probs, y)
	parts := loss.FESS(tp, dp, dy, prev, pres, o.opt)
	return stepResult{total: parts.Total, probs: probs, parts: map[string]float64{
		"dice_loss": float64(parts.Dice.Item()), "con_loss": float64(parts.Con.Item())}}
}

func (o *fessObjective) after() { o.prev = o.cur }

func (o *fessObjective) params() []*autodiff.Var { return nil }

func (o *fessObjective) records() []tensor.Record {
	if o.prev == nil {
		return nil
	}
	return []tensor.Record{{Name: "objective/fess/prev", Tensor: o.prev}}
}

func (o *fessObjective) load(recs []tensor.Record, _ string) error {
	o.prev = nil
	for _, r := range recs {
		if r.Name == "objective/fess/prev" && r.Tensor != nil {
			o.prev = r.Tensor.Clone()
		}
	}
	return nil
}

package train

import (
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
	probs *autodiff.Var      // the training-mode prediction, for the train Dice
}

// objective is one loss's way of running the model on a batch. Every loss
// sees the same data, λ, scale and temperature, so comparisons are fair.
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
	var l *autodiff.Var
	switch o.name {
	case "dice":
		l = loss.Dice(tp, p, y, loss.DiceEps)
	case "bce":
		l = loss.BCE(tp, p, y)
	case "dicebce":
		l = loss.DiceBCE(tp, p, y, loss.DefaultDiceBCEOptions()).Total
	case "focal":
		l = loss.Focal(tp, p, y, 0.25, 2)
	case "tversky":
		l = loss.Tversky(tp, p, y, 0.3, 0.7, loss.DiceEps)
	}
	return stepResult{total: l, probs: p, parts: map[string]float64{o.name + "_loss": float64(l.Item())}}
}

func (o *segObjective) after()                                 {}
func (o *segObjective) params() []*autodiff.Var                { return nil }
func (o *segObjective) records() []tensor.Record               { return nil }
func (o *segObjective) load(_ []tensor.Record, _ string) error { return nil }

// fessObjective is λ·Dice + (1−λ)·scale·L_con with the configured pairing
// (SPEC §1):
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
	parts := loss.FESS(tp, probs, y, prev, pres, o.opt)
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

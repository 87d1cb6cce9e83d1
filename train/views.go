package train

import (
	"math/rand/v2"

	"github.com/fess-seg/fess/augment"
	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/nn"
	"github.com/fess-seg/fess/tensor"
)

// viewObjective is the SimCLR and InfoNCE baseline (SPEC §1): two augmented
// views of each volume (random flips applied to image and mask alike,
// intensity jitter), the Dice term on the first view's training-mode
// prediction, and a contrastive term on the projections (bottleneck →
// global average pool → 2-layer MLP → 128-d):
//
//	total = λ·Dice + (1−λ)·scale·L,  L = NT-Xent(z1, z2) (SimCLR) or
//	InfoNCE(q = z1, k = detached z2, queue of previous keys) (InfoNCE).
//
// SimCLR back-propagates through both views; InfoNCE treats the key view
// as the MoCo "key encoder" branch, here the same network without gradient
// (no momentum copy). Augmentation draws depend only on (seed, step), so a
// resumed run draws the same views.
type viewObjective struct {
	m     *model.UNet3D
	cfg   Config
	head  *loss.ProjectionHead
	hst   *nn.State
	queue *loss.Queue
	keys  *tensor.Tensor
}

func newViewObjective(cfg Config, m *model.UNet3D) (objective, error) {
	b := nn.NewBuilder(nn.InitTorch, cfg.Seed^0x4ead)
	c := m.BottleneckChannels()
	o := &viewObjective{m: m, cfg: cfg, head: loss.NewProjectionHead(b, "head", c, c, cfg.ProjectionDim), hst: b.State}
	if cfg.Loss == "infonce" {
		o.queue = loss.NewQueue(cfg.QueueLen, cfg.ProjectionDim)
	}
	return o, nil
}

// views returns two augmented copies of the batch (image and mask).
func (o *viewObjective) views(x, y *autodiff.Var, step int64) (x1, y1, x2 *tensor.Tensor) {
	sh := x.Value.Shape
	n, vox := sh[0], sh[1]*sh[2]*sh[3]
	dims := [3]int{sh[1], sh[2], sh[3]}
	rng := rand.New(rand.NewPCG(o.cfg.Seed^0xa06e47, uint64(step)))
	x1, y1, x2 = tensor.New(sh...), tensor.New(sh...), tensor.New(sh...)
	opt := augment.Default()
	for i := 0; i < n; i++ {
		xi, yi := x.Value.Data[i*vox:(i+1)*vox], y.Value.Data[i*vox:(i+1)*vox]
		a, am := augment.Augment(xi, yi, dims, rng, opt)
		b, _ := augment.Augment(xi, nil, dims, rng, opt)
		copy(x1.Data[i*vox:], a)
		copy(y1.Data[i*vox:], am)
		copy(x2.Data[i*vox:], b)
	}
	return x1, y1, x2
}

func (o *viewObjective) step(tp, none *autodiff.Tape, x, y *autodiff.Var, step int64) stepResult {
	x1, y1, x2 := o.views(x, y, step)
	p1, b1 := o.m.Forward(tp, autodiff.Const(x1), true)
	dice := loss.Dice(tp, p1, autodiff.Const(y1), loss.DiceEps)
	z1 := o.head.Forward(tp, b1)
	var con *autodiff.Var
	if o.queue == nil {
		_, b2 := o.m.Forward(tp, autodiff.Const(x2), true)
		con = loss.NTXent(tp, z1, o.head.Forward(tp, b2), float32(o.cfg.Temperature))
	} else {
		_, b2 := o.m.Forward(none, autodiff.Const(x2), true)
		k := o.head.Forward(none, b2)
		con = loss.InfoNCE(tp, z1, k, o.queue, float32(o.cfg.Temperature))
		o.keys = k.Value.Clone()
	}
	total := loss.Combine(tp, dice, con, float32(o.cfg.Lambda), float32(o.cfg.Scale))
	return stepResult{total: total, probs: p1, parts: map[string]float64{
		"dice_loss": float64(dice.Item()), "con_loss": float64(con.Item())}}
}

func (o *viewObjective) after() {
	if o.queue != nil && o.keys != nil {
		o.queue.Push(o.keys)
		o.keys = nil
	}
}

func (o *viewObjective) params() []*autodiff.Var { return o.head.Params() }

func (o *viewObjective) records() []tensor.Record {
	r := o.hst.Records()
	if o.queue != nil {
		r = append(r, o.queue.Records()...)
	}
	return r
}

func (o *viewObjective) load(recs []tensor.Record, file string) error {
	if err := o.hst.Load(recs, file); err != nil {
		return err
	}
	if o.queue != nil {
		return o.queue.Load(recs, file)
	}
	return nil
}

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

// viewObjective is the SimCLR and InfoNCE baseline (docs/method.md): two augmented
// views of each volume (random flips applied to every image and target
// channel alike, one intensity jitter per view applied to the image
// channels only), the Dice term on the first view's training-mode
// prediction (foreground channels only for softmax outputs, see
// objective), and a contrastive term on the projections (bottleneck →
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

// views returns two augmented copies of the batch: x1 and its target y1
// (the same flips), and x2 (other flips and jitter). x is [N,D,H,W,C] and
// y [N,D,H,W,K]; per sample, two parameter sets are drawn (first view,
// second view, in that order) and each applies to every channel: the
// flips to all image and target channels, the intensity jitter to the
// image channels only. With C = K = 1 this is augment.Augment on the
// sample's voxels, as it always was.
func (o *viewObjective) views(x, y *autodiff.Var, step int64) (x1, y1, x2 *tensor.Tensor) {
	sh, ysh := x.Value.Shape, y.Value.Shape
	n, vox := sh[0], sh[1]*sh[2]*sh[3]
	c, k := sh[4], ysh[4]
	dims := [3]int{sh[1], sh[2], sh[3]}
	rng := rand.New(rand.NewPCG(o.cfg.Seed^0xa06e47, uint64(step)))
	x1, y1, x2 = tensor.New(sh...), tensor.New(ysh...), tensor.New(sh...)
	opt := augment.Default()
	for i := 0; i < n; i++ {
		pa := augment.Draw(rng, opt)
		pb := augment.Draw(rng, opt)
		if c == 1 && k == 1 {
			xi, yi := x.Value.Data[i*vox:(i+1)*vox], y.Value.Data[i*vox:(i+1)*vox]
			a, am := augment.Apply(xi, yi, dims, pa)
			b, _ := augment.Apply(xi, nil, dims, pb)
			copy(x1.Data[i*vox:], a)
			copy(y1.Data[i*vox:], am)
			copy(x2.Data[i*vox:], b)
			continue
		}
		xs, ys := x.Value.Data[i*vox*c:(i+1)*vox*c], y.Value.Data[i*vox*k:(i+1)*vox*k]
		flipOnly := augment.Params{Flip: pa.Flip, Scale: 1}
		for ch := 0; ch < c; ch++ {
			xc := viewChannel(xs, c, ch)
			a, _ := augment.Apply(xc, nil, dims, pa)
			b, _ := augment.Apply(xc, nil, dims, pb)
			setViewChannel(x1.Data[i*vox*c:(i+1)*vox*c], c, ch, a)
			setViewChannel(x2.Data[i*vox*c:(i+1)*vox*c], c, ch, b)
		}
		for ch := 0; ch < k; ch++ {
			// Scale 1, shift 0: the flips alone (1·v + 0 = v exactly).
			m, _ := augment.Apply(viewChannel(ys, k, ch), nil, dims, flipOnly)
			setViewChannel(y1.Data[i*vox*k:(i+1)*vox*k], k, ch, m)
		}
	}
	return x1, y1, x2
}

// viewChannel returns channel ch of a channels-last sample of c channels.
func viewChannel(v []float32, c, ch int) []float32 {
	out := make([]float32, len(v)/c)
	for i := range out {
		out[i] = v[i*c+ch]
	}
	return out
}

// setViewChannel writes src into channel ch of a channels-last sample.
func setViewChannel(v []float32, c, ch int, src []float32) {
	for i, s := range src {
		v[i*c+ch] = s
	}
}

func (o *viewObjective) step(tp, none *autodiff.Tape, x, y *autodiff.Var, step int64) stepResult {
	x1, y1, x2 := o.views(x, y, step)
	p1, b1 := o.m.Forward(tp, autodiff.Const(x1), true)
	t1 := autodiff.Const(y1)
	checkTarget(o.m, p1, t1)
	dp, dy := diceChannels(tp, o.m, p1, t1)
	dice := loss.Dice(tp, dp, dy, loss.DiceEps)
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

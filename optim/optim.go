// Package optim updates parameters from their gradients: Adam/AdamW (the
// exact PyTorch update), SGD with momentum, global-norm gradient clipping and
// gradient zeroing. Optimiser state (moments, step count) is saved as
// tensor.Records under "optim/…" names so a run resumes bit-identically.
//
//	opt := optim.NewAdam(1e-5)            // β=(0.9,0.999), eps 1e-8
//	optim.ZeroGrad(params)
//	…forward, tp.Backward(loss)…
//	optim.ClipGradNorm(params, 1.0)
//	opt.Step(params)
package optim

import (
	"math"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// Optimizer is what the training loop needs of Adam and SGD.
type Optimizer interface {
	Step(params []*autodiff.Var)
	Records() []tensor.Record
	Load(recs []tensor.Record, file string) error
	SetLR(lr float64)
}

// ZeroGrad sets every parameter's gradient to zero.
func ZeroGrad(params []*autodiff.Var) {
	for _, p := range params {
		p.ZeroGrad()
	}
}

// GlobalNorm returns √(Σ_params Σ g²), accumulated in float64 in parameter
// order.
func GlobalNorm(params []*autodiff.Var) float64 {
	s := 0.0
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		for _, g := range p.Grad.Data {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales all gradients by min(1, maxNorm/(norm + 1e-6)) where
// norm is the global L2 norm (torch.nn.utils.clip_grad_norm_), and returns
// the norm before clipping.
func ClipGradNorm(params []*autodiff.Var, maxNorm float64) float64 {
	n := GlobalNorm(params)
	c := maxNorm / (n + 1e-6)
	if c < 1 {
		cf := float32(c)
		for _, p := range params {
			if p.Grad == nil {
				continue
			}
			for i := range p.Grad.Data {
				p.Grad.Data[i] *= cf
			}
		}
	}
	return n
}

// Adam is torch.optim.Adam (amsgrad off), or AdamW when Decoupled. With
// step t, gradient g and parameter p (all float32 except the bias
// corrections, which are computed in float64 as in PyTorch):
//
//	g ← g + wd·p                        (L2 form, Decoupled false)
//	p ← p·(1 − lr·wd)                   (AdamW form, Decoupled true)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g·g
//	p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)
//
// Note eps is added after dividing √v by √(1−β2^t), as PyTorch does.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	Decoupled                          bool
	Steps                              int64
	m, v                               map[string]*tensor.Tensor
}

// NewAdam returns Adam with PyTorch's defaults (β1 0.9, β2 0.999, eps 1e-8,
// no weight decay).
func NewAdam(lr float64) *Adam {
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		m: map[string]*tensor.Tensor{}, v: map[string]*tensor.Tensor{}}
}

// SetLR changes the learning rate.
func (a *Adam) SetLR(lr float64) { a.LR = lr }

// Step applies one update to every parameter with a gradient. Parameters
// are identified by Name (which must be unique) for the moment buffers.
func (a *Adam) Step(params []*autodiff.Var) {
	a.Steps++
	t := float64(a.Steps)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2 := 1 - math.Pow(a.Beta2, t)
	stepSize := float32(-(a.LR / bc1))
	bc2s := float32(math.Sqrt(bc2))
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	ob1, ob2 := float32(1-a.Beta1), float32(1-a.Beta2)
	eps, wd := float32(a.Eps), float32(a.WeightDecay)
	decay := float32(1 - a.LR*a.WeightDecay)
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		m, ok := a.m[p.Name]
		if !ok {
			m = tensor.ZerosLike(p.Value)
			a.m[p.Name] = m
			a.v[p.Name] = tensor.ZerosLike(p.Value)
		}
		v := a.v[p.Name]
		pd, gd, md, vd := p.Value.Data, p.Grad.Data, m.Data, v.Data
		tensor.Parallel(len(pd), 0, func(_, lo, hi int) {
			if wd == 0 {
				// the same loop, eight values per instruction where the
				// CPU has AVX2 (bit for bit)
				kernels.AdamStep(pd[lo:hi], gd[lo:hi], md[lo:hi], vd[lo:hi], b1, b2, ob1, ob2, bc2s, eps, stepSize)
				return
			}
			for i := lo; i < hi; i++ {
				g := gd[i]
				if a.Decoupled {
					pd[i] *= decay
				} else {
					g += wd * pd[i]
				}
				md[i] = md[i]*b1 + ob1*g
				vd[i] = vd[i]*b2 + ob2*g*g
				den := float32(math.Sqrt(float64(vd[i])))/bc2s + eps
				pd[i] += stepSize * (md[i] / den)
			}
		})
	}
}

// Records returns the state: "optim/adam/step" and per-parameter
// "optim/adam/m/NAME", "optim/adam/v/NAME" (shared, not copied).
func (a *Adam) Records() []tensor.Record {
	r := []tensor.Record{{Name: "optim/adam/step", Ints: []int64{a.Steps}}}
	for name, m := range a.m {
		r = append(r, tensor.Record{Name: "optim/adam/m/" + name, Tensor: m},
			tensor.Record{Name: "optim/adam/v/" + name, Tensor: a.v[name]})
	}
	sortRecords(r[1:])
	return r
}

// Load restores state written by Records (other records are ignored).
func (a *Adam) Load(recs []tensor.Record, file string) error {
	a.m, a.v = map[string]*tensor.Tensor{}, map[string]*tensor.Tensor{}
	found := false
	for _, r := range recs {
		switch {
		case r.Name == "optim/adam/step":
			if len(r.Ints) != 1 {
				return errs.Input(file, "malformed optim/adam/step")
			}
			a.Steps, found = r.Ints[0], true
		case len(r.Name) > 13 && r.Name[:13] == "optim/adam/m/" && r.Tensor != nil:
			a.m[r.Name[13:]] = r.Tensor.Clone()
		case len(r.Name) > 13 && r.Name[:13] == "optim/adam/v/" && r.Tensor != nil:
			a.v[r.Name[13:]] = r.Tensor.Clone()
		}
	}
	if !found {
		return errs.Input(file, "no Adam state (optim/adam/step) in file")
	}
	for name := range a.m {
		if _, ok := a.v[name]; !ok {
			return errs.Input(file, "Adam state for %q has m but no v", name)
		}
	}
	return nil
}

// SGD is torch.optim.SGD: with d = g + wd·p, the momentum buffer
// b ← μ·b + (1−dampening)·d (b = d on the first step), then
// p ← p − lr·(Nesterov ? d + μ·b : b); without momentum p ← p − lr·d.
type SGD struct {
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov                             bool
	buf                                  map[string]*tensor.Tensor
}

// NewSGD returns SGD with the given learning rate and momentum.
func NewSGD(lr, momentum float64) *SGD {
	return &SGD{LR: lr, Momentum: momentum, buf: map[string]*tensor.Tensor{}}
}

// SetLR changes the learning rate.
func (s *SGD) SetLR(lr float64) { s.LR = lr }

// Step applies one update.
func (s *SGD) Step(params []*autodiff.Var) {
	lr, mu, damp, wd := float32(s.LR), float32(s.Momentum), float32(1-s.Dampening), float32(s.WeightDecay)
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		pd, gd := p.Value.Data, p.Grad.Data
		var bd []float32
		first := false
		if mu != 0 {
			b, ok := s.buf[p.Name]
			if !ok {
				b = tensor.ZerosLike(p.Value)
				s.buf[p.Name] = b
				first = true
			}
			bd = b.Data
		}
		for i := range pd {
			d := gd[i]
			if wd != 0 {
				d += wd * pd[i]
			}
			if mu != 0 {
				if first {
					bd[i] = d
				} else {
					bd[i] = mu*bd[i] + damp*d
				}
				if s.Nesterov {
					d += mu * bd[i]
				} else {
					d = bd[i]
				}
			}
			pd[i] -= lr * d
		}
	}
}

// Records returns "optim/sgd/buf/NAME" momentum buffers.
func (s *SGD) Records() []tensor.Record {
	var r []tensor.Record
	for name, b := range s.buf {
		r = append(r, tensor.Record{Name: "optim/sgd/buf/" + name, Tensor: b})
	}
	sortRecords(r)
	return r
}

// Load restores the momentum buffers.
func (s *SGD) Load(recs []tensor.Record, file string) error {
	s.buf = map[string]*tensor.Tensor{}
	for _, r := range recs {
		if len(r.Name) > 14 && r.Name[:14] == "optim/sgd/buf/" {
			if r.Tensor == nil {
				return errs.Input(file, "malformed %s", r.Name)
			}
			s.buf[r.Name[14:]] = r.Tensor.Clone()
		}
	}
	return nil
}

func sortRecords(r []tensor.Record) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Name < r[j-1].Name; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

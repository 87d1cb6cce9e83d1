package loss

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/nn"
	"github.com/fess-seg/fess/tensor"
)

// uniformVar returns a parameter with values uniform in [lo, hi).
func uniformVar(rng *rand.Rand, lo, hi float32, shape ...int) *autodiff.Var {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = lo + (hi-lo)*rng.Float32()
	}
	return autodiff.NewParam("", t)
}

// binaryConst returns a 0/1 target with foreground fraction about frac.
func binaryConst(rng *rand.Rand, frac float64, shape ...int) *autodiff.Var {
	t := tensor.New(shape...)
	for i := range t.Data {
		if rng.Float64() < frac {
			t.Data[i] = 1
		}
	}
	return autodiff.Const(t)
}

// fdCheck compares the tape gradient of the scalar loss f with central
// finite differences (L(x+h) − L(x−h))/2h of the float32 forward, on up to
// 30 elements of each input: |analytic − numeric| ≤ atol·G + rtol·|numeric|,
// G the largest |analytic| of that input. With h = 1e-2 on inputs kept
// away from kinks and clamps, the truncation error is O(h²) (third derivative of L) and the
// float32 rounding of L contributes about 6e-8·|L|/h, both far inside the
// tolerances used (atol 2e-3, rtol 1e-2).
func fdCheck(t *testing.T, name string, ins []*autodiff.Var, f func(tp *autodiff.Tape) *autodiff.Var) {
	t.Helper()
	const h, atol, rtol = 1e-2, 2e-3, 1e-2
	for _, v := range ins {
		v.ZeroGrad()
	}
	tp := autodiff.NewTape()
	tp.Backward(f(tp))
	rng := rand.New(rand.NewPCG(9, 9))
	for vi, v := range ins {
		g := 0.0
		for _, a := range v.Grad.Data {
			g = math.Max(g, math.Abs(float64(a)))
		}
		if g == 0 {
			t.Errorf("%s: input %d has an all-zero gradient", name, vi)
		}
		idx := rng.Perm(v.Value.Len())
		if len(idx) > 30 {
			idx = idx[:30]
		}
		bad := 0
		for _, i := range idx {
			old := v.Value.Data[i]
			v.Value.Data[i] = old + h
			lp := float64(f(nil).Item())
			v.Value.Data[i] = old - h
			lm := float64(f(nil).Item())
			v.Value.Data[i] = old
			num := (lp - lm) / (2 * h)
			ana := float64(v.Grad.Data[i])
			if math.Abs(ana-num) > atol*g+rtol*math.Abs(num) {
				if bad < 4 {
					t.Errorf("%s: input %d element %d: analytic %.6g, numeric %.6g (max |g| %.3g)", name, vi, i, ana, num, g)
				}
				bad++
			}
		}
	}
}

func TestFDContrastive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	prev := uniformVar(rng, 0.1, 1.5, 2, 2, 2, 2, 3)
	pres := uniformVar(rng, -1, 1.5, 2, 2, 2, 2, 3)
	fdCheck(t, "ContrastiveFESS", []*autodiff.Var{prev, pres}, func(tp *autodiff.Tape) *autodiff.Var {
		return ContrastiveFESS(tp, prev, pres, 0.5)
	})
	p := uniformVar(rng, 0.05, 0.95, 2, 3, 3, 3, 1)
	y := binaryConst(rng, 0.4, 2, 3, 3, 3, 1)
	// scale 1 instead of 1e-4, so the contrastive part is visible next to Dice
	opt := DefaultFESSOptions()
	opt.Scale = 1
	fdCheck(t, "FESS", []*autodiff.Var{p, pres}, func(tp *autodiff.Tape) *autodiff.Var {
		return FESS(tp, p, y, prev, pres, opt).Total
	})
}

func TestFDNTXentAndHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	z1 := uniformVar(rng, -1, 1, 3, 5)
	z2 := uniformVar(rng, -1, 1, 3, 5)
	fdCheck(t, "NTXent", []*autodiff.Var{z1, z2}, func(tp *autodiff.Tape) *autodiff.Var {
		return NTXent(tp, z1, z2, 0.5)
	})
	h := NewProjectionHead(nn.NewBuilder(nn.InitTorch, 4), "proj", 3, 6, 4)
	x1 := autodiff.Const(uniformVar(rng, -1, 1, 3, 2, 2, 2, 3).Value)
	x2 := autodiff.Const(uniformVar(rng, -1, 1, 3, 2, 2, 2, 3).Value)
	// hidden biases ±0.6 keep every pre-activation away from the ReLU's
	// kink (checked), half the units live, half dead
	for i := range h.L1.B.Value.Data {
		h.L1.B.Value.Data[i] = 0.6 * float32(1-2*(i%2))
	}
	var none *autodiff.Tape
	for _, x := range []*autodiff.Var{x1, x2} {
		for _, v := range h.L1.Forward(none, none.GlobalAvgPool(x)).Value.Data {
			if math.Abs(float64(v)) < 0.05 {
				t.Fatalf("pre-activation %v too close to the ReLU kink for h = 1e-2", v)
			}
		}
	}
	fdCheck(t, "ProjectionHead+NTXent", h.Params(), func(tp *autodiff.Tape) *autodiff.Var {
		return NTXent(tp, h.Forward(tp, x1), h.Forward(tp, x2), 0.5)
	})
}

func TestFDInfoNCE(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	q := uniformVar(rng, -1, 1, 3, 5)
	k := uniformVar(rng, -1, 1, 3, 5)
	queue := NewQueue(4, 5)
	queue.Push(uniformVar(rng, -1, 1, 4, 5).Value)
	fdCheck(t, "InfoNCE", []*autodiff.Var{q, k}, func(tp *autodiff.Tape) *autodiff.Var {
		return InfoNCE(tp, q, k, queue, 0.5)
	})
}

func TestFDSegmentation(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	shape := []int{2, 3, 3, 3, 1}
	p := uniformVar(rng, 0.05, 0.95, shape...)
	z := uniformVar(rng, -4, 4, shape...)
	y := binaryConst(rng, 0.4, shape...)
	ysoft := autodiff.Const(uniformVar(rng, 0, 1, shape...).Value)
	for _, tg := range []struct {
		name string
		y    *autodiff.Var
	}{{"hard", y}, {"soft", ysoft}} {
		y := tg.y
		for name, fn := range map[string]func(tp *autodiff.Tape) *autodiff.Var{
			"BCE":       func(tp *autodiff.Tape) *autodiff.Var { return BCE(tp, p, y) },
			"DiceBCE":   func(tp *autodiff.Tape) *autodiff.Var { return DiceBCE(tp, p, y, DefaultDiceBCEOptions()).Total },
			"Focal":     func(tp *autodiff.Tape) *autodiff.Var { return Focal(tp, p, y, 0.25, 2) },
			"Focal1.5":  func(tp *autodiff.Tape) *autodiff.Var { return Focal(tp, p, y, 0.25, 1.5) },
			"Tversky":   func(tp *autodiff.Tape) *autodiff.Var { return Tversky(tp, p, y, 0.3, 0.7, DiceEps) },
			"Dice":      func(tp *autodiff.Tape) *autodiff.Var { return Dice(tp, p, y, DiceEps) },
			"DicePerSm": func(tp *autodiff.Tape) *autodiff.Var { return DicePerSample(tp, p, y, DiceEps) },
		} {
			fdCheck(t, name+"/"+tg.name, []*autodiff.Var{p}, fn)
		}
		fdCheck(t, "BCEWithLogits/"+tg.name, []*autodiff.Var{z}, func(tp *autodiff.Tape) *autodiff.Var {
			return BCEWithLogits(tp, z, y)
		})
	}
}

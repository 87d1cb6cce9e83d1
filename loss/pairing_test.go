package loss

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// pairingModel is the tiny UNet3D of the pairing tests: F=2, one level,
// 8³ input, dropout 0.2, so the bottleneck is [N,4,4,4,4].
func pairingModel(t *testing.T) *model.UNet3D {
	t.Helper()
	m, err := model.New(model.Config{Preset: "unet3d", Filters: 2, Levels: 1, InputSize: 8, Dropout: 0.2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randBatch(seed uint64, n int) *autodiff.Var {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := tensor.New(n, 8, 8, 8, 1)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	return autodiff.Const(x)
}

// conGrads runs the contrastive term's backward alone and returns the term
// and the largest |gradient| over every parameter of m.
func conGrads(m *model.UNet3D, tp *autodiff.Tape, prev, pres *autodiff.Var) (float32, float64) {
	for _, p := range m.Params() {
		p.ZeroGrad()
	}
	l := ContrastiveFESS(tp, prev, pres, 0.5)
	tp.Backward(l)
	mx := 0.0
	for _, p := range m.Params() {
		for _, g := range p.Grad.Data {
			mx = math.Max(mx, math.Abs(float64(g)))
		}
	}
	return l.Item(), mx
}

// TestPairingGradients checks the three pairings (docs/method.md) on a tiny
// UNet3D: seed-exact's contrastive term is the constant log(N·C) with a
// zero gradient, while same-batch and previous-batch give a gradient.
//
// Why seed-exact's gradient vanishes: with prev == pres = x, ∂s/∂pres at
// pres = x is (â − b̂⟨â,b̂⟩)/‖x‖ = â(1 − ‖â‖²)/‖x‖ = 0 (the normalisation's
// Jacobian removes the radial direction, and the gradient of a cosine
// similarity at its maximum is radial); and all s being equal makes the
// softmax uniform, so ∂L/∂s = (softmax − 1/M)/T = 0 as well. In float32 each
// factor is a rounding residue (‖â‖² = 1 ± a few ulps, softmax = 1/M ± a few
// ulps), so the computed gradient is their product, bounded here by 1e-9 of
// the other pairings' largest gradients. Measured here: exactly 0 (the test
// logs it); the computed s are 1 − {0, 6e-8, 1.2e-7}, ∂L/∂s came out 0 for
// seven of the eight pairs and −6e-8 for one, and the radial residue of
// ∂s/∂pres is of order 1e-5, so any non-zero product would be ≲ 1e-12.
func TestPairingGradients(t *testing.T) {
	const n = 2
	x := randBatch(11, n)

	// seed-exact: two inference-mode passes with the same weights.
	m := pairingModel(t)
	prevB := func() *autodiff.Var { _, b := m.Forward(nil, x, false); return b }().Detach()
	tp := autodiff.NewTape()
	_, pres := m.Forward(tp, x, false)
	for i, v := range pres.Value.Data {
		if v != prevB.Value.Data[i] {
			t.Fatalf("seed-exact: the two inference passes differ at %d: %v vs %v", i, v, prevB.Value.Data[i])
		}
	}
	c := pres.Value.Shape[4]
	zero := zeroChannels(pres.Value)
	lExact, gExact := conGrads(m, tp, prevB, pres)
	// every s is 1 (an all-zero channel has s = 0): L = −mean(s)/T + log Σ e^{s/T}
	mm := float64(n * c)
	ones := mm - float64(zero)
	want := -ones/mm/0.5 + math.Log(ones*math.Exp(2)+float64(zero))
	if zero == 0 && math.Abs(want-math.Log(mm)) > 1e-12 {
		t.Fatal("formula check")
	}
	if math.Abs(float64(lExact)-want) > 1e-6 {
		t.Errorf("seed-exact term %.9g, want %.9g (log(N·C) = %.9g, %d zero channels)", lExact, want, math.Log(mm), zero)
	}
	t.Logf("seed-exact: term %.9g (log(%d·%d) = %.9g, %d all-zero channels), max |grad| %.3g", lExact, n, c, math.Log(mm), zero, gExact)

	// same-batch: gradient pass and a detached second pass, both in
	// training mode (dropout draws differ).
	m = pairingModel(t)
	tp = autodiff.NewTape()
	_, pres = m.Forward(tp, x, true)
	_, prev := m.Forward(nil, x, true)
	lSame, gSame := conGrads(m, tp, prev.Detach(), pres)
	t.Logf("same-batch: term %.9g, max |grad| %.3g", lSame, gSame)

	// previous-batch: prev is the detached bottleneck of another batch.
	m = pairingModel(t)
	_, prev = m.Forward(nil, randBatch(12, n), true)
	tp = autodiff.NewTape()
	_, pres = m.Forward(tp, x, true)
	lPrev, gPrev := conGrads(m, tp, prev.Detach(), pres)
	t.Logf("previous-batch: term %.9g, max |grad| %.3g", lPrev, gPrev)

	if gSame < 1e-4 || gPrev < 1e-4 {
		t.Errorf("same-batch / previous-batch gradients %.3g / %.3g, want clearly non-zero", gSame, gPrev)
	}
	if gExact > 1e-9*min(gSame, gPrev) {
		t.Errorf("seed-exact gradient %.3g, want ≤ 1e-9 × %.3g", gExact, min(gSame, gPrev))
	}
}

// TestSeedExactFESSIsHalfDice checks the consequence (docs/method.md): with the
// seed-exact pairing the FESS loss's parameter gradient equals that of
// λ·Dice alone (the contrastive part contributes nothing).
func TestSeedExactFESSIsHalfDice(t *testing.T) {
	x := randBatch(21, 2)
	rng := rand.New(rand.NewPCG(5, 5))
	y := tensor.New(2, 8, 8, 8, 1)
	for i := range y.Data {
		if rng.Float64() < 0.3 {
			y.Data[i] = 1
		}
	}
	target := autodiff.Const(y)
	m := pairingModel(t)
	grads := func(fess bool) [][]float32 {
		for _, p := range m.Params() {
			p.ZeroGrad()
		}
		tp := autodiff.NewTape()
		probs, pres := m.Forward(tp, x, false)
		var l *autodiff.Var
		if fess {
			_, prev := m.Forward(nil, x, false)
			l = FESS(tp, probs, target, prev.Detach(), pres, DefaultFESSOptions()).Total
		} else {
			l = tp.Scale(Dice(tp, probs, target, DiceEps), 0.5)
		}
		tp.Backward(l)
		var g [][]float32
		for _, p := range m.Params() {
			g = append(g, append([]float32(nil), p.Grad.Data...))
		}
		return g
	}
	gf, gd := grads(true), grads(false)
	maxD, maxG := 0.0, 0.0
	for i := range gf {
		for j := range gf[i] {
			maxD = math.Max(maxD, math.Abs(float64(gf[i][j]-gd[i][j])))
			maxG = math.Max(maxG, math.Abs(float64(gd[i][j])))
		}
	}
	t.Logf("seed-exact FESS vs 0.5·Dice: max |Δgrad| %.3g, max |grad| %.3g", maxD, maxG)
	if maxG == 0 || maxD > 1e-7*maxG {
		t.Errorf("seed-exact FESS gradient differs from 0.5·Dice's by %.3g (max %.3g)", maxD, maxG)
	}
}

// zeroChannels counts the (n,c) maps of b [N,d,h,w,C] that are all zero.
func zeroChannels(b *tensor.Tensor) int {
	n, c := b.Shape[0], b.Shape[4]
	sp := b.Len() / (n * c)
	z := 0
	for i := 0; i < n; i++ {
		for k := 0; k < c; k++ {
			all := true
			for v := 0; v < sp; v++ {
				if b.Data[(i*sp+v)*c+k] != 0 {
					all = false
					break
				}
			}
			if all {
				z++
			}
		}
	}
	return z
}

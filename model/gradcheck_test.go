package model

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/golden"
	"github.com/fess-seg/fess/loss"
)

// TestGoldenWholeNetworkGradient compares the tape's gradient of the batch
// Dice loss of a small U-Net (F=2, 2 levels, 8³, batch 2, BatchNorm in
// training mode, γ ≠ 1) with PyTorch autograd run in float64 on the same
// float32 weights (testdata/gen_grad_golden.py): every parameter's
// gradient within 1e-7 + 1e-4·max|g| of that tensor, and the loss within
// 1e-6. (Whole-network finite differences in float32 are not a usable
// reference here: ReLU and max-pool kinks near the evaluation point bias
// them by up to ~1e-3, while float64 autograd is exact up to float32
// rounding of the forward pass.)
func TestGoldenWholeNetworkGradient(t *testing.T) {
	f, err := golden.Load("testdata/grad")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		p.Value.CopyFrom(f.Get("param/" + p.Name))
	}
	tp := autodiff.NewTape()
	p, _ := m.Forward(tp, autodiff.Const(f.Get("x")), true)
	l := loss.Dice(tp, p, autodiff.Const(f.Get("y")), loss.DiceEps)
	tp.Backward(l)
	if d := math.Abs(float64(l.Item()) - f.Values["loss"][0]); d > 1e-6 {
		t.Errorf("loss %.8f, PyTorch float64 %.8f", l.Item(), f.Values["loss"][0])
	}
	for _, q := range m.Params() {
		want := f.Get("grad/" + q.Name)
		scale := 0.0
		for _, v := range want.Data {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		worst := 0.0
		for i, v := range q.Grad.Data {
			worst = math.Max(worst, math.Abs(float64(v)-float64(want.Data[i])))
		}
		if worst > 1e-7+1e-4*scale || math.IsNaN(worst) {
			t.Errorf("%s: max gradient error %.3g (max |g| %.3g)", q.Name, worst, scale)
		}
	}
}

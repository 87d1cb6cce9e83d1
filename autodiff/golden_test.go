package autodiff

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/internal/golden"
	"github.com/fess-seg/fess/tensor"
)

// Golden tests against PyTorch 1.13 (fixtures written by
// testdata/gen_golden.py). Each op's output and its gradients of
// L = Σ r·y are compared elementwise with |a−b| ≤ atol + rtol·|b|; the
// tolerances allow float32 rounding differences from different summation
// orders (conv sums ≤ 108 products; BatchNorm statistics over ≤ 120 values).

func closeTo(t *testing.T, what string, got, want *tensor.Tensor, atol, rtol float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	bad, worst := 0, 0.0
	for i := range got.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		worst = math.Max(worst, d)
		if d > atol+rtol*math.Abs(float64(want.Data[i])) || math.IsNaN(float64(got.Data[i])) {
			if bad < 3 {
				t.Errorf("%s[%d] = %g, want %g", what, i, got.Data[i], want.Data[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements off (max abs diff %g)", what, bad, len(got.Data), worst)
	}
}

func loadOps(t *testing.T) *golden.File {
	f, err := golden.Load("testdata/ops")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// runGolden computes y = op(...), back-propagates Σ r·y and compares.
func runGolden(t *testing.T, f *golden.File, tag string, ins map[string]*Var, op func(tp *Tape) *Var) {
	t.Helper()
	tp := NewTape()
	y := op(tp)
	closeTo(t, tag+"/y", y.Value, f.Get(tag+"/y"), 1e-5, 1e-5)
	tp.Backward(tp.Sum(tp.Mul(y, Const(f.Get(tag+"/r"))), nil))
	for name, v := range ins {
		closeTo(t, tag+"/"+name, v.Grad, f.Get(tag+"/"+name), 1e-5, 1e-5)
	}
}

func TestGoldenConv3D(t *testing.T) {
	f := loadOps(t)
	for _, tag := range []string{"conv_s1", "conv_s2"} {
		sp := f.Values[tag+"/stride_pad"]
		s, p := int(sp[0]), int(sp[1])
		x := NewParam("x", f.Get(tag+"/x"))
		w := NewParam("w", f.Get(tag+"/w"))
		b := NewParam("b", f.Get(tag+"/b"))
		spec := ConvSpec{Stride: [3]int{s, s, s}, Pad: [3]int{p, p, p}}
		runGolden(t, f, tag, map[string]*Var{"gx": x, "gw": w, "gb": b},
			func(tp *Tape) *Var { return tp.Conv3D(x, w, b, spec) })
	}
}

func TestGoldenConvTranspose3D(t *testing.T) {
	f := loadOps(t)
	for _, tag := range []string{"convt_k2s2", "convt_k3s2p1"} {
		ksp := f.Values[tag+"/k_stride_pad"]
		s, p := int(ksp[1]), int(ksp[2])
		x := NewParam("x", f.Get(tag+"/x"))
		w := NewParam("w", f.Get(tag+"/w"))
		b := NewParam("b", f.Get(tag+"/b"))
		spec := ConvSpec{Stride: [3]int{s, s, s}, Pad: [3]int{p, p, p}}
		runGolden(t, f, tag, map[string]*Var{"gx": x, "gw": w, "gb": b},
			func(tp *Tape) *Var { return tp.ConvTranspose3D(x, w, b, spec) })
	}
}

func TestGoldenMaxPool3D(t *testing.T) {
	f := loadOps(t)
	x := NewParam("x", f.Get("maxpool/x"))
	runGolden(t, f, "maxpool", map[string]*Var{"gx": x}, func(tp *Tape) *Var { return tp.MaxPool3D(x, 2) })
}

func TestGoldenBatchNorm(t *testing.T) {
	f := loadOps(t)
	gamma := NewParam("gamma", f.Get("bn/gamma"))
	beta := NewParam("beta", f.Get("bn/beta"))
	st := NewBNState(3, 0.1, 1e-5)
	x := NewParam("x", f.Get("bn_train/x"))
	runGolden(t, f, "bn_train", map[string]*Var{"gx": x, "ggamma": gamma, "gbeta": beta},
		func(tp *Tape) *Var { return tp.BatchNorm(x, gamma, beta, st, true) })
	closeTo(t, "running_mean", st.RunMean, f.Get("bn_train/running_mean"), 1e-6, 1e-5)
	closeTo(t, "running_var", st.RunVar, f.Get("bn_train/running_var"), 1e-6, 1e-5)

	gamma.ZeroGrad()
	beta.ZeroGrad()
	x2 := NewParam("x", f.Get("bn_eval/x"))
	runGolden(t, f, "bn_eval", map[string]*Var{"gx": x2, "ggamma": gamma, "gbeta": beta},
		func(tp *Tape) *Var { return tp.BatchNorm(x2, gamma, beta, st, false) })
}

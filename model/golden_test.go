package model

import (
	"math"
	"strings"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/golden"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

// TestGoldenUNetAdam trains the unet3d preset (F=4, 3 levels, 16³, batch 2,
// dropout 0) for ten Adam steps (lr 1e-3) on the batch Dice loss from the
// initial weights PyTorch 1.13 used (testdata/gen_golden.py) and requires:
//
//  1. the loss at every step within 1e-4 relative of PyTorch's (float32).
//  2. final weights (except conv biases that feed a BatchNorm, see 3.) and
//     BatchNorm running statistics close to PyTorch-float32 relative to
//     PyTorch-float32's own distance ("spread") from the same run in
//     float64, per tensor: RMS error ≤ 3 × spread RMS + 3e-6 and max error
//     ≤ 6 × spread max + 1e-5 (the fixture stores weight deltas in float16,
//     error ≤ 5e-6). Why a data-driven tolerance: Adam's update
//     m̂/(√v̂+eps) has a Jacobian lr/|g| with respect to the gradient, so
//     wherever a gradient component is small, float32 rounding differences
//     (from different summation orders) become weight differences of order
//     lr, which feed back into the next gradients. The float64 rerun
//     measures how much this particular problem amplifies rounding (weights
//     up to ~1e-3 apart after ten steps of lr 1e-3). Two independent float32
//     computations should differ by about √2 × spread; the max over 10⁴
//     elements of such heavy-tailed differences is itself noisy (ratios up
//     to 3.3 seen when only the GEMM summation order changed), hence 6×
//     there and 3× on the RMS. A wrong gradient or optimiser formula moves
//     weights by far more (a 10 % error in one BatchNorm backward term
//     fails dozens of tensors).
//  3. running means are compared after subtracting "biasmix", the running-
//     mean recursion applied to the conv bias feeding that BatchNorm (both
//     engines' own bias trajectories), because of the bias walk below;
//     conv biases feeding BatchNorm: their true gradient is exactly 0 (BN
//     subtracts the batch mean), so both engines step on rounding noise and
//     Adam's normalisation makes those steps full-size in random
//     directions. They are only required to stay within Adam's bound of
//     10·lr·(1−β1)/√(1−β2) ≈ 10·lr·3.17 of their initial value.
func TestGoldenUNetAdam(t *testing.T) {
	// F(2,3) whatever FESS_WINOGRAD says
	defer autodiff.SetWinograd(autodiff.Winograd())
	if err := autodiff.SetWinograd(2); err != nil {
		t.Fatal(err)
	}
	goldenUNetAdam(t, 3, 6)
}

// TestGoldenUNetAdamWinograd4 is the same trajectory with the 16³ level's
// convolutions on Winograd F(4×4×4, 3×3×3) (autodiff.SetWinograd(4)). Its
// transforms round about ten times more than F(2,3)'s, and Adam amplifies
// that as described above: measured, the weights land up to 5.8× PyTorch's
// own float32-to-float64 spread from PyTorch (RMS; 6.8× on the max) where
// F(2,3) stays at 1.5× (1.9×). The bounds here are 8× and 12×: F(4,3) is held
// to its documented accuracy, and a wrong gradient still fails (such errors
// move weights by far more).
func TestGoldenUNetAdamWinograd4(t *testing.T) {
	defer autodiff.SetWinograd(autodiff.Winograd())
	if err := autodiff.SetWinograd(4); err != nil {
		t.Fatal(err)
	}
	goldenUNetAdam(t, 8, 12)
}

// goldenUNetAdam runs the ten-step trajectory; rmsK and maxK scale the
// spread in the weight and running-statistics bounds.
func goldenUNetAdam(t *testing.T, rmsK, maxK float64) {
	fi, err := golden.Load("testdata/unet_init")
	if err != nil {
		t.Fatal(err)
	}
	ff, err := golden.Load("testdata/unet_final")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Preset: "unet3d", Filters: 4, Levels: 3, InputSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		init := fi.Get("init/" + p.Name)
		if !tensor.SameShape(init.Shape, p.Value.Shape) {
			t.Fatalf("%s: fixture shape %v, model %v", p.Name, init.Shape, p.Value.Shape)
		}
		p.Value.CopyFrom(init)
	}
	x := autodiff.Const(fi.Get("x"))
	y := autodiff.Const(fi.Get("mask"))
	lr := fi.Values["lr"][0]
	opt := optim.NewAdam(lr)
	want := fi.Values["loss"]
	// biasmix: the BN running-mean recursion applied to the conv bias that
	// feeds each BatchNorm (see 3. above and gen_golden.py).
	pm := m.State().ParamMap()
	mix := map[string][]float64{}
	tp := autodiff.NewTape()
	for step := 0; step < len(want); step++ {
		for _, b := range m.State().BNs {
			bias := pm[strings.TrimSuffix(strings.TrimSuffix(b.Name, ".bn"), ".upbn")+biasSuffix(b.Name)]
			mx := mix[b.Name]
			if mx == nil {
				mx = make([]float64, len(bias.Value.Data))
				mix[b.Name] = mx
			}
			for i, v := range bias.Value.Data {
				mx[i] = 0.9*mx[i] + 0.1*float64(v)
			}
		}
		optim.ZeroGrad(m.Params())
		probs, _ := m.Forward(tp, x, true)
		l := loss.Dice(tp, probs, y, loss.DiceEps)
		tp.Backward(l)
		opt.Step(m.Params())
		tp.Reset()
		got := float64(l.Item())
		rel := math.Abs(got-want[step]) / math.Abs(want[step])
		t.Logf("step %d: loss %.7f, PyTorch %.7f (rel %.1e)", step, got, want[step], rel)
		if rel > 1e-4 {
			t.Errorf("step %d: loss %.7f, PyTorch %.7f (relative difference %.2e > 1e-4)", step, got, want[step], rel)
		}
	}
	bound := 10 * lr * 0.1 / math.Sqrt(1-0.999) * 1.001
	var worstRMS, worstMax float64
	defer func() {
		t.Logf("largest ratios to the spread (less the absolute allowances): RMS %.2f, max %.2f", worstRMS, worstMax)
	}()
	check := func(name string, got, want []float32, spread []float64) {
		if len(spread) != 2 {
			t.Fatalf("fixture has no spread for %s", name)
		}
		mx, ss := 0.0, 0.0
		for i := range got {
			e := math.Abs(float64(got[i]) - float64(want[i]))
			mx = math.Max(mx, e)
			ss += e * e
		}
		rms := math.Sqrt(ss / float64(len(got)))
		t.Logf("%-22s max err %.2g (PyTorch f32-f64 %.2g), rms %.2g (%.2g)", name, mx, spread[0], rms, spread[1])
		if mx > maxK*spread[0]+1e-5 || rms > rmsK*spread[1]+3e-6 || math.IsNaN(mx) {
			t.Errorf("%s: max error %.3g, rms %.3g; allowed %.3g, %.3g", name, mx, rms, maxK*spread[0]+1e-5, rmsK*spread[1]+3e-6)
		}
		worstRMS = math.Max(worstRMS, (rms-3e-6)/spread[1])
		worstMax = math.Max(worstMax, (mx-1e-5)/spread[0])
	}
	for _, p := range m.Params() {
		init := fi.Get("init/" + p.Name)
		delta := ff.Get("delta/" + p.Name)
		if strings.HasSuffix(p.Name, ".conv.b") || strings.HasSuffix(p.Name, ".up.b") {
			for i, v := range p.Value.Data {
				if d := math.Abs(float64(v - init.Data[i])); d > bound {
					t.Errorf("%s[%d]: moved %.3g from its initial value, more than Adam's bound %.3g", p.Name, i, d, bound)
				}
			}
			continue
		}
		// Compare deltas (final − initial): both are exact in float32 here.
		got := make([]float32, len(p.Value.Data))
		for i, v := range p.Value.Data {
			got[i] = v - init.Data[i]
		}
		check(p.Name, got, delta.Data, fi.Values["spread/"+p.Name])
	}
	for _, b := range m.State().BNs {
		// Running means with the bias random walk removed on both sides.
		got := make([]float32, len(b.St.RunMean.Data))
		wantRM := make([]float32, len(got))
		tm, tmix := ff.Get(b.Name+".running_mean").Data, ff.Get(b.Name+".biasmix").Data
		for i := range got {
			got[i] = float32(float64(b.St.RunMean.Data[i]) - mix[b.Name][i])
			wantRM[i] = tm[i] - tmix[i]
		}
		check(b.Name+".running_mean−biasmix", got, wantRM, fi.Values["spread/"+b.Name+".running_mean_unbiased"])
		check(b.Name+".running_var", b.St.RunVar.Data, ff.Get(b.Name+".running_var").Data, fi.Values["spread/"+b.Name+".running_var"])
	}
}

// biasSuffix names the bias that feeds BatchNorm bn ("X.bn" ← "X.conv.b",
// "decI.upbn" ← "decI.up.b").
func biasSuffix(bn string) string {
	if strings.HasSuffix(bn, ".upbn") {
		return ".up.b"
	}
	return ".conv.b"
}

package autodiff_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/bench"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

// BenchmarkStepAB times `fess bench`'s training step (d: forward) of configuration
// FESS_AB_CONFIG (default c) with the engine toggle FESS_AB (a key of
// autodiff.Toggles, default convcat) off and on in alternate steps, in
// one process: on a machine whose speed drifts by tens of percent within
// minutes, this compares the two paths under the same conditions. It
// reports each side's median step (ms) and their ratio (on / off).
// FESS_WINOGRAD=4 selects F(4,3) as in `fess bench --winograd 4`, and
// FESS_AB_PRECISION=bf16 (or fp32, the default) the precision as
// `--precision` does.
//
//	FESS_AB=convcat FESS_AB_CONFIG=s go test -run XXX -bench StepAB -benchtime 12x ./autodiff
func BenchmarkStepAB(b *testing.B) {
	name, cfgName := os.Getenv("FESS_AB"), os.Getenv("FESS_AB_CONFIG")
	if name == "" {
		name = "convcat"
	}
	if cfgName == "" {
		cfgName = "c"
	}
	tog, ok := autodiff.Toggles[name]
	if !ok {
		b.Fatalf("FESS_AB=%q: not one of the toggles", name)
	}
	c, ok := bench.Lookup(cfgName)
	if !ok {
		b.Fatalf("FESS_AB_CONFIG=%q: no such configuration", cfgName)
	}
	defer tog(true)
	if v := os.Getenv("FESS_AB_PRECISION"); v != "" { // as `fess bench --precision`
		p, err := kernels.ParsePrecision(v)
		if err != nil {
			b.Fatalf("FESS_AB_PRECISION: %v", err)
		}
		if err := kernels.SetPrecision(p); err != nil {
			b.Skip(err)
		}
		defer kernels.SetPrecision(kernels.FP32)
	}
	th := 2
	tensor.SetThreads(th)
	kernels.SetThreads(th)
	m, err := model.New(c.ModelConfig())
	if err != nil {
		b.Fatal(err)
	}
	x, y := c.Batch()
	xv, yv := autodiff.Const(x), autodiff.Const(y)
	params := m.Params()
	opt := optim.NewAdam(1e-4)
	fopt := loss.DefaultFESSOptions()
	tp, ng := autodiff.NewArenaTape(), autodiff.NewNoGradArena()
	step := func() time.Duration {
		t0 := time.Now()
		if !c.Train { // the forward configuration (d): inference
			out, _ := m.Forward(ng, xv, false)
			ng.Free(out)
			ng.Reset()
			return time.Since(t0)
		}
		pa, a := m.Forward(ng, xv, true)
		ng.Free(pa)
		probs, bt := m.Forward(tp, xv, true)
		l := loss.FESS(tp, probs, yv, a, bt, fopt).Total
		optim.ZeroGrad(params)
		tp.Backward(l)
		optim.ClipGradNorm(params, 1)
		opt.Step(params)
		tp.Reset()
		ng.Reset()
		return time.Since(t0)
	}
	for _, v := range []bool{false, true} { // warm-up, both paths
		tog(v)
		step()
	}
	var off, on []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := i%2 == 1
		tog(v)
		d := step().Seconds() * 1e3
		if v {
			on = append(on, d)
		} else {
			off = append(off, d)
		}
	}
	med := func(s []float64) float64 {
		if len(s) == 0 {
			return 0
		}
		s = slices.Clone(s)
		slices.Sort(s)
		return s[len(s)/2]
	}
	b.ReportMetric(med(off), strings.ToLower(name)+"-off-ms")
	b.ReportMetric(med(on), strings.ToLower(name)+"-on-ms")
	if med(off) > 0 {
		b.ReportMetric(med(on)/med(off), "on/off")
	}
}

package model

import (
	"syscall"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

// BenchmarkTrainStepConfigA times `fess bench`'s config a (N=2, 32³, F=8, 3
// levels) training step as the PyTorch peer does it: a no-grad forward, a
// forward with gradient, Dice loss, backward, clipping, Adam, on arena tapes
// (pooled buffers: -benchmem shows the steady state allocates little).
func BenchmarkTrainStepConfigA(b *testing.B) {
	m, err := New(Config{Preset: "unet3d", Filters: 8, Levels: 3, InputSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	x := tensor.New(2, 32, 32, 32, 1)
	y := tensor.New(2, 32, 32, 32, 1)
	for i := range x.Data {
		x.Data[i] = float32(i%13)/6 - 1
		if i%3 == 0 {
			y.Data[i] = 1
		}
	}
	xv, yv := autodiff.Const(x), autodiff.Const(y)
	opt := optim.NewAdam(1e-4)
	tp, ng := autodiff.NewArenaTape(), autodiff.NewNoGradArena()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Forward(ng, xv, true)
		optim.ZeroGrad(m.Params())
		p, _ := m.Forward(tp, xv, true)
		tp.Backward(loss.Dice(tp, p, yv, loss.DiceEps))
		optim.ClipGradNorm(m.Params(), 1)
		opt.Step(m.Params())
		tp.Reset()
		ng.Reset()
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

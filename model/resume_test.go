package model

import (
	"path/filepath"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

func smallBatch() (*autodiff.Var, *autodiff.Var) {
	x := tensor.New(2, 8, 8, 8, 1)
	y := tensor.New(2, 8, 8, 8, 1)
	for i := range x.Data {
		x.Data[i] = float32((i*7919)%97)/48 - 1
		if (i/8)%3 == 0 {
			y.Data[i] = 1
		}
	}
	return autodiff.Const(x), autodiff.Const(y)
}

// trainSteps runs n training steps (dropout on, clipping, Adam).
func trainSteps(m *UNet3D, opt optim.Optimizer, n int) {
	x, y := smallBatch()
	tp := autodiff.NewTape()
	for i := 0; i < n; i++ {
		optim.ZeroGrad(m.Params())
		p, _ := m.Forward(tp, x, true)
		tp.Backward(loss.Dice(tp, p, y, loss.DiceEps))
		optim.ClipGradNorm(m.Params(), 1)
		opt.Step(m.Params())
		tp.Reset()
	}
}

func newSmall(t *testing.T) *UNet3D {
	m, err := New(Config{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8, Dropout: 0.3, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameState(t *testing.T, what string, a, b *UNet3D) {
	t.Helper()
	ra, rb := a.State().Records(), b.State().Records()
	for i := range ra {
		if ra[i].Tensor != nil {
			for j, v := range ra[i].Tensor.Data {
				if v != rb[i].Tensor.Data[j] {
					t.Fatalf("%s: %s[%d] differs: %v vs %v", what, ra[i].Name, j, v, rb[i].Tensor.Data[j])
				}
			}
		} else if ra[i].Ints[0] != rb[i].Ints[0] || ra[i].Ints[1] != rb[i].Ints[1] {
			t.Fatalf("%s: %s differs", what, ra[i].Name)
		}
	}
}

// TestResumeBitIdentical: 3 steps, save model+optimiser, 3 more steps;
// versus a fresh process-like restart that loads the file and runs the
// last 3 steps. Weights, BatchNorm statistics and dropout RNG states must be
// bit-identical (dropout 0.3 is active, so the RNG state matters).
func TestResumeBitIdentical(t *testing.T) {
	a := newSmall(t)
	optA := optim.NewAdam(1e-2)
	trainSteps(a, optA, 3)
	path := filepath.Join(t.TempDir(), "ckpt.state")
	if err := tensor.SaveFile(path, append(a.State().Records(), optA.Records()...)); err != nil {
		t.Fatal(err)
	}
	trainSteps(a, optA, 3)

	b, err := New(Config{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8, Dropout: 0.3, Seed: 1234})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tensor.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	optB := optim.NewAdam(1e-2)
	if err := b.State().Load(recs, path); err != nil {
		t.Fatal(err)
	}
	if err := optB.Load(recs, path); err != nil {
		t.Fatal(err)
	}
	trainSteps(b, optB, 3)
	sameState(t, "resumed", a, b)

	// A model of another shape refuses the file.
	c, _ := New(Config{Preset: "unet3d", Filters: 3, Levels: 2, InputSize: 8})
	if err := c.State().Load(recs, path); err == nil {
		t.Error("loading a checkpoint into a differently sized model: no error")
	}
}

// TestDeterministic: two identical runs give bit-identical states.
func TestDeterministic(t *testing.T) {
	a, b := newSmall(t), newSmall(t)
	trainSteps(a, optim.NewAdam(1e-2), 2)
	trainSteps(b, optim.NewAdam(1e-2), 2)
	sameState(t, "rerun", a, b)
}

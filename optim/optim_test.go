package optim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

type goldenCase struct {
	Options    map[string]any `json:"options"`
	Trajectory [][]float64    `json:"trajectory"`
}

func loadGolden(t *testing.T) (map[string]json.RawMessage, []float32, [][]float32) {
	raw, err := os.ReadFile("testdata/optim.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var p0 []float32
	var grads [][]float32
	json.Unmarshal(m["p0"], &p0)
	json.Unmarshal(m["grads"], &grads)
	return m, p0, grads
}

// TestGoldenOptimizers replays a fixed gradient sequence through each
// optimiser and compares every step with PyTorch 1.13 (testdata/optim.json,
// written by gen_golden.py) to 2 ulp-ish (1e-7 absolute + 1e-6 relative);
// the sequence includes gradients of 1e-9 and exact zeros, where Adam's eps
// placement matters.
func TestGoldenOptimizers(t *testing.T) {
	m, p0, grads := loadGolden(t)
	mk := map[string]func() Optimizer{
		"adam":    func() Optimizer { return NewAdam(1e-2) },
		"adam_l2": func() Optimizer { a := NewAdam(1e-2); a.WeightDecay = 0.1; return a },
		"adamw": func() Optimizer {
			a := NewAdam(1e-2)
			a.WeightDecay, a.Decoupled = 0.1, true
			return a
		},
		"sgd":          func() Optimizer { return NewSGD(0.1, 0) },
		"sgd_momentum": func() Optimizer { s := NewSGD(0.1, 0.9); s.WeightDecay = 0.01; return s },
		"sgd_nesterov": func() Optimizer { s := NewSGD(0.1, 0.9); s.Nesterov = true; return s },
	}
	for name, newOpt := range mk {
		var gc goldenCase
		if err := json.Unmarshal(m[name], &gc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := autodiff.NewParam("p", tensor.FromSlice(append([]float32(nil), p0...), len(p0)))
		opt := newOpt()
		for step, g := range grads {
			copy(p.Grad.Data, g)
			opt.Step([]*autodiff.Var{p})
			for i, want := range gc.Trajectory[step] {
				got := float64(p.Value.Data[i])
				if math.Abs(got-want) > 1e-7+1e-6*math.Abs(want) {
					t.Errorf("%s step %d [%d]: %.9g, PyTorch %.9g", name, step, i, got, want)
				}
			}
		}
	}
}

func TestGoldenClip(t *testing.T) {
	m, _, _ := loadGolden(t)
	var c struct {
		Norm float64   `json:"norm"`
		A    []float64 `json:"a"`
		B    []float64 `json:"b"`
	}
	json.Unmarshal(m["clip"], &c)
	if len(c.A) != 2 || len(c.B) != 4 {
		t.Fatalf("bad clip fixture %+v", c)
	}
	a := autodiff.NewParam("a", tensor.FromSlice([]float32{3, 4}, 2))
	b := autodiff.NewParam("b", tensor.FromSlice([]float32{1, 2, 2, 0.5}, 2, 2))
	copy(a.Grad.Data, a.Value.Data)
	copy(b.Grad.Data, b.Value.Data)
	n := ClipGradNorm([]*autodiff.Var{a, b}, 1)
	if math.Abs(n-c.Norm) > 1e-6 {
		t.Errorf("norm %g, PyTorch %g", n, c.Norm)
	}
	for i, w := range c.A {
		if math.Abs(float64(a.Grad.Data[i])-w) > 1e-7 {
			t.Errorf("a.grad[%d] = %g, PyTorch %g", i, a.Grad.Data[i], w)
		}
	}
	for i, w := range c.B {
		if math.Abs(float64(b.Grad.Data[i])-w) > 1e-7 {
			t.Errorf("b.grad[%d] = %g, PyTorch %g", i, b.Grad.Data[i], w)
		}
	}
	// Below the threshold, gradients are untouched.
	copy(a.Grad.Data, []float32{0.3, 0.4})
	clear(b.Grad.Data)
	ClipGradNorm([]*autodiff.Var{a, b}, 1)
	if a.Grad.Data[0] != 0.3 || a.Grad.Data[1] != 0.4 {
		t.Errorf("small gradient changed: %v", a.Grad.Data)
	}
}

// TestStateRoundTrip saves Adam's state mid-run, reloads it into a fresh
// optimiser and checks that both continue bit-identically.
func TestStateRoundTrip(t *testing.T) {
	_, p0, grads := loadGolden(t)
	for _, mk := range []func() Optimizer{
		func() Optimizer { return NewAdam(1e-2) },
		func() Optimizer { return NewSGD(0.1, 0.9) },
	} {
		p := autodiff.NewParam("p", tensor.FromSlice(append([]float32(nil), p0...), len(p0)))
		opt := mk()
		for _, g := range grads[:2] {
			copy(p.Grad.Data, g)
			opt.Step([]*autodiff.Var{p})
		}
		path := filepath.Join(t.TempDir(), "opt.state")
		if err := tensor.SaveFile(path, opt.Records()); err != nil {
			t.Fatal(err)
		}
		q := autodiff.NewParam("p", p.Value.Clone())
		recs, err := tensor.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		opt2 := mk()
		if err := opt2.Load(recs, path); err != nil {
			t.Fatal(err)
		}
		for _, g := range grads[2:] {
			copy(p.Grad.Data, g)
			copy(q.Grad.Data, g)
			opt.Step([]*autodiff.Var{p})
			opt2.Step([]*autodiff.Var{q})
		}
		for i := range p.Value.Data {
			if p.Value.Data[i] != q.Value.Data[i] {
				t.Fatalf("%T: resumed run differs at %d: %v vs %v", opt, i, p.Value.Data[i], q.Value.Data[i])
			}
		}
	}
	if err := NewAdam(1).Load(nil, "x.state"); err == nil {
		t.Error("loading Adam from an empty record list: no error")
	}
}

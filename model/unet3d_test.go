package model

import (
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// paramCount is the analytic parameter count of the unet3d preset:
// conv (27·cin·co + co), BN (2·co), up-conv (8·cin·co + co).
func paramCount(cin, f, l, cb int, perLevel int) int {
	conv := func(k, ci, co int) int { return k*ci*co + co }
	n, c := 0, cin
	for i := 0; i < l; i++ {
		co := f << i
		for j := 0; j < perLevel; j++ {
			n += conv(27, c, co) + 2*co
			c = co
		}
	}
	n += conv(27, c, cb) + 2*cb + conv(27, cb, cb) + 2*cb
	c = cb
	for i := l - 1; i >= 0; i-- {
		co := f << i
		n += conv(8, c, co) + 2*co
		n += conv(27, 2*co, co) + 2*co + conv(27, co, co) + 2*co
		c = co
	}
	return n + conv(1, c, 1)
}

func TestShapesAndParams(t *testing.T) {
	for _, cfg := range []Config{
		{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 8},
		{Preset: "seed", Filters: 2, Levels: 2, InputSize: 8, BottleneckChannels: 6},
	} {
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		per := 2
		if cfg.Preset == "seed" {
			per = 1
		}
		cb := m.Cfg.BottleneckChannels
		if got, want := m.State().NumParams(), paramCount(1, cfg.Filters, cfg.Levels, cb, per); got != want {
			t.Errorf("%s: %d parameters, want %d", cfg.Preset, got, want)
		}
		x := autodiff.Const(tensor.Full(0.5, 2, 8, 8, 8, 1))
		x.Value.Data[3] = 2
		tp := autodiff.NewTape()
		p, b := m.Forward(tp, x, true)
		if !tensor.SameShape(p.Shape(), []int{2, 8, 8, 8, 1}) || !tensor.SameShape(b.Shape(), []int{2, 2, 2, 2, cb}) {
			t.Fatalf("%s: shapes %v %v", cfg.Preset, p.Shape(), b.Shape())
		}
		tp.Backward(tp.Mean(p, nil))
		for _, q := range m.Params() {
			if q.Grad == nil {
				t.Fatalf("%s: no gradient for %s", cfg.Preset, q.Name)
			}
		}
		// No-grad pass records nothing and gives the same inference output.
		var none *autodiff.Tape
		p1, _ := m.Forward(none, x, false)
		p2, _ := m.Forward(autodiff.NewTape(), x, false)
		for i := range p1.Value.Data {
			if p1.Value.Data[i] != p2.Value.Data[i] {
				t.Fatalf("no-grad and taped inference differ at %d", i)
			}
		}
	}
	// The full seed preset has the reference's sizes.
	m, err := New(Config{Preset: "seed"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cfg.InputSize != 64 || m.Cfg.Filters != 32 || m.Cfg.Levels != 4 || m.BottleneckChannels() != 1024 || m.Cfg.Dropout != 0.2 {
		t.Errorf("seed preset resolved to %+v", m.Cfg)
	}
	if got, want := m.State().NumParams(), paramCount(1, 32, 4, 1024, 1); got != want {
		t.Errorf("seed: %d parameters, want %d", got, want)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Preset: "nope"}, {InputSize: 20, Levels: 3}, {Filters: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestValidateInput(t *testing.T) {
	m, err := New(Config{Filters: 2, Levels: 2, InputSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ValidateInput([]int{1, 8, 12, 16, 1}); err != nil {
		t.Errorf("valid shape rejected: %v", err)
	}
	for _, s := range [][]int{{1, 8, 8, 8}, {1, 8, 8, 6, 1}, {1, 8, 8, 8, 2}, {0, 8, 8, 8, 1}, {1, 0, 8, 8, 1}} {
		if m.ValidateInput(s) == nil {
			t.Errorf("shape %v accepted", s)
		}
	}
}

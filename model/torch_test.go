package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/tensor"
)

// perturbBN draws BatchNorm γ, β and running statistics away from their
// initial 1, 0, 0, 1 so that a test notices a mix-up.
func perturbBN(m *UNet3D, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".gamma") || strings.HasSuffix(p.Name, ".beta") {
			for i := range p.Value.Data {
				p.Value.Data[i] = float32(r.Float64()) + 0.5
			}
		}
	}
	for _, b := range m.State().BNs {
		for i := range b.St.RunMean.Data {
			b.St.RunMean.Data[i] = float32(r.NormFloat64() * 0.1)
			b.St.RunVar.Data[i] = float32(r.Float64()) + 0.5
		}
	}
}

func TestTorchTensorsRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8, InChannels: 4, OutChannels: 3},
		{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8, OutChannels: 3, Softmax: true, NoUpBN: true},
		{Preset: "seed", Filters: 2, Levels: 2, InputSize: 8, BottleneckChannels: 6},
	} {
		a, _ := New(Config{Seed: 1, Preset: cfg.Preset, Filters: cfg.Filters, Levels: cfg.Levels, InputSize: cfg.InputSize,
			InChannels: cfg.InChannels, OutChannels: cfg.OutChannels, Softmax: cfg.Softmax, NoUpBN: cfg.NoUpBN, BottleneckChannels: cfg.BottleneckChannels})
		cfg.Seed = 2
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		perturbBN(a, 3)
		ts := a.TorchTensors()
		// Every parameter and statistic is exported once; plus one
		// num_batches_tracked per BatchNorm.
		if want := len(a.Params()) + 3*len(a.State().BNs); len(ts) != want {
			t.Fatalf("%s: %d tensors, want %d", cfg.Preset, len(ts), want)
		}
		// Layout: torch conv weight [Cout,Cin,kx,ky,kz] = fess [kz,ky,kx,Cin,Cout].
		w := a.enc[0].blocks[0].conv.W.Value
		var tw NamedTensor
		for _, x := range ts {
			if x.Name == "enc.0.0.conv.weight" {
				tw = x
			}
		}
		k, ci, co := w.Shape[0], w.Shape[3], w.Shape[4]
		if !tensor.SameShape(tw.Shape, []int{co, ci, k, k, k}) {
			t.Fatalf("enc.0.0.conv.weight shape %v", tw.Shape)
		}
		for o := 0; o < co; o++ {
			for i := 0; i < ci; i++ {
				for x := 0; x < k; x++ {
					for y := 0; y < k; y++ {
						for z := 0; z < k; z++ {
							got := tw.Data[(((o*ci+i)*k+x)*k+y)*k+z]
							if want := w.Data[(((z*k+y)*k+x)*ci+i)*co+o]; got != want {
								t.Fatalf("weight[%d,%d,%d,%d,%d] = %v, want %v", o, i, x, y, z, got, want)
							}
						}
					}
				}
			}
		}
		if err := b.LoadTorchTensors(ts, "mem"); err != nil {
			t.Fatal(err)
		}
		ra, rb := a.State().Records(), b.State().Records()
		for i := range ra {
			if ra[i].Tensor == nil {
				continue // RNG states are not part of a state_dict
			}
			for j, v := range ra[i].Tensor.Data {
				if rb[i].Tensor.Data[j] != v {
					t.Fatalf("%s: %s differs after the round trip", cfg.Preset, ra[i].Name)
				}
			}
		}
		// And the same inference output.
		s := cfg.InputSize
		x := tensor.New(1, s, s, s, b.Cfg.InChannels)
		for i := range x.Data {
			x.Data[i] = float32(math.Sin(float64(i)))
		}
		pa, _ := a.ForwardLogits(nil, autodiff.Const(x), false)
		pb, _ := b.ForwardLogits(nil, autodiff.Const(x), false)
		for i := range pa.Value.Data {
			if pa.Value.Data[i] != pb.Value.Data[i] {
				t.Fatal("outputs differ after the round trip")
			}
		}
	}
}

func TestLoadTorchTensorsErrors(t *testing.T) {
	m, _ := New(Config{Filters: 2, Levels: 2, InputSize: 8})
	fresh := func() []NamedTensor { return m.TorchTensors() }
	cases := []struct {
		name string
		edit func([]NamedTensor) []NamedTensor
		want []string
	}{
		{"missing", func(ts []NamedTensor) []NamedTensor { return ts[1:] }, []string{`"enc.0.0.conv.weight"`, "missing", "[2 1 3 3 3]"}},
		{"extra", func(ts []NamedTensor) []NamedTensor {
			return append(ts, NamedTensor{Name: "head.weight", Shape: []int{1}, Data: []float32{0}})
		}, []string{`"head.weight"`, "unexpected", "[1]"}},
		{"shape", func(ts []NamedTensor) []NamedTensor {
			ts[0] = NamedTensor{Name: ts[0].Name, Shape: []int{4, 1, 3, 3, 3}, Data: make([]float32, 108)}
			return ts
		}, []string{`"enc.0.0.conv.weight"`, "[4 1 3 3 3]", "[2 1 3 3 3]"}},
		{"nan", func(ts []NamedTensor) []NamedTensor {
			ts[2].Data[1] = float32(math.NaN())
			return ts
		}, []string{`"enc.0.0.bn.weight"`, "non-finite"}},
		{"inf", func(ts []NamedTensor) []NamedTensor {
			ts[0].Data[5] = float32(math.Inf(-1))
			return ts
		}, []string{`"enc.0.0.conv.weight"`, "non-finite"}},
		{"duplicate", func(ts []NamedTensor) []NamedTensor { return append(ts, ts[3]) }, []string{`"enc.0.0.bn.bias"`, "twice"}},
	}
	before := m.TorchTensors()
	for _, c := range cases {
		err := m.LoadTorchTensors(c.edit(fresh()), "w.safetensors")
		var ie *errs.InputError
		if err == nil || !errors.As(err, &ie) {
			t.Fatalf("%s: got %v, want an input error", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "w.safetensors") {
				t.Errorf("%s: error %q lacks %q or the file name", c.name, err, w)
			}
		}
	}
	// A refused load leaves the network unchanged.
	after := m.TorchTensors()
	for i := range before {
		for j := range before[i].Data {
			if before[i].Data[j] != after[i].Data[j] {
				t.Fatalf("%s changed by a refused load", before[i].Name)
			}
		}
	}
}

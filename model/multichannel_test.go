package model

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/golden"
	"github.com/fess-seg/fess/tensor"
)

// TestGoldenMultiChannel runs two multi-channel unet3d networks (F=4, 2
// levels, 16³, batch 2, training-mode BatchNorm) on PyTorch's weights and
// input (testdata/gen_multi_golden.py, forward in float64) and requires
// the logits of ForwardLogits and the probabilities of Forward within 1e-4
// of PyTorch's elementwise:
//
//   - sig: 4 input channels, 3 sigmoid outputs (BraTS-style regions);
//   - soft: 1 input channel, 5 softmax outputs (background + 4 classes).
func TestGoldenMultiChannel(t *testing.T) {
	f, err := golden.Load("testdata/multi")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tag      string
		cin, out int
		softmax  bool
	}{{"sig", 4, 3, false}, {"soft", 1, 5, true}} {
		m, err := New(Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16,
			InChannels: tc.cin, OutChannels: tc.out, Softmax: tc.softmax})
		if err != nil {
			t.Fatal(err)
		}
		if cfg := f.Values[tc.tag+"/config"]; int(cfg[0]) != tc.cin || int(cfg[1]) != tc.out || (cfg[2] == 1) != tc.softmax {
			t.Fatalf("%s: fixture config %v", tc.tag, cfg)
		}
		for _, p := range m.Params() {
			w := f.Get(tc.tag + "/param/" + p.Name)
			if !tensor.SameShape(w.Shape, p.Value.Shape) {
				t.Fatalf("%s %s: fixture shape %v, model %v", tc.tag, p.Name, w.Shape, p.Value.Shape)
			}
			p.Value.CopyFrom(w)
		}
		x := autodiff.Const(f.Get(tc.tag + "/x"))
		tp := autodiff.NewTape()
		z, _ := m.ForwardLogits(tp, x, true)
		p, _ := m.Forward(tp, x, true)
		for _, c := range []struct {
			name string
			got  *tensor.Tensor
		}{{"logits", z.Value}, {"probs", p.Value}} {
			want := f.Get(tc.tag + "/" + c.name)
			if !tensor.SameShape(c.got.Shape, want.Shape) {
				t.Fatalf("%s %s: shape %v, PyTorch %v", tc.tag, c.name, c.got.Shape, want.Shape)
			}
			worst := 0.0
			for i, v := range c.got.Data {
				worst = math.Max(worst, math.Abs(float64(v)-float64(want.Data[i])))
				if math.IsNaN(float64(v)) {
					worst = math.Inf(1)
				}
			}
			t.Logf("%s %s: max error %.3g", tc.tag, c.name, worst)
			if worst > 1e-4 {
				t.Errorf("%s %s: max error %.3g > 1e-4", tc.tag, c.name, worst)
			}
		}
		// Backward runs through the K-channel head.
		tp.Backward(tp.Mean(p, nil))
		if g := m.State().ParamMap()["final.w"].Grad; g == nil || !tensor.SameShape(g.Shape, []int{1, 1, 1, 4, tc.out}) {
			t.Errorf("%s: final.w gradient %v", tc.tag, g)
		}
	}
}

// TestSoftmaxOutputsSumToOne checks that the softmax head's probabilities
// sum to 1 over the channels of every voxel and lie in [0, 1], and that the
// sigmoid head's K channels are the sigmoids of its logits.
func TestSoftmaxOutputsSumToOne(t *testing.T) {
	x := tensor.New(2, 8, 8, 8, 2)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i) * 0.37))
	}
	for _, soft := range []bool{true, false} {
		m, err := New(Config{Filters: 2, Levels: 2, InputSize: 8, InChannels: 2, OutChannels: 4, Softmax: soft, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		var none *autodiff.Tape
		z, _ := m.ForwardLogits(none, autodiff.Const(x), false)
		p, _ := m.Forward(none, autodiff.Const(x), false)
		if !tensor.SameShape(p.Value.Shape, []int{2, 8, 8, 8, 4}) {
			t.Fatalf("probs shape %v", p.Value.Shape)
		}
		for v := 0; v < len(p.Value.Data)/4; v++ {
			s := 0.0
			for k := 0; k < 4; k++ {
				q := p.Value.Data[4*v+k]
				if !(q >= 0 && q <= 1) {
					t.Fatalf("softmax=%v: probability %v", soft, q)
				}
				s += float64(q)
				if !soft {
					want := 1 / (1 + math.Exp(-float64(z.Value.Data[4*v+k])))
					if math.Abs(float64(q)-want) > 1e-6 {
						t.Fatalf("sigmoid channel %d: %v, want %v", k, q, want)
					}
				}
			}
			if soft && math.Abs(s-1) > 1e-5 {
				t.Fatalf("voxel %d: softmax sums to %v", v, s)
			}
		}
	}
}

// TestConfigChannels checks the defaults and validation of the channel
// fields and that configs written before OutChannels existed still load.
func TestConfigChannels(t *testing.T) {
	c, err := Resolve(Config{})
	if err != nil || c.InChannels != 1 || c.OutChannels != 1 || c.Softmax {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []Config{
		{OutChannels: -1}, {InChannels: -2}, {Softmax: true}, {Softmax: true, OutChannels: 1},
	} {
		if _, err := Resolve(bad); err == nil {
			t.Errorf("Resolve(%+v) accepted", bad)
		}
	}
	if _, err := Resolve(Config{Softmax: true, OutChannels: 2}); err != nil {
		t.Errorf("softmax with 2 channels: %v", err)
	}
	var old Config
	if err := json.Unmarshal([]byte(`{"Preset":"unet3d","Filters":4,"Levels":2,"InputSize":16,"InChannels":1,"NoUpBN":true}`), &old); err != nil {
		t.Fatal(err)
	}
	if c, err := Resolve(old); err != nil || c.OutChannels != 1 || c.Softmax {
		t.Errorf("old config: %+v, %v", c, err)
	}
	b, _ := json.Marshal(Config{OutChannels: 3, Softmax: true})
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || back.OutChannels != 3 || !back.Softmax {
		t.Errorf("round trip %s: %+v, %v", b, back, err)
	}
	// The K = 1 sigmoid head has the same parameters as before the field.
	m, err := New(Config{Filters: 2, Levels: 1, InputSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if w := m.State().ParamMap()["final.w"]; !tensor.SameShape(w.Value.Shape, []int{1, 1, 1, 2, 1}) {
		t.Errorf("final.w shape %v", w.Value.Shape)
	}
}

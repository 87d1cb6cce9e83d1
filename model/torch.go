package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/nn"
	"github.com/fess-seg/fess/tensor"
)

// NamedTensor is one entry of a PyTorch state_dict: float32 values in Data,
// or int64 values in Ints (num_batches_tracked, shape [] — one value).
type NamedTensor struct {
	Name  string
	Shape []int
	Data  []float32
	Ints  []int64
}

// torchEntry is one state_dict entry of the PyTorch module
// (model/torch/fess_unet.py) and where its values live in the UNet3D.
type torchEntry struct {
	name string
	t    *tensor.Tensor // nil for num_batches_tracked
	// rev: the torch layout is the fess layout with its axes reversed
	// (conv [kz,ky,kx,Cin,Cout] ↔ [Cout,Cin,kx,ky,kz]; transposed conv
	// [kz,ky,kx,Cout,Cin] ↔ [Cin,Cout,kx,ky,kz]).
	rev bool
}

// torchEntries lists the module's state_dict in its order: enc.i.j, bott.j,
// dec.i (i = 0..L−1: up, upbn, 0, 1), final; per conv weight and bias, per
// BatchNorm weight (γ), bias (β), running_mean, running_var and
// num_batches_tracked.
func (m *UNet3D) torchEntries() []torchEntry {
	var es []torchEntry
	conv := func(name string, w, b *tensor.Tensor) {
		es = append(es, torchEntry{name + ".weight", w, true}, torchEntry{name + ".bias", b, false})
	}
	bn := func(name string, l *nn.BatchNorm) {
		es = append(es,
			torchEntry{name + ".weight", l.Gamma.Value, false},
			torchEntry{name + ".bias", l.Beta.Value, false},
			torchEntry{name + ".running_mean", l.St.RunMean, false},
			torchEntry{name + ".running_var", l.St.RunVar, false},
			torchEntry{name + ".num_batches_tracked", nil, false})
	}
	block := func(name string, b block) {
		conv(name+".conv", b.conv.W.Value, b.conv.B.Value)
		bn(name+".bn", b.bn)
	}
	for i, l := range m.enc {
		for j, b := range l.blocks {
			block(fmt.Sprintf("enc.%d.%d", i, j), b)
		}
	}
	for j, b := range m.bott {
		block(fmt.Sprintf("bott.%d", j), b)
	}
	for i, l := range m.dec {
		name := fmt.Sprintf("dec.%d", i)
		conv(name+".up", l.up.W.Value, l.up.B.Value)
		if l.upbn != nil {
			bn(name+".upbn", l.upbn)
		}
		for j, b := range l.blocks {
			block(fmt.Sprintf("%s.%d", name, j), b)
		}
	}
	conv("final", m.final.W.Value, m.final.B.Value)
	return es
}

func (e torchEntry) shape() []int {
	if e.t == nil {
		return []int{}
	}
	s := append([]int(nil), e.t.Shape...)
	if e.rev {
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
	}
	return s
}

// reverseAxes returns data of a row-major tensor of shape with its axes in
// reverse order (out[i_n]…[i_1] = in[i_1]…[i_n]); it is its own inverse
// given the reversed shape.
func reverseAxes(data []float32, shape []int) []float32 {
	n := len(shape)
	out := make([]float32, len(data))
	if len(data) == 0 {
		return out
	}
	// Strides of the output for each input axis: input axis a is output
	// axis n−1−a.
	ostr := make([]int, n)
	s := 1
	for a := 0; a < n; a++ { // output's last axis is input axis 0
		ostr[a] = s
		s *= shape[a]
	}
	idx := make([]int, n)
	o := 0
	for i := range data {
		out[o] = data[i]
		for a := n - 1; a >= 0; a-- {
			idx[a]++
			o += ostr[a]
			if idx[a] < shape[a] {
				break
			}
			o -= ostr[a] * shape[a]
			idx[a] = 0
		}
	}
	return out
}

// TorchTensors returns the network's weights as the state_dict of the
// PyTorch module in model/torch/fess_unet.py, in its order, with its names
// and layouts (BatchNorm running statistics included, so the module's eval
// mode is fess's inference). fess does not count BatchNorm batches, so every
// num_batches_tracked is 0 (PyTorch reads it only when momentum is None,
// which the module never sets). Values are copies.
func (m *UNet3D) TorchTensors() []NamedTensor {
	es := m.torchEntries()
	out := make([]NamedTensor, 0, len(es))
	for _, e := range es {
		nt := NamedTensor{Name: e.name, Shape: e.shape()}
		switch {
		case e.t == nil:
			nt.Ints = []int64{0}
		case e.rev:
			nt.Data = reverseAxes(e.t.Data, e.t.Shape)
		default:
			nt.Data = append([]float32(nil), e.t.Data...)
		}
		out = append(out, nt)
	}
	return out
}

// TorchNames returns the state_dict names TorchTensors writes, in order.
func (m *UNet3D) TorchNames() []string {
	es := m.torchEntries()
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.name
	}
	return out
}

// LoadTorchTensors is TorchTensors' inverse: it copies a PyTorch state_dict
// of the same architecture (names and layouts of model/torch/fess_unet.py)
// into the network, BatchNorm running statistics included
// (num_batches_tracked is checked for shape and ignored). Every tensor must
// be present exactly once with the module's shape and finite values, and no
// other tensor may be present; otherwise it returns errs.Input(file, …)
// naming the tensor (and both shapes), and the network is left unchanged.
func (m *UNet3D) LoadTorchTensors(ts []NamedTensor, file string) error {
	byName := make(map[string]NamedTensor, len(ts))
	for _, t := range ts {
		if _, dup := byName[t.Name]; dup {
			return errs.Input(file, "tensor %q appears twice", t.Name)
		}
		byName[t.Name] = t
	}
	es := m.torchEntries()
	want := make(map[string]bool, len(es))
	var missing []string
	for _, e := range es {
		want[e.name] = true
		t, ok := byName[e.name]
		if !ok {
			missing = append(missing, e.name)
			continue
		}
		ws := e.shape()
		if !tensor.SameShape(t.Shape, ws) {
			return errs.Input(file, "tensor %q has shape %v, the model (%s) expects %v", e.name, t.Shape, m.describe(), ws)
		}
		n := 1
		for _, d := range ws {
			n *= d
		}
		if e.t == nil {
			if len(t.Ints)+len(t.Data) != 1 {
				return errs.Input(file, "tensor %q holds %d values, want one", e.name, len(t.Ints)+len(t.Data))
			}
			continue
		}
		if len(t.Data) != n {
			return errs.Input(file, "tensor %q of shape %v holds %d float values, want %d", e.name, t.Shape, len(t.Data), n)
		}
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return errs.Input(file, "tensor %q holds a non-finite value (%v at index %d)", e.name, v, i)
			}
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 1 {
			more = fmt.Sprintf(" (and %d more: %s)", len(missing)-1, abbreviate(missing[1:], 4))
		}
		return errs.Input(file, "missing tensor %q of shape %v for the model (%s)%s",
			missing[0], shapeOf(es, missing[0]), m.describe(), more)
	}
	var extra []string
	for _, t := range ts {
		if !want[t.Name] {
			extra = append(extra, t.Name)
		}
	}
	if len(extra) > 0 {
		return errs.Input(file, "unexpected tensor %q of shape %v: the model (%s) has no such entry (%d unexpected: %s)",
			extra[0], byName[extra[0]].Shape, m.describe(), len(extra), abbreviate(extra, 4))
	}
	for _, e := range es {
		if e.t == nil {
			continue
		}
		src := byName[e.name].Data
		if e.rev {
			src = reverseAxes(src, e.shape())
		}
		copy(e.t.Data, src)
	}
	return nil
}

func shapeOf(es []torchEntry, name string) []int {
	for _, e := range es {
		if e.name == name {
			return e.shape()
		}
	}
	return nil
}

func abbreviate(names []string, k int) string {
	if len(names) <= k {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:k], ", ") + ", …"
}

// describe names the architecture in error messages.
func (m *UNet3D) describe() string {
	c := m.Cfg
	s := fmt.Sprintf("preset %s, F=%d, %d levels, bottleneck %d, %d in, %d out", c.Preset, c.Filters, c.Levels,
		c.BottleneckChannels, c.InChannels, c.OutChannels)
	if c.NoUpBN {
		s += ", no up-BN"
	}
	return s
}

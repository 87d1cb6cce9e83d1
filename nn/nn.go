// Package nn holds the engine's layers (parameters plus a forward built
// from autodiff ops), their initialisation rules and State, the named
// collection of parameters, BatchNorm running statistics and dropout RNG
// states that is saved and loaded as one file.
//
// Initialisation (Init):
//   - InitTorch, PyTorch's defaults: conv, transposed-conv and dense weights
//     kaiming_uniform(a=√5), i.e. U(±1/√fan_in); biases U(±1/√fan_in), with
//     PyTorch's fan_in (Conv3d: Cin·k³; ConvTranspose3d: Cout·k³, its weight's
//     dim 1; Linear: in).
//   - InitGlorot, Keras' defaults: glorot_uniform U(±√(6/(fan_in+fan_out)))
//     with Keras' fans (Conv3D: k³·Cin and k³·Cout; Conv3DTranspose kernel
//     (k,k,k,out,in): k³·out and k³·in; Dense: in and out); biases 0.
//
// BatchNorm γ = 1, β = 0, running mean 0, running variance 1 in both.
package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/tensor"
)

// Init selects a weight initialisation rule.
type Init int

const (
	InitTorch  Init = iota // PyTorch defaults (kaiming_uniform a=√5)
	InitGlorot             // Keras defaults (glorot_uniform, zero bias)
)

// Builder creates layers, registering their parameters, statistics and
// RNGs in State under "prefix.name" and drawing initial values from a
// seeded generator in creation order.
type Builder struct {
	State *State
	Init  Init
	// BNMomentum and BNEps are given to new BatchNorm layers.
	BNMomentum, BNEps float32
	rng               *rand.Rand
}

// NewBuilder returns a builder with a fresh State; seed fixes the weights.
func NewBuilder(init Init, seed uint64) *Builder {
	b := &Builder{State: &State{}, Init: init, BNMomentum: 0.1, BNEps: 1e-5,
		rng: rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc908))}
	return b
}

func (b *Builder) uniform(bound float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32((2*b.rng.Float64() - 1) * bound)
	}
	return t
}

func (b *Builder) param(name string, t *tensor.Tensor) *autodiff.Var {
	v := autodiff.NewParam(name, t)
	b.State.AddParam(v)
	return v
}

// weightAndBias draws a weight of shape and (if bias) a bias of n entries
// given PyTorch's fan_in and Keras' fan_in/fan_out.
func (b *Builder) weightAndBias(name string, shape []int, n int, bias bool, torchFanIn, kerasIn, kerasOut int) (*autodiff.Var, *autodiff.Var) {
	var w, bb *tensor.Tensor
	switch b.Init {
	case InitGlorot:
		w = b.uniform(math.Sqrt(6/float64(kerasIn+kerasOut)), shape...)
		bb = tensor.New(n)
	default:
		bound := 1 / math.Sqrt(float64(torchFanIn))
		w = b.uniform(bound, shape...)
		bb = b.uniform(bound, n)
	}
	wv := b.param(name+".w", w)
	var bv *autodiff.Var
	if bias {
		bv = b.param(name+".b", bb)
	}
	return wv, bv
}

// Conv3D is a 3-D convolution layer, weight [k,k,k,Cin,Cout] (DHWIO).
type Conv3D struct {
	W, B *autodiff.Var // B nil without bias
	Spec autodiff.ConvSpec
}

// NewConv3D creates a k×k×k convolution from cin to cout channels.
func (b *Builder) NewConv3D(name string, k, cin, cout int, bias bool, spec autodiff.ConvSpec) *Conv3D {
	k3 := k * k * k
	w, bb := b.weightAndBias(name, []int{k, k, k, cin, cout}, cout, bias, cin*k3, k3*cin, k3*cout)
	return &Conv3D{W: w, B: bb, Spec: spec}
}

// Forward applies the convolution.
func (c *Conv3D) Forward(tp *autodiff.Tape, x *autodiff.Var) *autodiff.Var {
	return tp.Conv3D(x, c.W, c.B, c.Spec)
}

// ConvTranspose3D is a transposed convolution, weight [k,k,k,Cout,Cin].
type ConvTranspose3D struct {
	W, B *autodiff.Var
	Spec autodiff.ConvSpec
}

// NewConvTranspose3D creates a k×k×k transposed convolution with stride s.
func (b *Builder) NewConvTranspose3D(name string, k, s, cin, cout int, bias bool) *ConvTranspose3D {
	k3 := k * k * k
	w, bb := b.weightAndBias(name, []int{k, k, k, cout, cin}, cout, bias, cout*k3, k3*cout, k3*cin)
	return &ConvTranspose3D{W: w, B: bb, Spec: autodiff.Valid3D(s)}
}

// Forward applies the transposed convolution.
func (c *ConvTranspose3D) Forward(tp *autodiff.Tape, x *autodiff.Var) *autodiff.Var {
	return tp.ConvTranspose3D(x, c.W, c.B, c.Spec)
}

// Dense is a fully connected layer y = x·W + b, W [in,out].
type Dense struct{ W, B *autodiff.Var }

// NewDense creates a dense layer.
func (b *Builder) NewDense(name string, in, out int, bias bool) *Dense {
	w, bb := b.weightAndBias(name, []int{in, out}, out, bias, in, in, out)
	return &Dense{W: w, B: bb}
}

// Forward applies the layer to x [N,in].
func (d *Dense) Forward(tp *autodiff.Tape, x *autodiff.Var) *autodiff.Var {
	return tp.Dense(x, d.W, d.B)
}

// BatchNorm is a batch normalisation layer over the last (channel) axis.
type BatchNorm struct {
	Gamma, Beta *autodiff.Var
	St          *autodiff.BNState
}

// NewBatchNorm creates a BatchNorm over c channels.
func (b *Builder) NewBatchNorm(name string, c int) *BatchNorm {
	bn := &BatchNorm{
		Gamma: b.param(name+".gamma", tensor.Full(1, c)),
		Beta:  b.param(name+".beta", tensor.New(c)),
		St:    autodiff.NewBNState(c, b.BNMomentum, b.BNEps),
	}
	b.State.BNs = append(b.State.BNs, NamedBN{name, bn.St})
	return bn
}

// Forward normalises x with batch statistics (train) or running ones.
func (bn *BatchNorm) Forward(tp *autodiff.Tape, x *autodiff.Var, train bool) *autodiff.Var {
	return tp.BatchNorm(x, bn.Gamma, bn.Beta, bn.St, train)
}

// ForwardReLU is ReLU(Forward(x)) as one fused op (identical results).
func (bn *BatchNorm) ForwardReLU(tp *autodiff.Tape, x *autodiff.Var, train bool) *autodiff.Var {
	return tp.BatchNormReLU(x, bn.Gamma, bn.Beta, bn.St, train)
}

// ForwardReLUDropout is DropoutInPlace(ForwardReLU(x), p, train, rng) as
// one fused op (identical results; autodiff.Tape.BatchNormReLUDropout).
func (bn *BatchNorm) ForwardReLUDropout(tp *autodiff.Tape, x *autodiff.Var, train bool, p float32, rng *autodiff.RNG) *autodiff.Var {
	return tp.BatchNormReLUDropout(x, bn.Gamma, bn.Beta, bn.St, train, p, rng)
}

// NewRNG registers a dropout RNG under name, seeded from seed and name.
func (b *Builder) NewRNG(name string, seed uint64) *autodiff.RNG {
	h := seed
	for _, c := range []byte(name) {
		h = h*1099511628211 + uint64(c)
	}
	r := autodiff.NewRNG(h)
	b.State.RNGs = append(b.State.RNGs, NamedRNG{name, r})
	return r
}

// NamedBN is a BatchNorm's running statistics under its layer name.
type NamedBN struct {
	Name string
	St   *autodiff.BNState
}

// NamedRNG is a dropout RNG under its name.
type NamedRNG struct {
	Name string
	RNG  *autodiff.RNG
}

// State is a model's saveable state: parameters (in creation order),
// BatchNorm running statistics and RNG states.
type State struct {
	Params []*autodiff.Var
	BNs    []NamedBN
	RNGs   []NamedRNG
}

// AddParam registers a parameter; names must be unique.
func (s *State) AddParam(v *autodiff.Var) {
	for _, p := range s.Params {
		if p.Name == v.Name {
			panic(fmt.Sprintf("nn: duplicate parameter name %q", v.Name))
		}
	}
	s.Params = append(s.Params, v)
}

// ParamMap returns the parameters by name.
func (s *State) ParamMap() map[string]*autodiff.Var {
	m := make(map[string]*autodiff.Var, len(s.Params))
	for _, p := range s.Params {
		m[p.Name] = p
	}
	return m
}

// NumParams returns the number of trainable scalars.
func (s *State) NumParams() int {
	n := 0
	for _, p := range s.Params {
		n += p.Value.Len()
	}
	return n
}

// Records returns the state as file records: "param/NAME" tensors,
// "bn/NAME/running_mean" and "bn/NAME/running_var" tensors, and
// "rng/NAME" = [seed, counter] (as int64 bit patterns). Tensors are shared,
// not copied.
func (s *State) Records() []tensor.Record {
	var r []tensor.Record
	for _, p := range s.Params {
		r = append(r, tensor.Record{Name: "param/" + p.Name, Tensor: p.Value})
	}
	for _, b := range s.BNs {
		r = append(r, tensor.Record{Name: "bn/" + b.Name + "/running_mean", Tensor: b.St.RunMean},
			tensor.Record{Name: "bn/" + b.Name + "/running_var", Tensor: b.St.RunVar})
	}
	for _, g := range s.RNGs {
		r = append(r, tensor.Record{Name: "rng/" + g.Name, Ints: []int64{int64(g.RNG.Seed), int64(g.RNG.Counter)}})
	}
	return r
}

// Load copies values from recs (e.g. read by tensor.LoadFile(file)) into
// the state. Every parameter, statistic and RNG must be present with the
// right shape; records with other prefixes (optimizer state…) are ignored.
func (s *State) Load(recs []tensor.Record, file string) error {
	byName := make(map[string]tensor.Record, len(recs))
	for _, r := range recs {
		byName[r.Name] = r
	}
	want := func(name string, dst *tensor.Tensor) error {
		r, ok := byName[name]
		if !ok || r.Tensor == nil {
			return errs.Input(file, "missing tensor %q", name)
		}
		if !tensor.SameShape(r.Tensor.Shape, dst.Shape) {
			return errs.Input(file, "tensor %q has shape %v, model expects %v", name, r.Tensor.Shape, dst.Shape)
		}
		copy(dst.Data, r.Tensor.Data)
		return nil
	}
	for _, p := range s.Params {
		if err := want("param/"+p.Name, p.Value); err != nil {
			return err
		}
	}
	for _, b := range s.BNs {
		if err := want("bn/"+b.Name+"/running_mean", b.St.RunMean); err != nil {
			return err
		}
		if err := want("bn/"+b.Name+"/running_var", b.St.RunVar); err != nil {
			return err
		}
	}
	for _, g := range s.RNGs {
		r, ok := byName["rng/"+g.Name]
		if !ok || len(r.Ints) != 2 {
			return errs.Input(file, "missing or malformed RNG state %q", "rng/"+g.Name)
		}
		g.RNG.Seed, g.RNG.Counter = uint64(r.Ints[0]), uint64(r.Ints[1])
	}
	return nil
}

// ZeroGrad zeroes every parameter's gradient.
func (s *State) ZeroGrad() {
	for _, p := range s.Params {
		p.ZeroGrad()
	}
}

// Same returns the stride-1 'same' convolution spec (3×3×3 convs of the
// U-Net).
func Same() autodiff.ConvSpec { return autodiff.Same3D(1) }

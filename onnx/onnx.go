// Package onnx exports a trained fess U-Net's inference graph as an ONNX
// model (opset 17, IR version 8), for onnxruntime, MONAI-style pipelines
// and other ONNX consumers.
//
// Graph interface, in the axis order of MONAI and PyTorch:
//
//	input  "input"  float32 [N, Cin, X, Y, Z]
//	output "output" float32 [N, K, X, Y, Z]  probabilities (Sigmoid per
//	                                          channel, or Softmax over axis 1)
//	output "logits" float32 [N, K, X, Y, Z]  the head's values before that
//
// X, Y, Z are the voxel axes of the NIfTI data array as nibabel returns it
// (x fastest-varying on disk). fess itself computes channels-last
// [N, D, H, W, C] with D = z, H = y, W = x, so a fess tensor t maps to the
// ONNX one as t.transpose(0, 4, 3, 2, 1). The batch and the three spatial
// axes are symbolic ("N", "X", "Y", "Z"); like fess, the network needs each
// spatial size to be a multiple of 2^Levels.
//
// Nodes mirror model.UNet3D's inference forward (train=false):
//
//	block:       Conv 3×3×3 pads 1 (BatchNorm folded in) → Relu
//	encoder i:   block ×1 (seed) or ×2 (unet3d), kept as skip i → MaxPool 2
//	bottleneck:  block, block
//	decoder i:   ConvTranspose 2×2×2 stride 2 (its BatchNorm, if any,
//	             folded in) → Concat([up, skip i], axis 1) → block, block
//	head:        Conv 1×1×1 → "logits" → Sigmoid or Softmax(axis 1) → "output"
//
// Every BatchNorm uses its running statistics, as fess does in inference, and
// is folded into the preceding convolution's weights and bias per output
// channel: s = γ/√(running_var + eps), W' = W·s, b' = (b − running_mean)·s + β
// (computed in float64). Dropout is the identity in inference and has no node.
// Weights are permuted from fess's layouts: Conv [kz,ky,kx,Cin,Cout] to
// ONNX's [Cout,Cin,kx,ky,kz], ConvTranspose [kz,ky,kx,Cout,Cin] to
// [Cin,Cout,kx,ky,kz] (both a reversal of the five axes).
//
// Initializers are named after the fess layers they come from, e.g.
// "enc0.0.conv_bn.w" (enc0.0.conv.w with enc0.0.bn folded in),
// "dec1.up_bn.b", "final.w".
//
// The model's metadata_props hold every entry of the meta map given to
// Write or Encode; producer_name is "fess", and producer_version is
// meta["fess_version"] when that is set.
package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/model"
)

const (
	// Opset is the ONNX default-domain operator set version written.
	Opset = 17
	// IRVersion is the ONNX IR version that goes with Opset 17.
	IRVersion = 8
)

// Write encodes m's inference graph (see Encode) and writes it to path
// atomically: a failed or interrupted write leaves any old file in place.
func Write(path string, m *model.UNet3D, meta map[string]string) error {
	b, err := Encode(m, meta)
	if err != nil {
		return err
	}
	return atomicio.WriteFile(path, b, 0o644)
}

// Encode returns m's inference graph as a serialised ONNX ModelProto, with
// meta's entries as metadata_props.
func Encode(m *model.UNet3D, meta map[string]string) ([]byte, error) {
	return encode(m, meta, options{})
}

// options are encoding choices kept for tests.
type options struct {
	// keepBN writes BatchNormalization nodes instead of folding each
	// BatchNorm into its convolution.
	keepBN bool
}

// builder accumulates the graph's nodes and initializers while walking the
// model's layers by their parameter names.
type builder struct {
	opt    options
	params map[string]*autodiff.Var
	bns    map[string]*autodiff.BNState
	used   map[string]bool
	nodes  []pb
	inits  []pb
}

func encode(m *model.UNet3D, meta map[string]string, opt options) (out []byte, err error) {
	if m == nil {
		return nil, fmt.Errorf("onnx: nil model")
	}
	cfg := m.Cfg
	st := m.State()
	b := &builder{opt: opt, params: st.ParamMap(), bns: map[string]*autodiff.BNState{}, used: map[string]bool{}}
	for _, nb := range st.BNs {
		b.bns[nb.Name] = nb.St
	}
	defer func() {
		// A layer whose parameters do not have the shapes the walk expects
		// is reported, not a crash.
		if r := recover(); r != nil {
			if e, ok := r.(buildError); ok {
				out, err = nil, e
				return
			}
			panic(r)
		}
	}()

	h := "input"
	skips := make([]string, cfg.Levels)
	for i := 0; i < cfg.Levels; i++ {
		n := 0
		for j := 0; ; j++ {
			name := fmt.Sprintf("enc%d.%d", i, j)
			if _, ok := b.params[name+".conv.w"]; !ok {
				break
			}
			h = b.block(name, h)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("onnx: model has no encoder block enc%d.0", i)
		}
		skips[i] = h
		pool := fmt.Sprintf("enc%d.pool", i)
		b.node("MaxPool", pool, []string{h}, []string{pool},
			attrIntList("kernel_shape", 2, 2, 2), attrIntList("strides", 2, 2, 2))
		h = pool
	}
	h = b.block("bott.0", h)
	h = b.block("bott.1", h)
	for i := cfg.Levels - 1; i >= 0; i-- {
		name := fmt.Sprintf("dec%d", i)
		up := b.upConv(name, h)
		cat := name + ".concat"
		b.node("Concat", cat, []string{up, skips[i]}, []string{cat}, attrInt("axis", 1))
		h = b.block(name+".0", cat)
		h = b.block(name+".1", h)
	}
	w, bias := b.param("final.w"), b.param("final.b")
	ws := w.Value.Shape
	if len(ws) != 5 || ws[0] != 1 || ws[1] != 1 || ws[2] != 1 || ws[4] != cfg.OutChannels {
		return nil, fmt.Errorf("onnx: final.w has shape %v, want [1,1,1,Cin,%d]", ws, cfg.OutChannels)
	}
	b.conv("final", h, "logits", w.Value.Data, ws, bias.Value.Data, nil)
	if cfg.Softmax {
		b.node("Softmax", "softmax", []string{"logits"}, []string{"output"}, attrInt("axis", 1))
	} else {
		b.node("Sigmoid", "sigmoid", []string{"logits"}, []string{"output"})
	}
	for _, p := range st.Params {
		if !b.used[p.Name] {
			return nil, fmt.Errorf("onnx: parameter %s is not part of the exported graph (unknown network layout)", p.Name)
		}
	}

	spatial := []dim{{param: "X"}, {param: "Y"}, {param: "Z"}}
	io := func(name string, c int) pb {
		return valueInfo(name, append([]dim{{param: "N"}, {value: c}}, spatial...))
	}
	var g pb
	for _, n := range b.nodes {
		g.msg(graphNode, n)
	}
	g.str(graphName, "fess_unet3d")
	for _, t := range b.inits {
		g.msg(graphInitializer, t)
	}
	g.str(graphDocString, "fess 3-D U-Net inference graph; tensors N×C×X×Y×Z with X, Y, Z the NIfTI voxel axes (nibabel order)")
	g.msg(graphInput, io("input", cfg.InChannels))
	g.msg(graphOutput, io("output", cfg.OutChannels))
	g.msg(graphOutput, io("logits", cfg.OutChannels))

	var mp pb
	mp.int64(modelIRVersion, IRVersion)
	mp.str(modelProducerName, "fess")
	if v := meta["fess_version"]; v != "" {
		mp.str(modelProducerVersion, v)
	}
	mp.str(modelDocString, "3-D U-Net segmentation network exported by fess")
	mp.msg(modelGraph, g)
	var opset pb
	opset.str(opsetDomain, "")
	opset.int64(opsetVersion, Opset)
	mp.msg(modelOpsetImport, opset)
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var e pb
		e.str(stringEntryKey, k)
		e.str(stringEntryValue, meta[k])
		mp.msg(modelMetadataProps, e)
	}
	return mp, nil
}

type buildError struct{ error }

func fail(format string, a ...any) { panic(buildError{fmt.Errorf("onnx: "+format, a...)}) }

func (b *builder) param(name string) *autodiff.Var {
	p, ok := b.params[name]
	if !ok {
		fail("model has no parameter %s", name)
	}
	b.used[name] = true
	return p
}

func (b *builder) hasParam(name string) bool { _, ok := b.params[name]; return ok }

func (b *builder) node(op, name string, in, out []string, attrs ...pb) {
	var n pb
	for _, s := range in {
		n.str(nodeInput, s)
	}
	for _, s := range out {
		n.str(nodeOutput, s)
	}
	n.str(nodeName, name)
	n.str(nodeOpType, op)
	for _, a := range attrs {
		n.msg(nodeAttribute, a)
	}
	b.nodes = append(b.nodes, n)
}

func (b *builder) init(name string, dims []int, data []float32) string {
	b.inits = append(b.inits, floatTensor(name, dims, data))
	return name
}

// bnAffine is a BatchNorm's inference transform y = x·scale + shift per
// channel, from its parameters and running statistics.
type bnAffine struct {
	name                    string
	gamma, beta, mean, vari []float32
	eps                     float32
}

func (b *builder) batchNorm(name string, c int) *bnAffine {
	st, ok := b.bns[name]
	if !ok {
		fail("model has no BatchNorm statistics for %s", name)
	}
	bn := &bnAffine{name: name, gamma: b.param(name + ".gamma").Value.Data, beta: b.param(name + ".beta").Value.Data,
		mean: st.RunMean.Data, vari: st.RunVar.Data, eps: st.Eps}
	if len(bn.gamma) != c || len(bn.beta) != c || len(bn.mean) != c || len(bn.vari) != c {
		fail("BatchNorm %s does not have %d channels", name, c)
	}
	return bn
}

// fold returns the per-channel scale and shift.
func (bn *bnAffine) fold() (scale, shift []float64) {
	scale = make([]float64, len(bn.gamma))
	shift = make([]float64, len(bn.gamma))
	for j := range bn.gamma {
		s := float64(bn.gamma[j]) / math.Sqrt(float64(bn.vari[j])+float64(bn.eps))
		scale[j] = s
		shift[j] = float64(bn.beta[j]) - float64(bn.mean[j])*s
	}
	return scale, shift
}

// bnNode writes a BatchNormalization node (keepBN) from x to out.
func (b *builder) bnNode(bn *bnAffine, x, out string) {
	c := len(bn.gamma)
	in := []string{x,
		b.init(bn.name+".gamma", []int{c}, bn.gamma),
		b.init(bn.name+".beta", []int{c}, bn.beta),
		b.init(bn.name+".running_mean", []int{c}, bn.mean),
		b.init(bn.name+".running_var", []int{c}, bn.vari)}
	b.node("BatchNormalization", bn.name, in, []string{out}, attrFloat("epsilon", bn.eps))
}

// reverse5 permutes a 5-D row-major array to its axes in reverse order
// (fess's [kz,ky,kx,a,b] weights to ONNX's [b,a,kx,ky,kz]); it returns the
// new shape and data.
func reverse5(shape []int, data []float32) ([]int, []float32) {
	if len(shape) != 5 {
		fail("weight shape %v is not 5-D", shape)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		fail("weight shape %v holds %d values, not %d", shape, n, len(data))
	}
	d0, d1, d2, d3, d4 := shape[0], shape[1], shape[2], shape[3], shape[4]
	out := make([]float32, n)
	for i0 := 0; i0 < d0; i0++ {
		for i1 := 0; i1 < d1; i1++ {
			for i2 := 0; i2 < d2; i2++ {
				for i3 := 0; i3 < d3; i3++ {
					src := (((i0*d1+i1)*d2+i2)*d3 + i3) * d4
					for i4 := 0; i4 < d4; i4++ {
						out[(((i4*d3+i3)*d2+i2)*d1+i1)*d0+i0] = data[src+i4]
					}
				}
			}
		}
	}
	return []int{d4, d3, d2, d1, d0}, out
}

// conv writes a Conv node from x to out, with fess weight w [kz,ky,kx,Cin,
// Cout] and bias, and bn (nil: none) folded in when not keepBN. 'same'
// padding for odd kernels at stride 1 is (k−1)/2 on both sides.
func (b *builder) conv(name, x, out string, w []float32, ws []int, bias []float32, bn *bnAffine) {
	co := ws[4]
	if len(bias) != co {
		fail("%s bias has %d values, want %d", name, len(bias), co)
	}
	if ws[0]%2 == 0 || ws[1]%2 == 0 || ws[2]%2 == 0 {
		fail("%s kernel %v is not odd", name, ws[:3])
	}
	wname, bname := name+".w", name+".b"
	w, bias = slices.Clone(w), slices.Clone(bias)
	if bn != nil && !b.opt.keepBN {
		scale, shift := bn.fold()
		for i := range w {
			w[i] = float32(float64(w[i]) * scale[i%co])
		}
		for j := range bias {
			bias[j] = float32(float64(bias[j])*scale[j] + shift[j])
		}
		wname, bname = name+"_bn.w", name+"_bn.b"
	}
	oshape, ow := reverse5(ws, w)
	convOut := out
	if bn != nil && b.opt.keepBN {
		convOut = name
	}
	// ONNX orders kernel_shape and pads by its spatial axes x, y, z.
	kx, ky, kz := int64(ws[2]), int64(ws[1]), int64(ws[0])
	px, py, pz := (kx-1)/2, (ky-1)/2, (kz-1)/2
	b.node("Conv", name, []string{x, b.init(wname, oshape, ow), b.init(bname, []int{co}, bias)}, []string{convOut},
		attrIntList("kernel_shape", kx, ky, kz),
		attrIntList("pads", px, py, pz, px, py, pz),
		attrIntList("strides", 1, 1, 1))
	if bn != nil && b.opt.keepBN {
		b.bnNode(bn, convOut, out)
	}
}

// block writes conv → BatchNorm → ReLU for the fess block named name
// (e.g. "enc0.0") and returns its output's name (name itself).
func (b *builder) block(name, x string) string {
	w, bias := b.param(name+".conv.w"), b.param(name+".conv.b")
	ws := w.Value.Shape
	if len(ws) != 5 {
		fail("%s.conv.w has shape %v, want 5-D", name, ws)
	}
	bn := b.batchNorm(name+".bn", ws[4])
	pre := name + ".conv_bn"
	b.conv(name+".conv", x, pre, w.Value.Data, ws, bias.Value.Data, bn)
	b.node("Relu", name+".relu", []string{pre}, []string{name})
	return name
}

// upConv writes decoder level name's transposed conv (kernel 2, stride 2),
// with its BatchNorm (name.upbn, absent with NoUpBN) folded in when not
// keepBN, and returns its output's name.
func (b *builder) upConv(name, x string) string {
	w, bias := b.param(name+".up.w"), b.param(name+".up.b")
	ws := w.Value.Shape
	if len(ws) != 5 || ws[0] != 2 || ws[1] != 2 || ws[2] != 2 {
		fail("%s.up.w has shape %v, want [2,2,2,Cout,Cin]", name, ws)
	}
	co := ws[3]
	wd, bd := slices.Clone(w.Value.Data), slices.Clone(bias.Value.Data)
	if len(bd) != co {
		fail("%s.up.b has %d values, want %d", name, len(bd), co)
	}
	var bn *bnAffine
	if b.hasParam(name + ".upbn.gamma") {
		bn = b.batchNorm(name+".upbn", co)
	}
	out := name + ".up"
	upOut := out
	wname, bname := name+".up.w", name+".up.b"
	if bn != nil && !b.opt.keepBN {
		scale, shift := bn.fold()
		ci := ws[4]
		for i := range wd {
			wd[i] = float32(float64(wd[i]) * scale[(i/ci)%co])
		}
		for j := range bd {
			bd[j] = float32(float64(bd[j])*scale[j] + shift[j])
		}
		wname, bname = name+".up_bn.w", name+".up_bn.b"
		out = name + ".up_bn"
		upOut = out
	} else if bn != nil {
		out = name + ".up_bn"
	}
	oshape, ow := reverse5(ws, wd)
	b.node("ConvTranspose", name+".up", []string{x, b.init(wname, oshape, ow), b.init(bname, []int{co}, bd)}, []string{upOut},
		attrIntList("kernel_shape", 2, 2, 2), attrIntList("strides", 2, 2, 2))
	if bn != nil && b.opt.keepBN {
		b.bnNode(bn, upOut, out)
	}
	return out
}

// Package model builds the 3-D U-Net of docs/method.md on the autodiff engine.
//
// Input [N,S,S,S,Cin] (channels-last; Cin = InChannels, e.g. 4 for the
// BraTS modalities), output per-voxel probabilities [N,S,S,S,K] (K =
// OutChannels) and the bottleneck feature map [N,S/2^L,S/2^L,S/2^L,Cb].
// The K output channels are read one of two ways:
//
//   - sigmoid (the default): each channel is an independent region
//     probability, e.g. K = 3 for the BraTS regions WT/TC/ET as MONAI and
//     nnU-Net's region-based training use them; K = 1 is the paper's
//     single foreground probability.
//   - Softmax: the channels are mutually exclusive classes, channel 0 the
//     background (e.g. abdominal organs), and the head's logits go through
//     a softmax over the channel axis, so the K values of a voxel sum to 1.
//
// Structure, with block = Conv3d 3×3×3 'same' (bias) → BatchNorm → ReLU →
// Dropout:
//
//	encoder level i (i = 0..L−1): block(→F·2^i) [×2 for unet3d, ×1 for seed],
//	    kept as skip i, then MaxPool 2
//	bottleneck: block(→Cb), block(Cb→Cb)        Cb = F·2^L (unet3d), 1024 (seed)
//	decoder level i (i = L−1..0): ConvTranspose3d 2×2×2 stride 2 (bias,
//	    →F·2^i) → BatchNorm → concat [upsampled, skip i] on channels →
//	    block(2F·2^i → F·2^i), block(F·2^i → F·2^i)
//	head: Conv3d 1×1×1 (→K) → sigmoid per channel, or softmax over channels
//
// The bottleneck returned is the second bottleneck block's output (after
// its ReLU and dropout), i.e. what the decoder consumes.
//
// Presets:
//   - "unet3d": the standard double-conv encoder; PyTorch initialisation and
//     BatchNorm (momentum 0.1, eps 1e-5). Defaults F=8, L=3, S=32, dropout 0.
//   - "seed": the reference's effective network: S=64, F=32, L=4, Cb=1024,
//     dropout 0.2, ONE connected conv per encoder level (the reference built
//     a second conv per encoder block but returned the first; the unused
//     conv has no effect on the output and is not created here), Keras
//     initialisation (glorot_uniform, zero bias) and Keras BatchNorm
//     (momentum 0.99 in Keras terms = 0.01 here, eps 1e-3). The reference's
//     L2 0.01 regulariser was never added to its loss, so it is not part of
//     the model (weight decay is an optimiser option).
package model

import (
	"fmt"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/nn"
)

// Config selects and sizes the network. Zero fields take the preset's
// defaults; set Dropout < 0 for an explicit 0 with the seed preset.
type Config struct {
	Preset             string  // "unet3d" (default) or "seed"
	Filters            int     // F, channels of the first level
	Levels             int     // L, number of pooled levels
	Dropout            float32 // dropout probability after every block
	InputSize          int     // S; must be divisible by 2^L
	InChannels         int     // default 1
	BottleneckChannels int     // Cb; default F·2^L (unet3d) or 1024 (seed)
	Seed               uint64  // weight initialisation and dropout seed
	// NoUpBN drops the BatchNorm after each up-sampling transposed conv
	// (the decoder then concatenates the up-conv output directly). The
	// unet3d preset has that BatchNorm; the PyTorch timing peer
	// (bench/peer/torch_unet3d.py) has not, so `fess bench` sets NoUpBN to run
	// exactly the peer's network. Parameter names are unchanged otherwise.
	NoUpBN bool `json:",omitempty"`
	// OutChannels is K, the number of output channels (default 1; 0, as
	// in configs written before the field existed, means 1). With Softmax
	// it counts the background class as channel 0, so it must be ≥ 2.
	OutChannels int `json:",omitempty"`
	// Softmax makes the outputs K exclusive classes (softmax over the
	// channel axis) instead of K independent sigmoid regions.
	Softmax bool `json:",omitempty"`
}

// block is conv → BN → ReLU → dropout.
type block struct {
	conv *nn.Conv3D
	bn   *nn.BatchNorm
	rng  *autodiff.RNG
}

type level struct {
	blocks []block
	up     *nn.ConvTranspose3D
	upbn   *nn.BatchNorm
}

// UNet3D is the network; build it with New.
type UNet3D struct {
	Cfg   Config
	enc   []level
	bott  []block
	dec   []level // dec[i] is decoder level i (applied for i = L−1..0)
	final *nn.Conv3D
	state *nn.State
	drop  float32
}

// Resolve fills a Config's defaults from its preset and validates it.
func Resolve(cfg Config) (Config, error) {
	if cfg.Preset == "" {
		cfg.Preset = "unet3d"
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	switch cfg.Preset {
	case "unet3d":
		def(&cfg.Filters, 8)
		def(&cfg.Levels, 3)
		def(&cfg.InputSize, 32)
	case "seed":
		def(&cfg.Filters, 32)
		def(&cfg.Levels, 4)
		def(&cfg.InputSize, 64)
		def(&cfg.BottleneckChannels, 1024)
		if cfg.Dropout == 0 {
			cfg.Dropout = 0.2
		}
	default:
		return cfg, errs.Usage("model: unknown preset %q (want unet3d or seed)", cfg.Preset)
	}
	if cfg.Dropout < 0 {
		cfg.Dropout = 0
	}
	def(&cfg.InChannels, 1)
	def(&cfg.OutChannels, 1)
	def(&cfg.BottleneckChannels, cfg.Filters<<cfg.Levels)
	if cfg.Filters < 1 || cfg.Levels < 1 || cfg.Levels > 8 || cfg.Dropout >= 1 {
		return cfg, errs.Usage("model: need filters ≥ 1, 1 ≤ levels ≤ 8, dropout < 1 (got %d, %d, %g)",
			cfg.Filters, cfg.Levels, cfg.Dropout)
	}
	if cfg.InChannels < 1 || cfg.OutChannels < 1 {
		return cfg, errs.Usage("model: need in and out channels ≥ 1 (got %d, %d)", cfg.InChannels, cfg.OutChannels)
	}
	if cfg.Softmax && cfg.OutChannels < 2 {
		return cfg, errs.Usage("model: softmax outputs need out channels ≥ 2, the background included (got %d)", cfg.OutChannels)
	}
	if cfg.InputSize%(1<<cfg.Levels) != 0 || cfg.InputSize < 1<<cfg.Levels {
		return cfg, errs.Usage("model: input size %d must be a positive multiple of 2^levels = %d",
			cfg.InputSize, 1<<cfg.Levels)
	}
	return cfg, nil
}

// New builds a UNet3D with initial weights drawn from cfg.Seed.
func New(cfg Config) (*UNet3D, error) {
	cfg, err := Resolve(cfg)
	if err != nil {
		return nil, err
	}
	init := nn.InitTorch
	b := nn.NewBuilder(init, cfg.Seed)
	if cfg.Preset == "seed" {
		b.Init = nn.InitGlorot
		b.BNMomentum, b.BNEps = 0.01, 1e-3
	}
	m := &UNet3D{Cfg: cfg, state: b.State, drop: cfg.Dropout}
	mk := func(name string, cin, cout int) block {
		return block{
			conv: b.NewConv3D(name+".conv", 3, cin, cout, true, autodiff.Same3D(1)),
			bn:   b.NewBatchNorm(name+".bn", cout),
			rng:  b.NewRNG(name+".dropout", cfg.Seed),
		}
	}
	perLevel := 2
	if cfg.Preset == "seed" {
		perLevel = 1
	}
	c := cfg.InChannels
	for i := 0; i < cfg.Levels; i++ {
		co := cfg.Filters << i
		var l level
		for j := 0; j < perLevel; j++ {
			l.blocks = append(l.blocks, mk(fmt.Sprintf("enc%d.%d", i, j), c, co))
			c = co
		}
		m.enc = append(m.enc, l)
	}
	cb := cfg.BottleneckChannels
	m.bott = []block{mk("bott.0", c, cb), mk("bott.1", cb, cb)}
	c = cb
	m.dec = make([]level, cfg.Levels)
	for i := cfg.Levels - 1; i >= 0; i-- {
		co := cfg.Filters << i
		name := fmt.Sprintf("dec%d", i)
		l := level{up: b.NewConvTranspose3D(name+".up", 2, 2, c, co, true)}
		if !cfg.NoUpBN {
			l.upbn = b.NewBatchNorm(name+".upbn", co)
		}
		l.blocks = []block{mk(name+".0", 2*co, co), mk(name+".1", co, co)}
		m.dec[i] = l
		c = co
	}
	m.final = b.NewConv3D("final", 1, c, cfg.OutChannels, true, autodiff.Valid3D(1))
	return m, nil
}

// recomputeMinBytes is the smallest first-level conv output that
// ForwardLogits releases and recomputes instead of keeping (32 MiB: the
// seed network's first two levels at batch 5, 168 and 42 MB; not the
// smaller configurations'; the arena tests set 0, to cover the
// recomputation on small networks).
var recomputeMinBytes = 32 << 20

// runBlock is conv → BN+ReLU → dropout; it returns the block's output and
// its conv's output. On an arena recording tape (autodiff.NewArenaTape) the
// dropout overwrites the BN+ReLU output (autodiff.DropoutInPlace), the conv
// output goes back to the pool once the BatchNorm's backward (its last
// reader) has run, and the block's input x, when prev marks it as the
// previous block's output, is released after the conv has read it and
// recomputed from that block's conv output when the conv's backward needs
// it (autodiff.Tape.Recompute). When input is set (x is kept for the
// backward anyway: the network's input or a pooled map, and the conv is
// cheap: the first encoder levels), the conv output itself is released and
// recomputed from x when the backward reaches the block.
func (m *UNet3D) runBlock(tp *autodiff.Tape, bl block, x *autodiff.Var, train, prev, input bool) (d, c *autodiff.Var) {
	c = bl.conv.Forward(tp, x)
	if prev {
		tp.Recompute(x, c)
	}
	d = m.blockTail(tp, bl, c, train)
	if input {
		conv := bl.conv
		tp.SetRecomputeOp(c, func(t *autodiff.Tape) *autodiff.Var { return conv.Forward(t, x) })
		tp.Recompute(c, d)
	}
	return d, c
}

// blockTail is a block after its conv (output c): BN + ReLU + dropout, in
// one pass on arena tapes (the ops elsewhere); c goes back to the pool
// once the BatchNorm's backward has run.
func (m *UNet3D) blockTail(tp *autodiff.Tape, bl block, c *autodiff.Var, train bool) *autodiff.Var {
	d := bl.bn.ForwardReLUDropout(tp, c, train, m.drop, bl.rng)
	tp.FreeAfterBackwardOf(c, d)
	tp.Free(c)
	return d
}

// runBlocks runs blocks on h; on a no-grad arena tape each intermediate is
// freed as soon as the next block has read it (never h itself: the caller
// owns it). prev and input are runBlock's for the first block. On an arena
// recording tape the blocks' outputs but the last go back to the pool when
// the backward is done with them (the caller decides for the last). It
// returns the last block's output and the first block's conv output (the
// last reader of h in the backward).
func (m *UNet3D) runBlocks(tp *autodiff.Tape, bls []block, h *autodiff.Var, train, prev, input bool) (out, c0 *autodiff.Var) {
	in := h
	for i, bl := range bls {
		nh, c := m.runBlock(tp, bl, h, train, prev || i > 0, input && i == 0)
		if i == 0 {
			c0 = c
		}
		if h != in {
			tp.Free(h)
			tp.FreeAfterBackward(h)
		}
		h = nh
	}
	return h, c0
}

// Forward runs the network on x [N,D,H,W,Cin]. train selects batch
// statistics (and updates the running ones) and active dropout; tp may be
// nil for a no-grad pass. It returns the probabilities [N,D,H,W,K] (sigmoid
// of each channel's logit, or with Softmax the softmax over the channel
// axis) and the bottleneck.
func (m *UNet3D) Forward(tp *autodiff.Tape, x *autodiff.Var, train bool) (probs, bottleneck *autodiff.Var) {
	logits, bott := m.ForwardLogits(tp, x, train)
	if m.Cfg.Softmax {
		return tp.Softmax(logits, 4), bott
	}
	return tp.Sigmoid(logits), bott
}

// ForwardLogits is Forward without the final sigmoid or softmax (for losses
// on logits): logits [N,D,H,W,K].
func (m *UNet3D) ForwardLogits(tp *autodiff.Tape, x *autodiff.Var, train bool) (logits, bottleneck *autodiff.Var) {
	if err := m.ValidateInput(x.Value.Shape); err != nil {
		panic(err.Error())
	}
	// On a no-grad arena tape (autodiff.NewNoGradArena) every intermediate
	// is freed after its last use (tp.Free; a no-op on other tapes), so the
	// pass holds only the skips and a few live maps at a time. On an arena
	// recording tape (autodiff.NewArenaTape) the step keeps, for its
	// backward, the conv and up-conv outputs (the BatchNorms' inputs) and
	// the pooled maps; every BatchNorm/ReLU/dropout output and every
	// concatenation is released once its forward readers have run and
	// recomputed when the backward reaches its readers, and each kept
	// value goes back to the pool once the backward no longer reads it
	// (tp.Recompute, tp.Release, tp.FreeAfterBackward; no-ops elsewhere).
	skips := make([]*autodiff.Var, m.Cfg.Levels)
	h := x
	for i, l := range m.enc {
		in := h
		var c0 *autodiff.Var
		// the first two levels' first conv recomputed where its output is
		// large: their outputs are the largest kept maps, their convs (from
		// Cin and F channels) the cheapest (about 1 % of a step's FLOPs for
		// the seed network); below recomputeMinBytes (the small
		// configurations) keeping the map costs little memory and the
		// recomputation 1–2 % of the step
		out := h.Value.Len() / h.Value.Shape[4] * (m.Cfg.Filters << i) * 4
		h, c0 = m.runBlocks(tp, l.blocks, h, train, false, i <= 1 && out >= recomputeMinBytes)
		if in != x {
			tp.Free(in)
			tp.FreeAfterBackwardOf(in, c0) // the pooled map: read by this conv's backward last
		}
		tp.FreeAfterBackward(h)
		skips[i] = h
		h = tp.MaxPool3D(h, 2)
	}
	in := h
	h, c0 := m.runBlocks(tp, m.bott, h, train, false, false)
	tp.Free(in)
	tp.FreeAfterBackwardOf(in, c0)
	bott := h
	for i := m.Cfg.Levels - 1; i >= 0; i-- {
		l := m.dec[i]
		u := l.up.Forward(tp, h)
		if h != bott {
			tp.Free(h)
			tp.Recompute(h, u)
		}
		// the up-conv output, recomputed from the up-conv's input when
		// needed: by its BatchNorm's backward, or without that BatchNorm
		// only by the concatenation's recomputation
		up, hin := l.up, h
		tp.SetRecomputeOp(u, func(t *autodiff.Tape) *autodiff.Var {
			hv, done := autodiff.Materialize(hin)
			defer done()
			return up.Forward(t, hv)
		})
		uc := u // the up-conv output
		if l.upbn != nil {
			ub := l.upbn.Forward(tp, u, train)
			tp.FreeAfterBackwardOf(u, ub)
			tp.Free(u)
			u = ub
		}
		// the first conv reads [u, skip] without concatenating them
		// (autodiff.Tape.Conv3DCat)
		b0 := l.blocks[0]
		c0 = tp.Conv3DCat(u, skips[i], b0.conv.W, b0.conv.B, b0.conv.Spec)
		tp.Free(u, skips[i])
		// (without the BatchNorm, u is the up-conv output:) the conv's
		// backward recomputes it
		tp.Release(u)
		// and the skip; its other reader is its own BatchNorm+ReLU's backward
		tp.Recompute(skips[i], skips[i])
		if uc != u {
			// With the up-BatchNorm, the up-conv output is recomputed once,
			// before the conv's backward, which recomputes the BatchNorm's
			// output from it; the BatchNorm's backward, next, reads it too.
			// (Recomputed for the BatchNorm's backward only, it was also
			// recomputed inside the conv's: config s 4 % slower, the same
			// peak pool memory.)
			tp.Recompute(uc, c0)
		}
		d := m.blockTail(tp, b0, c0, train)
		h, _ = m.runBlocks(tp, l.blocks[1:], d, train, true, false)
		if h != d {
			tp.Free(d)
			tp.FreeAfterBackward(d)
		}
		tp.FreeAfterBackward(h)
	}
	out := m.final.Forward(tp, h)
	tp.Free(h)
	tp.Recompute(h, out)
	return out, bott
}

// ValidateInput reports whether a batch of the given shape can go through
// the network: [N,D,H,W,Cin] with N ≥ 1 and D, H, W positive multiples of
// 2^Levels (any such size works, not only InputSize; BatchNorm in training
// mode also needs more than one value per channel at the bottleneck).
func (m *UNet3D) ValidateInput(shape []int) error {
	f := 1 << m.Cfg.Levels
	if len(shape) != 5 || shape[0] < 1 || shape[4] != m.Cfg.InChannels ||
		shape[1] < f || shape[2] < f || shape[3] < f ||
		shape[1]%f != 0 || shape[2]%f != 0 || shape[3]%f != 0 {
		return fmt.Errorf("model: input shape %v, want [N,D,H,W,%d] with D, H, W positive multiples of %d (configured %d³)",
			shape, m.Cfg.InChannels, f, m.Cfg.InputSize)
	}
	return nil
}

// Params returns the trainable parameters in creation order, each named
// (e.g. "enc0.0.conv.w", "dec1.upbn.gamma", "final.b").
func (m *UNet3D) Params() []*autodiff.Var { return m.state.Params }

// State returns the parameters, BatchNorm running statistics and dropout
// RNGs, for saving (State().Records()) and loading (State().Load).
func (m *UNet3D) State() *nn.State { return m.state }

// BottleneckChannels returns Cb.
func (m *UNet3D) BottleneckChannels() int { return m.Cfg.BottleneckChannels }

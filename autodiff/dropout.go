package autodiff

import (
	"unsafe"

	"github.com/fess-seg/fess/internal/kernels"
)

// RNG is a counter-based random source for dropout: the mask of the k-th
// draw is a pure function of (Seed, k, element index), so it does not depend
// on the thread count, and the whole state is two integers that a checkpoint
// can save (Counter) for bit-identical resumption.
type RNG struct {
	Seed    uint64
	Counter uint64 // number of draws taken so far
}

// NewRNG returns a source with the given seed.
func NewRNG(seed uint64) *RNG { return &RNG{Seed: seed} }

// splitmix64 is Steele et al.'s SplitMix64 finaliser (a bijective mixer).
func splitmix64(z uint64) uint64 { return kernels.Splitmix64(z) }

// The mask of a draw with key k: element i is kept when the 24-bit uniform
// number of kernels.DropBits(k, i), bits·2⁻²⁴ in [0, 1), is ≥ p, which is
// bits ≥ kernels.DropThreshold(p); kernels.DropMask applies it (16 elements
// per step on AVX-512).

// Dropout zeroes each element with probability p and scales the rest by
// 1/(1−p) (inverted dropout, as PyTorch and Keras) when train is true;
// otherwise (or with p == 0) it returns x unchanged. Each call with train
// set advances rng.Counter by one.
func (tp *Tape) Dropout(x *Var, p float32, train bool, rng *RNG) *Var {
	if !train || p <= 0 {
		return x
	}
	d := newDropDraw(p, rng)
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	keep := tp.allocBuf(len(xd))
	parOwn(len(xd), 0, func(lo, hi int) {
		k := keep[lo:hi]
		for i := range k {
			k[i] = 1
		}
		kernels.DropMask(k, lo, d.key, d.th, d.s, false) // s where kept, 0 where dropped
		for i := lo; i < hi; i++ {
			od[i] = xd[i] * keep[i]
		}
	})
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		parOwn(len(g), 0, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += g[i] * keep[i]
			}
		})
	}, x)
}

// DropoutInPlace is Dropout that, on an arena tape (NewArenaTape,
// NewNoGradArena), overwrites x's value with the output and returns x
// itself: no second tensor is kept, only (when a backward will run) a
// record of the mask, one bit per element, kept with the tape until Reset. The caller guarantees that nothing else
// reads x's value afterwards, except the backward of the op that computed
// x when it reads x only through its sign, as BatchNormReLU does: the
// output has x's sign where it is kept and is 0 where the gradient is 0.
// Values and gradients are Dropout's, bit for bit. On other tapes it is
// Dropout.
func (tp *Tape) DropoutInPlace(x *Var, p float32, train bool, rng *RNG) *Var {
	if tp == nil || !tp.arena || !train || p <= 0 {
		return tp.Dropout(x, p, train, rng)
	}
	d := newDropDraw(p, rng)
	xd := x.Value.Data
	if !tp.needs(x) {
		parOwn(len(xd), 0, func(lo, hi int) {
			kernels.DropMask(xd[lo:hi], lo, d.key, d.th, d.s, false)
		})
		return x
	}
	bits := dropBits(tp, len(xd))
	dropBlocks(len(xd), func(lo, hi int) { kernels.DropMaskRecord(xd[lo:hi], lo, d.key, d.th, d.s, bits[lo/16:]) })
	d.attach(tp, x, bits)
	return x
}

// dropDraw is one dropout draw: the key of the RNG's next mask, the keep
// threshold and the scale of kept elements.
type dropDraw struct {
	key, th uint64
	s       float32
}

// newDropDraw takes the next draw of rng for probability p (advancing its
// counter, as Dropout does).
func newDropDraw(p float32, rng *RNG) dropDraw {
	key := splitmix64(rng.Seed ^ splitmix64(rng.Counter+0x5851f42d4c957f2d))
	rng.Counter++
	s := 1 / (1 - p)
	if p >= 1 {
		s = 0
	}
	return dropDraw{key: key, th: kernels.DropThreshold(p), s: s}
}

// dropBits returns the mask words for n elements, owned by tp until Reset.
func dropBits(tp *Tape, n int) []uint16 {
	nb := (n + 15) / 16
	return asHalves(tp.allocBufDirty((nb + 1) / 2))[:nb]
}

// dropBlocks runs fn over [0, n) in parallel, split on 16-element blocks
// (one mask word each).
func dropBlocks(n int, fn func(lo, hi int)) {
	nb := (n + 15) / 16
	parOwn(nb, 256, func(lo, hi int) { fn(lo*16, min(hi*16, n)) })
}

// attach makes x's recomputation reapply the recorded mask and records
// the dropout's backward, g·keep, on tp: the in-place dropout of x whose
// mask bits holds.
func (d dropDraw) attach(tp *Tape, x *Var, bits []uint16) {
	n := len(x.Value.Data)
	if prev := x.remat; prev != nil {
		x.remat = func(dst []float32) {
			prev(dst)
			dropBlocks(n, func(lo, hi int) { kernels.DropApply(dst[lo:hi], bits[lo/16:], d.s, false) })
		}
	}
	tp.recs = append(tp.recs, record{out: x, inPlace: true, back: func(g []float32) {
		// Dropout's gx = 0 + g·keep (a fresh zero gradient plus the term)
		dropBlocks(n, func(lo, hi int) { kernels.DropApply(g[lo:hi], bits[lo/16:], d.s, true) })
	}})
}

// asHalves views a float32 buffer's storage as uint16 (twice as many).
func asHalves(b []float32) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), 2*len(b))
}

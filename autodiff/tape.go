// Package autodiff is the engine's reverse-mode automatic differentiation:
// a Tape records each operation's backward closure as the forward pass runs;
// Tape.Backward walks the records in reverse, accumulating gradients.
//
// Ops are methods on *Tape, one file per family (elementwise.go, reduce.go,
// shape.go, linalg.go, conv.go, pool.go, norm.go, dropout.go), each forward
// beside its backward. A nil *Tape is valid everywhere and records nothing:
// that is the no-grad / inference forward (for example the detached second
// pass of a contrastive loss). Values are float32, volumes channels-last
// (NDHWC), convolution weights DHWIO ([kd,kh,kw,Cin,Cout]).
//
// Gradients accumulate (+=) into Var.Grad, so parameter gradients must be
// zeroed between steps (optim.ZeroGrad or Var.ZeroGrad). Intermediate Vars get
// their Grad allocated during Backward.
//
// Compute: Conv3D, ConvTranspose3D, MatMul and Dense do all their
// multiply-adds through internal/kernels.Sgemm (the seam where tuned
// assembly kernels slot in); im2col/col2im, elementwise, BatchNorm and
// reduction loops are spread over tensor.Threads() workers with fixed
// chunking, and every float reduction runs in a fixed order, so results are
// bit-identical run to run for a given thread count. OPS.md lists each op
// with its finite-difference and PyTorch verification.
//
// Usage (one training step):
//
//	w := autodiff.NewParam("w", tensor.New(3, 3, 3, 1, 8))   // DHWIO
//	tp := autodiff.NewTape()
//	x := autodiff.Const(batch)                              // [N,D,H,W,1]
//	y := tp.ReLU(tp.Conv3D(x, w, nil, autodiff.Same3D(1)))
//	loss := tp.Mean(y, nil)                                 // nil axes: all
//	tp.Backward(loss)                                       // w.Grad filled
//	optim.ClipGradNorm(params, 1.0)                         // package optim
//	opt.Step(params)                                        // e.g. optim.NewAdam(1e-5)
//	optim.ZeroGrad(params)
//	tp.Reset()
//
// For repeated steps, NewArenaTape and NewNoGradArena (in place of
// NewTape and the nil tape) take op outputs and intermediate gradients from
// a pool of buffers reused step after step, so a steady-state step
// allocates almost nothing; their Vars must not be used after Reset.
//
// The same forward with a nil tape computes values only:
//
//	var none *autodiff.Tape
//	y := none.ReLU(none.Conv3D(x, w, nil, autodiff.Same3D(1)))
package autodiff

import (
	"fmt"

	"github.com/fess-seg/fess/tensor"
)

// Var is a node of the computation: a value and, when it requires a
// gradient, the gradient of the loss with respect to it.
type Var struct {
	Value *tensor.Tensor
	// Grad has Value's shape; nil until Backward reaches the Var (parameters
	// get it at creation).
	Grad *tensor.Tensor
	// RequiresGrad marks parameters and every result computed from one on a
	// recording tape.
	RequiresGrad bool
	// Name identifies parameters ("enc0.conv1.w"); empty for intermediates.
	Name string
	// arena is the arena tape that computed this Var (nil otherwise): its
	// gradient is drawn from the buffer pool.
	arena *Tape
	// remat, when set, recomputes the value into dst from the op's saved
	// inputs, bit for bit (see Tape.Recompute); freeVal gives the value back
	// to the pool once the producing op's backward has run
	// (Tape.FreeAfterBackward).
	remat   func(dst []float32)
	rematOn func(t *Tape) *Var // remat as an op on a no-grad arena (SetRecomputeOp)
	freeVal bool
	// freeAfter: values that go back to the pool once this Var's producing
	// op's backward has run (Tape.FreeAfterBackwardOf).
	freeAfter []*Var
}

// Const wraps t as a Var that needs no gradient (inputs, targets).
func Const(t *tensor.Tensor) *Var { return &Var{Value: t} }

// NewParam wraps t as a trainable parameter with a zero gradient.
func NewParam(name string, t *tensor.Tensor) *Var {
	return &Var{Value: t, Grad: tensor.ZerosLike(t), RequiresGrad: true, Name: name}
}

// Shape returns the value's shape.
func (v *Var) Shape() []int { return v.Value.Shape }

// Item returns the value of a one-element Var.
func (v *Var) Item() float32 {
	if len(v.Value.Data) != 1 {
		panic(fmt.Sprintf("autodiff: Item of a Var with shape %v", v.Value.Shape))
	}
	return v.Value.Data[0]
}

// ZeroGrad sets the gradient to zero (allocating it if absent).
func (v *Var) ZeroGrad() {
	if v.Grad == nil {
		v.Grad = tensor.ZerosLike(v.Value)
	} else {
		v.Grad.Zero()
	}
}

// Detach returns a Var sharing v's value with no gradient link.
func (v *Var) Detach() *Var { return &Var{Value: v.Value} }

// grad returns v's gradient storage, allocating zeros on first use.
func (v *Var) grad() []float32 {
	if v.Grad == nil {
		if v.arena != nil {
			// the shape, not len(Data): a released value (Tape.Release) has none
			v.Grad = tensor.FromSlice(getBuf(tensor.Numel(v.Value.Shape)), v.Value.Shape...)
		} else {
			v.Grad = tensor.ZerosLike(v.Value)
		}
	}
	return v.Grad.Data
}

// gradFresh returns v's gradient storage and whether this call created it.
// A fresh buffer from the pool is not zeroed: the caller must write every
// element (set instead of add), sparing the zeroing pass and the read of
// the zeros, on the large maps whose gradient has one writer (a
// BatchNorm's input, a conv's input, a concatenation's inputs).
func (v *Var) gradFresh() ([]float32, bool) {
	if v.Grad != nil {
		return v.Grad.Data, false
	}
	if v.arena != nil {
		v.Grad = tensor.FromSlice(getBufDirty(tensor.Numel(v.Value.Shape)), v.Value.Shape...)
	} else {
		v.Grad = tensor.ZerosLike(v.Value)
	}
	return v.Grad.Data, true
}

// parOwn runs fn over [0,n) in parallel for loops whose ranges write only
// their own outputs: in chunks of at least grain iterations (4096 if
// grain <= 0) and about an eighth of a worker's share, handed to workers
// as they free up (tensor.ParallelDynamic). The results are those of
// tensor.Parallel bit for bit.
func parOwn(n, grain int, fn func(lo, hi int)) {
	tensor.ParallelDynamic(n, ownChunk(n, grain), func(_, lo, hi int) { fn(lo, hi) })
}

// ownChunk is parOwn's chunk: at least grain iterations (4096 if grain <=
// 0), about an eighth of a worker's share of n.
func ownChunk(n, grain int) int {
	if grain <= 0 {
		grain = 4096
	}
	return max(grain, n/(8*tensor.Threads()))
}

type record struct {
	out  *Var              // nil for a rematerialisation hook (Recompute)
	back func(g []float32) // g: the output's gradient
	// inPlace: an op that overwrote its input's value and shares its Var
	// (DropoutInPlace): its backward turns out's gradient into the input's,
	// and the gradient stays for the input's own record.
	inPlace bool
}

// Tape records operations for reverse-mode differentiation. The zero value
// is ready to use; a nil *Tape records nothing.
type Tape struct {
	recs []record
	// arena: op outputs (and intermediate gradients) come from the buffer
	// pool and go back to it (see NewArenaTape); noGrad: record nothing.
	arena, noGrad bool
	owned         [][]float32 // pooled buffers handed out since the last Reset
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// NewArenaTape returns a recording tape whose op outputs and intermediate
// gradients live in a package-wide pool of float32 buffers reused across
// steps, so that a steady-state training step allocates almost nothing:
//
//   - during BackwardFrom, an intermediate's gradient goes back to the pool
//     as soon as it has been propagated to the op's inputs (its Grad is set
//     to nil: intermediate gradients cannot be read after Backward);
//   - Reset returns every value the tape's ops computed to the pool: Vars
//     computed on the tape (and views of them, such as Reshape results or
//     Detach copies) must not be used after Reset — read the loss first.
//
// Parameters, constants and their gradients are never pooled. Results are
// bit-identical to NewTape's.
func NewArenaTape() *Tape { return &Tape{arena: true} }

// NewNoGradArena returns a tape that records nothing (like a nil tape: the
// no-grad forward) but whose op outputs come from the buffer pool and go
// back to it at Reset, with NewArenaTape's rule: do not use its Vars after
// Reset.
func NewNoGradArena() *Tape { return &Tape{arena: true, noGrad: true} }

// alloc returns a zero tensor of the given shape for an op's output: from
// the pool on an arena tape, freshly allocated otherwise.
func (tp *Tape) alloc(shape ...int) *tensor.Tensor {
	if tp == nil || !tp.arena {
		return tensor.New(shape...)
	}
	b := tp.allocBuf(tensor.Numel(shape))
	return tensor.FromSlice(b, shape...)
}

// Free gives the values of vs back to the buffer pool at once when tp is a
// no-grad arena (NewNoGradArena) that computed them; for any other tape
// (nil included), or a Var the tape did not compute, it does nothing. A
// no-grad pass can so drop each intermediate as soon as its last consumer
// has run, and the next op reuses the memory. The caller guarantees that
// nothing reads the Var, or a view of it, afterwards.
func (tp *Tape) Free(vs ...*Var) {
	if tp == nil || !tp.arena || !tp.noGrad {
		return
	}
	for _, v := range vs {
		if v == nil || len(v.Value.Data) == 0 {
			continue
		}
		p := &v.Value.Data[0]
		for i := len(tp.owned) - 1; i >= 0; i-- {
			if b := tp.owned[i]; len(b) == len(v.Value.Data) && &b[0] == p {
				putBuf(b)
				last := len(tp.owned) - 1
				tp.owned[i] = tp.owned[last]
				tp.owned[last] = nil
				tp.owned = tp.owned[:last]
				break
			}
		}
	}
}

// allocFull is alloc for ops that write every element of their output:
// a pooled buffer is handed out as is (its old contents are overwritten).
func (tp *Tape) allocFull(shape ...int) *tensor.Tensor {
	if tp == nil || !tp.arena {
		return tensor.New(shape...)
	}
	b := getBufDirty(tensor.Numel(shape))
	tp.owned = append(tp.owned, b)
	return tensor.FromSlice(b, shape...)
}

// allocBuf returns n zeros for an op's own use (for example a backward
// mask): pooled and owned by an arena tape until Reset, fresh otherwise.
func (tp *Tape) allocBuf(n int) []float32 {
	if tp == nil || !tp.arena {
		return make([]float32, n)
	}
	b := getBuf(n)
	tp.owned = append(tp.owned, b)
	return b
}

// allocBufDirty is allocBuf without zeroing (for buffers the op fills).
func (tp *Tape) allocBufDirty(n int) []float32 {
	if tp == nil || !tp.arena {
		return make([]float32, n)
	}
	b := getBufDirty(n)
	tp.owned = append(tp.owned, b)
	return b
}

// Len returns the number of recorded operations.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.recs)
}

// Reset forgets every record (keeps capacity).
func (tp *Tape) Reset() {
	if tp == nil {
		return
	}
	if tp.arena {
		for _, r := range tp.recs {
			if r.out != nil && r.out.Grad != nil {
				putBuf(r.out.Grad.Data)
				r.out.Grad = nil
			}
		}
		for _, b := range tp.owned {
			putBuf(b)
		}
		clear(tp.owned)
		tp.owned = tp.owned[:0]
	}
	clear(tp.recs)
	tp.recs = tp.recs[:0]
}

// needs reports whether an op on these inputs must be recorded.
func (tp *Tape) needs(ins ...*Var) bool {
	if tp == nil || tp.noGrad {
		return false
	}
	for _, v := range ins {
		if v != nil && v.RequiresGrad {
			return true
		}
	}
	return false
}

// result wraps t as an op's output; if the op must be recorded, back (which
// receives the output gradient) is appended to the tape.
func (tp *Tape) result(t *tensor.Tensor, back func(g []float32), ins ...*Var) *Var {
	out := &Var{Value: t}
	if tp.needs(ins...) {
		out.RequiresGrad = true
		if tp.arena {
			out.arena = tp
		}
		tp.recs = append(tp.recs, record{out: out, back: back})
	}
	return out
}

// Backward seeds loss's gradient with 1 (loss must have one element) and
// runs every recorded backward closure in reverse order.
func (tp *Tape) Backward(loss *Var) {
	if len(loss.Value.Data) != 1 {
		panic(fmt.Sprintf("autodiff: Backward of a non-scalar (shape %v)", loss.Value.Shape))
	}
	loss.grad()[0] += 1
	tp.BackwardFrom()
}

// BackwardFrom runs the recorded closures in reverse, using gradients already
// placed in output Vars' Grad (for a non-scalar seed).
func (tp *Tape) BackwardFrom() {
	if tp == nil {
		return
	}
	for i := len(tp.recs) - 1; i >= 0; i-- {
		r := tp.recs[i]
		if r.out == nil {
			r.back(nil) // rematerialisation hook
			continue
		}
		if r.out.Grad == nil {
			continue // nothing flowed into this output
		}
		r.back(r.out.Grad.Data)
		if tp.arena && !r.inPlace {
			putBuf(r.out.Grad.Data)
			r.out.Grad = nil
			if r.out.freeVal {
				tp.releaseValue(r.out)
			}
			for _, v := range r.out.freeAfter {
				tp.releaseValue(v)
			}
			r.out.freeAfter = nil
		}
	}
}

// Memory planning on arena recording tapes (NewArenaTape). A training
// step's peak memory is the activations its backward reads; these calls let
// the network (package model) give each one back to the pool as soon as
// nothing will read it, and recompute cheap ones (BatchNorm/ReLU/dropout
// outputs, concatenations) from what is kept instead of keeping both. They
// are no-ops on every other tape (nil, NewTape, NewNoGradArena, whose
// intermediates Free drops), so results are those of NewTape bit for bit;
// model/arena_test.go checks that.

// recording reports an arena tape that records.
func (tp *Tape) recording() bool { return tp != nil && tp.arena && !tp.noGrad }

// releaseValue gives v's value buffer back to the pool if tp handed it
// out, and leaves v without a value (Data nil, shape kept); it reports
// whether it did.
func (tp *Tape) releaseValue(v *Var) bool {
	d := v.Value.Data
	if len(d) == 0 {
		return false
	}
	p := &d[0]
	for i := len(tp.owned) - 1; i >= 0; i-- {
		if b := tp.owned[i]; len(b) == len(d) && &b[0] == p {
			putBuf(b)
			last := len(tp.owned) - 1
			tp.owned[i] = tp.owned[last]
			tp.owned[last] = nil
			tp.owned = tp.owned[:last]
			v.Value.Data = nil
			return true
		}
	}
	return false
}

// FreeAfterBackward marks values that go back to the pool as soon as the
// backward of the op that computed them has run (every other op that reads
// them came later in the forward, so its backward ran earlier). The caller
// guarantees that nothing reads them after Backward.
func (tp *Tape) FreeAfterBackward(vs ...*Var) {
	if !tp.recording() {
		return
	}
	for _, v := range vs {
		if v != nil && v.arena == tp {
			v.freeVal = true
		}
	}
}

// FreeAfterBackwardOf gives v's value back to the pool as soon as the
// backward of the op that computed reader has run: that op is the one,
// among v's readers, whose backward runs last (the earliest in the
// forward), e.g. a BatchNorm for its input.
func (tp *Tape) FreeAfterBackwardOf(v, reader *Var) {
	if !tp.recording() || v == nil || reader == nil || v.arena != tp || reader.arena != tp {
		return
	}
	reader.freeAfter = append(reader.freeAfter, v)
}

// SetRecompute gives v (computed on this arena recording tape) a way to
// recompute its value into dst, bit for bit, for Recompute; fn may read
// released values through Materialize.
func (tp *Tape) SetRecompute(v *Var, fn func(dst []float32)) {
	if tp.recording() && v != nil && v.arena == tp {
		v.remat = fn
	}
}

// SetRecomputeOp is SetRecompute for a value that fn recomputes as an op
// (for example a conv) on the no-grad arena t it is given; the op's output
// buffer becomes v's value without a copy.
func (tp *Tape) SetRecomputeOp(v *Var, fn func(t *Tape) *Var) {
	if tp.recording() && v != nil && v.arena == tp {
		v.rematOn = fn
	}
}

// recomputed returns v's value recomputed into a pooled buffer that the
// caller owns.
func recomputed(v *Var) []float32 {
	if v.rematOn != nil {
		t := NewNoGradArena()
		r := t.disown(v.rematOn(t))
		t.Reset()
		return r
	}
	b := getBufDirty(tensor.Numel(v.Value.Shape))
	v.remat(b)
	return b
}

// disown removes v's value from the buffers tp hands back at Reset and
// returns it.
func (tp *Tape) disown(v *Var) []float32 {
	d := v.Value.Data
	for i := len(tp.owned) - 1; i >= 0; i-- {
		if b := tp.owned[i]; len(b) == len(d) && &b[0] == &d[0] {
			last := len(tp.owned) - 1
			tp.owned[i] = tp.owned[last]
			tp.owned[last] = nil
			tp.owned = tp.owned[:last]
			return d
		}
	}
	panic("autodiff: recomputation returned a value its tape did not compute")
}

// Materialize returns a Var holding v's value: v itself, or, if v's value
// was released, a constant holding it recomputed into a temporary pooled
// buffer; done gives that buffer back.
func Materialize(v *Var) (*Var, func()) {
	if v.Value.Data != nil {
		return v, func() {}
	}
	d, done := valueOf(v)
	return Const(tensor.FromSlice(d, v.Value.Shape...)), done
}

// Release gives v's value back to the pool now: the forward ops reading it
// have run and no backward reads it (or v can be recomputed and every
// reader asks for it through valueOf, as Concat's recomputation does).
func (tp *Tape) Release(v *Var) {
	if !tp.recording() || v == nil || v.arena != tp {
		return
	}
	tp.releaseValue(v)
}

// Recompute gives v's value back to the pool now (every forward op reading
// it has run) and recomputes it, into a fresh pooled buffer, when the
// backward pass reaches the op that computed after (the last op whose
// backward reads v; after may be v itself): backward ops recorded later
// than that one do not read v. v must be recomputable (computed by
// BatchNorm, DropoutInPlace or Concat on this tape); otherwise nothing
// happens.
func (tp *Tape) Recompute(v, after *Var) {
	if !tp.recording() || v == nil || (v.remat == nil && v.rematOn == nil) || v.arena != tp {
		return
	}
	at := -1
	for i := len(tp.recs) - 1; i >= 0; i-- {
		if tp.recs[i].out == after {
			at = i
			break
		}
	}
	if at < 0 || !tp.releaseValue(v) {
		return
	}
	hook := record{back: func([]float32) {
		if v.Value.Data != nil {
			return
		}
		b := recomputed(v)
		tp.owned = append(tp.owned, b)
		v.Value.Data = b
	}}
	tp.recs = append(tp.recs, record{})
	copy(tp.recs[at+2:], tp.recs[at+1:])
	tp.recs[at+1] = hook
}

// valueOf returns v's value, recomputed into a temporary pooled buffer if
// it was released (done gives that buffer back; a no-op otherwise).
func valueOf(v *Var) (d []float32, done func()) {
	if v.Value.Data != nil {
		return v.Value.Data, func() {}
	}
	if v.remat == nil && v.rematOn == nil {
		panic(fmt.Sprintf("autodiff: the value of a Var %v was released and cannot be recomputed", v.Value.Shape))
	}
	b := recomputed(v)
	return b, func() { putBuf(b) }
}

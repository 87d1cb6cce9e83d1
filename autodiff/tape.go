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
// and the same forward with a nil tape computes values only:
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
		v.Grad = tensor.ZerosLike(v.Value)
	}
	return v.Grad.Data
}

type record struct {
	out  *Var
	back func(g []float32) // g: the output's gradient
}

// Tape records operations for reverse-mode differentiation. The zero value
// is ready to use; a nil *Tape records nothing.
type Tape struct {
	recs []record
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Len returns the number of recorded operations.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.recs)
}

// Reset forgets every record (keeps capacity).
func (tp *Tape) Reset() {
	if tp != nil {
		clear(tp.recs)
		tp.recs = tp.recs[:0]
	}
}

// needs reports whether an op on these inputs must be recorded.
func (tp *Tape) needs(ins ...*Var) bool {
	if tp == nil {
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
		if r.out.Grad == nil {
			continue // nothing flowed into this output
		}
		r.back(r.out.Grad.Data)
	}
}

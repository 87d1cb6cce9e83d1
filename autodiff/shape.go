package autodiff

import (
	"fmt"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// Reshape returns x with a new shape (one dimension may be −1); the
// element order is unchanged. Flatten a [N,…] tensor with Reshape(x, N, -1).
func (tp *Tape) Reshape(x *Var, shape ...int) *Var {
	v := x.Value.Reshape(shape...)
	out := &tensor.Tensor{Shape: v.Shape, Data: append([]float32(nil), v.Data...)}
	return tp.result(out, func(g []float32) {
		kernels.AddTo(x.grad(), g)
	}, x)
}

// Concat joins xs along axis; all other dimensions must agree. The U-Net
// concatenates [upsampled, skip] along the channel axis (4 for NDHWC).
func (tp *Tape) Concat(axis int, xs ...*Var) *Var {
	if len(xs) == 0 {
		panic("autodiff.Concat: no inputs")
	}
	s0 := xs[0].Value.Shape
	if axis < 0 {
		axis += len(s0)
	}
	if axis < 0 || axis >= len(s0) {
		panic(fmt.Sprintf("autodiff.Concat: axis %d for shape %v", axis, s0))
	}
	outer, inner := 1, 1
	for _, d := range s0[:axis] {
		outer *= d
	}
	for _, d := range s0[axis+1:] {
		inner *= d
	}
	tot := 0
	for _, x := range xs {
		s := x.Value.Shape
		ok := len(s) == len(s0)
		for i := 0; ok && i < len(s); i++ {
			if i != axis && s[i] != s0[i] {
				ok = false
			}
		}
		if !ok {
			panic(fmt.Sprintf("autodiff.Concat: shapes %v and %v differ off axis %d", s0, s, axis))
		}
		tot += s[axis]
	}
	shape := append([]int(nil), s0...)
	shape[axis] = tot
	out := tp.allocFull(shape...)
	row := tot * inner
	fill := func(od []float32) {
		off := 0
		for _, x := range xs {
			w := x.Value.Shape[axis] * inner
			xd, done := valueOf(x)
			o0 := off
			tensor.Parallel(outer, 64, func(_, lo, hi int) {
				for o := lo; o < hi; o++ {
					copy(od[o*row+o0:o*row+o0+w], xd[o*w:(o+1)*w])
				}
			})
			done()
			off += w
		}
	}
	fill(out.Data)
	res := tp.result(out, func(g []float32) {
		off := 0
		for _, x := range xs {
			w := x.Value.Shape[axis] * inner
			if x.RequiresGrad {
				gx, fresh := x.gradFresh() // fresh: copied, not added to zeros
				o0 := off
				tensor.Parallel(outer, 64, func(_, lo, hi int) {
					for o := lo; o < hi; o++ {
						if fresh {
							copy(gx[o*w:(o+1)*w], g[o*row+o0:o*row+o0+w])
						} else {
							kernels.AddTo(gx[o*w:(o+1)*w], g[o*row+o0:o*row+o0+w])
						}
					}
				})
			}
			off += w
		}
	}, xs...)
	if tp.recording() {
		res.remat = fill // from the inputs, each recomputed if released (Tape.Recompute)
	}
	return res
}

// Slice returns x[..., lo:hi, ...] along axis.
func (tp *Tape) Slice(x *Var, axis, lo, hi int) *Var {
	ax, outer, n, inner := axisGeom("Slice", x.Value.Shape, axis)
	if lo < 0 || hi > n || lo > hi {
		panic(fmt.Sprintf("autodiff.Slice: [%d:%d] of axis %d size %d", lo, hi, ax, n))
	}
	shape := append([]int(nil), x.Value.Shape...)
	shape[ax] = hi - lo
	out := tp.allocFull(shape...)
	w := (hi - lo) * inner
	for o := 0; o < outer; o++ {
		copy(out.Data[o*w:(o+1)*w], x.Value.Data[(o*n+lo)*inner:(o*n+lo)*inner+w])
	}
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		for o := 0; o < outer; o++ {
			dst := gx[(o*n+lo)*inner : (o*n+lo)*inner+w]
			for i, v := range g[o*w : (o+1)*w] {
				dst[i] += v
			}
		}
	}, x)
}

// Flip reverses x along axis (augmentation: flip a volume along z, y or x).
func (tp *Tape) Flip(x *Var, axis int) *Var {
	_, outer, n, inner := axisGeom("Flip", x.Value.Shape, axis)
	flip := func(dst, src []float32, add bool) {
		for o := 0; o < outer; o++ {
			for j := 0; j < n; j++ {
				s := src[(o*n+j)*inner : (o*n+j+1)*inner]
				d := dst[(o*n+n-1-j)*inner : (o*n+n-j)*inner]
				if add {
					for i := range d {
						d[i] += s[i]
					}
				} else {
					copy(d, s)
				}
			}
		}
	}
	out := tp.alloc(x.Value.Shape...)
	flip(out.Data, x.Value.Data, false)
	return tp.result(out, func(g []float32) { flip(x.grad(), g, true) }, x)
}

// Transpose returns the transpose of a 2-d x.
func (tp *Tape) Transpose(x *Var) *Var {
	tensor.MustRank("autodiff.Transpose", x.Value, 2)
	r, c := x.Value.Shape[0], x.Value.Shape[1]
	out := tp.alloc(c, r)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.Data[j*r+i] = x.Value.Data[i*c+j]
		}
	}
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				gx[i*c+j] += g[j*r+i]
			}
		}
	}, x)
}

package autodiff

import (
	"fmt"
	"math"
	"slices"

	"github.com/fess-seg/fess/tensor"
)

// keptShape returns x's shape with the reduced axes set to 1, and the
// reduced element count. nil axes means all axes; negative axes count from
// the end.
func keptShape(op string, shape []int, axes []int) ([]int, int) {
	kept := slices.Clone(shape)
	if axes == nil {
		for i := range kept {
			kept[i] = 1
		}
		return kept, tensor.Numel(shape)
	}
	cnt := 1
	for _, a := range axes {
		if a < 0 {
			a += len(shape)
		}
		if a < 0 || a >= len(shape) || kept[a] == 1 && shape[a] != 1 {
			panic(fmt.Sprintf("autodiff.%s: bad or repeated axis in %v for shape %v", op, axes, shape))
		}
		cnt *= shape[a]
		kept[a] = 1
	}
	return kept, cnt
}

// dropOnes removes the reduced axes from kept (for keepDims=false).
func dropAxes(shape []int, axes []int) []int {
	if axes == nil {
		return []int{}
	}
	drop := map[int]bool{}
	for _, a := range axes {
		if a < 0 {
			a += len(shape)
		}
		drop[a] = true
	}
	var out []int
	for i, d := range shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	if out == nil {
		out = []int{}
	}
	return out
}

// sumInto accumulates x (shape xs) into a float64 buffer of the kept shape,
// in increasing index order of x (fixed order: deterministic).
func sumKept(xd []float32, xs, kept []int) []float64 {
	acc := make([]float64, tensor.Numel(kept))
	if len(acc) == 1 {
		// Whole-tensor sum: fixed chunks, partials combined in order.
		p := tensor.Chunks(len(xd), 0)
		part := make([]float64, p)
		tensor.Parallel(len(xd), 0, func(w, lo, hi int) {
			s := 0.0
			for _, v := range xd[lo:hi] {
				s += float64(v)
			}
			part[w] = s
		})
		for _, s := range part {
			acc[0] += s
		}
		return acc
	}
	if c := len(acc); trailingOf(xs, kept[len(kept)-countTrailingNonOne(kept):]) && isLeadingOnes(kept) {
		for i, v := range xd {
			acc[i%c] += float64(v)
		}
		return acc
	}
	st := bstrides(xs, kept)
	forEachBcast(xs, st, st, func(i, io, _ int) { acc[io] += float64(xd[i]) })
	return acc
}

func countTrailingNonOne(s []int) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] != 1; i-- {
		n++
	}
	return n
}

func isLeadingOnes(s []int) bool {
	i := len(s) - countTrailingNonOne(s)
	for _, d := range s[:i] {
		if d != 1 {
			return false
		}
	}
	return true
}

// spread adds c·g (shape kept) to every element of gx (shape xs).
func spread(gx []float32, xs, kept []int, g []float32, c float32) {
	if len(g) == 1 {
		v := g[0] * c
		tensor.Parallel(len(gx), 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += v
			}
		})
		return
	}
	st := bstrides(xs, kept)
	forEachBcast(xs, st, st, func(i, io, _ int) { gx[i] += g[io] * c })
}

func (tp *Tape) reduceSum(op string, x *Var, axes []int, keep bool, mean bool) *Var {
	xs := x.Value.Shape
	kept, cnt := keptShape(op, xs, axes)
	acc := sumKept(x.Value.Data, xs, kept)
	scale := 1.0
	if mean {
		scale = 1 / float64(cnt)
	}
	shape := kept
	if !keep {
		shape = dropAxes(xs, axes)
	}
	out := tp.alloc(shape...)
	for i, v := range acc {
		out.Data[i] = float32(v * scale)
	}
	return tp.result(out, func(g []float32) {
		spread(x.grad(), xs, kept, g, float32(scale))
	}, x)
}

// Sum returns the sum over axes (nil: all axes, giving a scalar); the
// reduced axes are removed. Accumulates in float64 in a fixed order.
func (tp *Tape) Sum(x *Var, axes []int) *Var { return tp.reduceSum("Sum", x, axes, false, false) }

// SumKeep is Sum keeping the reduced axes with size 1 (for broadcasting).
func (tp *Tape) SumKeep(x *Var, axes []int) *Var {
	return tp.reduceSum("SumKeep", x, axes, true, false)
}

// Mean returns the mean over axes (nil: all); reduced axes are removed.
func (tp *Tape) Mean(x *Var, axes []int) *Var { return tp.reduceSum("Mean", x, axes, false, true) }

// MeanKeep is Mean keeping the reduced axes with size 1.
func (tp *Tape) MeanKeep(x *Var, axes []int) *Var {
	return tp.reduceSum("MeanKeep", x, axes, true, true)
}

// GlobalAvgPool averages a [N,D,H,W,C] volume over its spatial axes, giving
// [N,C].
func (tp *Tape) GlobalAvgPool(x *Var) *Var {
	tensor.MustRank("autodiff.GlobalAvgPool", x.Value, 5)
	return tp.Mean(x, []int{1, 2, 3})
}

// L2Normalize returns x / max(‖x‖₂, eps) with the norm taken over axes
// (per index of the other axes), as torch.nn.functional.normalize. Where
// ‖x‖ > eps the gradient is (g − y·Σ(g·y))/‖x‖, else g/eps.
func (tp *Tape) L2Normalize(x *Var, axes []int, eps float32) *Var {
	xs := x.Value.Shape
	xd := x.Value.Data
	kept, _ := keptShape("L2Normalize", xs, axes)
	sq := make([]float32, len(xd))
	for i, v := range xd {
		sq[i] = v * v
	}
	ss := sumKept(sq, xs, kept)
	den := make([]float32, len(ss))
	for i, s := range ss {
		den[i] = max(float32(math.Sqrt(s)), eps)
	}
	out := tp.alloc(xs...)
	od := out.Data
	st := bstrides(xs, kept)
	forEachBcast(xs, st, st, func(i, io, _ int) { od[i] = xd[i] / den[io] })
	return tp.result(out, func(g []float32) {
		gy := make([]float32, len(g))
		for i := range g {
			gy[i] = g[i] * od[i]
		}
		dot := sumKept(gy, xs, kept)
		gx := x.grad()
		forEachBcast(xs, st, st, func(i, io, _ int) {
			if den[io] > eps {
				gx[i] += (g[i] - od[i]*float32(dot[io])) / den[io]
			} else {
				gx[i] += g[i] / eps
			}
		})
	}, x)
}

// axisGeom splits shape around axis into (outer, n, inner) sizes.
func axisGeom(op string, shape []int, axis int) (int, int, int, int) {
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		panic(fmt.Sprintf("autodiff.%s: axis out of range for shape %v", op, shape))
	}
	outer, inner := 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return axis, outer, shape[axis], inner
}

// LogSoftmax returns x − logsumexp(x) along axis, computed stably (max
// subtracted, float64 sums). For a flattened tensor, Reshape to [-1] first.
// Gradient: g − softmax·Σg.
func (tp *Tape) LogSoftmax(x *Var, axis int) *Var {
	_, outer, n, inner := axisGeom("LogSoftmax", x.Value.Shape, axis)
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			m, s := maxSumExp(xd, base, n, inner)
			lse := float64(m) + math.Log(s)
			for j := 0; j < n; j++ {
				od[base+j*inner] = float32(float64(xd[base+j*inner]) - lse)
			}
		}
	}
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				base := o*n*inner + in
				s := 0.0
				for j := 0; j < n; j++ {
					s += float64(g[base+j*inner])
				}
				for j := 0; j < n; j++ {
					k := base + j*inner
					gx[k] += g[k] - float32(math.Exp(float64(od[k]))*s)
				}
			}
		}
	}, x)
}

// LogSumExp returns log Σ exp(x) along axis (the axis is removed), stably.
// Gradient: g·softmax.
func (tp *Tape) LogSumExp(x *Var, axis int) *Var {
	ax, outer, n, inner := axisGeom("LogSumExp", x.Value.Shape, axis)
	xd := x.Value.Data
	out := tp.alloc(dropAxes(x.Value.Shape, []int{ax})...)
	od := out.Data
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			m, s := maxSumExp(xd, o*n*inner+in, n, inner)
			od[o*inner+in] = float32(float64(m) + math.Log(s))
		}
	}
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				base := o*n*inner + in
				l := float64(od[o*inner+in])
				for j := 0; j < n; j++ {
					k := base + j*inner
					gx[k] += g[o*inner+in] * float32(math.Exp(float64(xd[k])-l))
				}
			}
		}
	}, x)
}

// maxSumExp returns, for the n values xd[base + j·inner], their maximum m
// and Σ exp(x − m) accumulated in float64: the stable core shared by
// Softmax and LogSoftmax.
func maxSumExp(xd []float32, base, n, inner int) (float32, float64) {
	m := float32(math.Inf(-1))
	for j := 0; j < n; j++ {
		m = max(m, xd[base+j*inner])
	}
	s := 0.0
	for j := 0; j < n; j++ {
		s += math.Exp(float64(xd[base+j*inner] - m))
	}
	return m, s
}

package autodiff

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// Broadcasting follows NumPy: shapes are aligned at their last axis and a
// dimension of 1 (or a missing leading one) stretches to the other's size.
// Same-shape, scalar and trailing-axis (per-channel, e.g. [C] with
// [N,D,H,W,C]) cases take fast parallel paths; others a general serial loop.

// broadcastShape returns the broadcast shape of a and b or panics.
func broadcastShape(op string, a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			panic(fmt.Sprintf("autodiff.%s: shapes %v and %v do not broadcast", op, a, b))
		}
	}
	return out
}

// bstrides returns in's element strides over the axes of out (0 where in is
// broadcast).
func bstrides(out, in []int) []int {
	st := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(in) - len(out) + i
		if j >= 0 && in[j] != 1 {
			st[i] = s
		}
		if j >= 0 {
			s *= in[j]
		}
	}
	return st
}

// forEachBcast calls fn(i, ia, ib) for every flat output index i with the
// matching flat indices into a and b, in increasing i.
func forEachBcast(out []int, sa, sb []int, fn func(i, ia, ib int)) {
	n := tensor.Numel(out)
	if n == 0 {
		return
	}
	idx := make([]int, len(out))
	ia, ib := 0, 0
	for i := 0; i < n; i++ {
		fn(i, ia, ib)
		for ax := len(out) - 1; ax >= 0; ax-- {
			idx[ax]++
			ia += sa[ax]
			ib += sb[ax]
			if idx[ax] < out[ax] {
				break
			}
			ia -= sa[ax] * out[ax]
			ib -= sb[ax] * out[ax]
			idx[ax] = 0
		}
	}
}

// trailingOf reports whether small equals the last len(small) axes of big
// (so small's index is i % len).
func trailingOf(big, small []int) bool {
	if len(small) > len(big) {
		return false
	}
	return tensor.SameShape(big[len(big)-len(small):], small)
}

type binKind int

const (
	kAdd binKind = iota
	kSub
	kMul
	kDiv
)

var binNames = [...]string{"Add", "Sub", "Mul", "Div"}

func binApply(k binKind, x, y float32) float32 {
	switch k {
	case kAdd:
		return x + y
	case kSub:
		return x - y
	case kMul:
		return x * y
	}
	return x / y
}

// binary computes a (op) b with broadcasting.
func (tp *Tape) binary(k binKind, a, b *Var) *Var {
	as, bs := a.Value.Shape, b.Value.Shape
	ad, bd := a.Value.Data, b.Value.Data
	os := broadcastShape(binNames[k], as, bs)
	out := tp.alloc(os...)
	od := out.Data
	n := len(od)
	// index maps: ai(i), bi(i) for the fast paths; nil means general.
	var amod, bmod int // element i of out uses a[i%amod] (amod==n: same shape)
	fast := true
	switch {
	case len(ad) == n && tensor.SameShape(as, os):
		amod = n
	case len(ad) == 1:
		amod = 1
	case trailingOf(os, as):
		amod = len(ad)
	default:
		fast = false
	}
	switch {
	case len(bd) == n && tensor.SameShape(bs, os):
		bmod = n
	case len(bd) == 1:
		bmod = 1
	case trailingOf(os, bs):
		bmod = len(bd)
	default:
		fast = false
	}
	var sa, sb []int
	if fast && amod == n && bmod == n {
		tensor.Parallel(n, 0, func(_, lo, hi int) {
			a, b, o := ad[lo:hi], bd[lo:hi], od[lo:hi]
			switch k {
			case kAdd:
				for i := range o {
					o[i] = a[i] + b[i]
				}
			case kSub:
				for i := range o {
					o[i] = a[i] - b[i]
				}
			case kMul:
				for i := range o {
					o[i] = a[i] * b[i]
				}
			default:
				for i := range o {
					o[i] = a[i] / b[i]
				}
			}
		})
	} else if fast {
		tensor.Parallel(n, 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				od[i] = binApply(k, ad[i%amod], bd[i%bmod])
			}
		})
	} else {
		sa, sb = bstrides(os, as), bstrides(os, bs)
		forEachBcast(os, sa, sb, func(i, ia, ib int) { od[i] = binApply(k, ad[ia], bd[ib]) })
	}
	return tp.result(out, func(g []float32) {
		// da = g * d(op)/da, summed over broadcast axes; likewise db.
		var ga, gb []float32
		if a.RequiresGrad {
			ga = a.grad()
		}
		if b.RequiresGrad {
			gb = b.grad()
		}
		contrib := func(i, ia, ib int) {
			x, y := ad[ia], bd[ib]
			switch k {
			case kAdd:
				if ga != nil {
					ga[ia] += g[i]
				}
				if gb != nil {
					gb[ib] += g[i]
				}
			case kSub:
				if ga != nil {
					ga[ia] += g[i]
				}
				if gb != nil {
					gb[ib] -= g[i]
				}
			case kMul:
				if ga != nil {
					ga[ia] += g[i] * y
				}
				if gb != nil {
					gb[ib] += g[i] * x
				}
			case kDiv:
				if ga != nil {
					ga[ia] += g[i] / y
				}
				if gb != nil {
					gb[ib] -= g[i] * x / (y * y)
				}
			}
		}
		if fast && amod == n && bmod == n {
			tensor.Parallel(n, 0, func(_, lo, hi int) {
				for i := lo; i < hi; i++ {
					contrib(i, i, i)
				}
			})
			return
		}
		if fast {
			// Non-elementwise reductions go serially in index order so the
			// summation order is fixed.
			for i := 0; i < n; i++ {
				contrib(i, i%amod, i%bmod)
			}
			return
		}
		forEachBcast(os, sa, sb, contrib)
	}, a, b)
}

// Add returns a+b (broadcasting).
func (tp *Tape) Add(a, b *Var) *Var { return tp.binary(kAdd, a, b) }

// Sub returns a−b (broadcasting).
func (tp *Tape) Sub(a, b *Var) *Var { return tp.binary(kSub, a, b) }

// Mul returns a·b elementwise (broadcasting).
func (tp *Tape) Mul(a, b *Var) *Var { return tp.binary(kMul, a, b) }

// Div returns a/b elementwise (broadcasting).
func (tp *Tape) Div(a, b *Var) *Var { return tp.binary(kDiv, a, b) }

// unary applies y = f(x) elementwise; df(x, y) is dy/dx.
func (tp *Tape) unary(x *Var, f func(float32) float32, df func(x, y float32) float32) *Var {
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	tensor.Parallel(len(xd), 0, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			od[i] = f(xd[i])
		}
	})
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		tensor.Parallel(len(xd), 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += g[i] * df(xd[i], od[i])
			}
		})
	}, x)
}

// Scale returns c·x.
func (tp *Tape) Scale(x *Var, c float32) *Var {
	return tp.unary(x, func(v float32) float32 { return c * v }, func(_, _ float32) float32 { return c })
}

// AddScalar returns x + c.
func (tp *Tape) AddScalar(x *Var, c float32) *Var {
	return tp.unary(x, func(v float32) float32 { return v + c }, func(_, _ float32) float32 { return 1 })
}

// Neg returns −x.
func (tp *Tape) Neg(x *Var) *Var { return tp.Scale(x, -1) }

// Exp returns eˣ.
func (tp *Tape) Exp(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 { return float32(math.Exp(float64(v))) },
		func(_, y float32) float32 { return y })
}

// Log returns ln x (−Inf at 0, NaN below; clamp first where that can happen).
func (tp *Tape) Log(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 { return float32(math.Log(float64(v))) },
		func(x, _ float32) float32 { return 1 / x })
}

// Sqrt returns √x.
func (tp *Tape) Sqrt(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 { return float32(math.Sqrt(float64(v))) },
		func(_, y float32) float32 { return 0.5 / y })
}

// Square returns x².
func (tp *Tape) Square(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 { return v * v }, func(x, _ float32) float32 { return 2 * x })
}

// Clamp returns min(max(x, lo), hi); the gradient is 1 inside [lo, hi], 0
// outside (as torch.clamp).
func (tp *Tape) Clamp(x *Var, lo, hi float32) *Var {
	return tp.unary(x, func(v float32) float32 { return min(max(v, lo), hi) },
		func(x, _ float32) float32 {
			if x < lo || x > hi {
				return 0
			}
			return 1
		})
}

// ReLU returns max(x, 0); the gradient at 0 is 0 (as PyTorch).
func (tp *Tape) ReLU(x *Var) *Var {
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	tensor.Parallel(len(xd), 0, func(_, lo, hi int) {
		for i, v := range xd[lo:hi] {
			od[lo+i] = max(v, 0)
		}
	})
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		tensor.Parallel(len(xd), 0, func(_, lo, hi int) {
			o, gg, dst := od[lo:hi], g[lo:hi], gx[lo:hi]
			for i := range dst {
				if o[i] > 0 {
					dst[i] += gg[i]
				}
			}
		})
	}, x)
}

// Sigmoid returns 1/(1+e^−x), computed without overflow in float32 by
// kernels.Sigmoid (an AVX2 loop where the CPU has it, the same bits as its
// Go loop); dy/dx = y(1−y).
func (tp *Tape) Sigmoid(x *Var) *Var {
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	tensor.Parallel(len(xd), 0, func(_, lo, hi int) { kernels.Sigmoid(od[lo:hi], xd[lo:hi]) })
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		tensor.Parallel(len(xd), 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				y := od[i]
				gx[i] += g[i] * (y * (1 - y))
			}
		})
	}, x)
}

// Tanh returns tanh x.
func (tp *Tape) Tanh(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 { return float32(math.Tanh(float64(v))) },
		func(_, y float32) float32 { return 1 - y*y })
}

// LogSigmoid returns ln sigmoid(x) = −Softplus(−x); d/dx = 1 − sigmoid(x).
func (tp *Tape) LogSigmoid(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 {
		a := math.Abs(float64(v))
		return float32(math.Min(float64(v), 0) - math.Log1p(math.Exp(-a)))
	}, func(x, _ float32) float32 { return 1 - kernels.Sigmoid1(x) })
}

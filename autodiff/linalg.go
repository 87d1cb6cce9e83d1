package autodiff

import (
	"fmt"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// MatMul returns a·b for a [m,k] and b [k,n] (via kernels.Sgemm). Gradients:
// da = g·bᵀ, db = aᵀ·g.
func (tp *Tape) MatMul(a, b *Var) *Var {
	tensor.MustRank("autodiff.MatMul", a.Value, 2)
	tensor.MustRank("autodiff.MatMul", b.Value, 2)
	m, k := a.Value.Shape[0], a.Value.Shape[1]
	if b.Value.Shape[0] != k {
		panic(fmt.Sprintf("autodiff.MatMul: shapes %v and %v", a.Value.Shape, b.Value.Shape))
	}
	n := b.Value.Shape[1]
	out := tp.alloc(m, n)
	if m*n > 0 && k > 0 {
		kernels.Sgemm(false, false, m, n, k, 1, a.Value.Data, k, b.Value.Data, n, 0, out.Data, n)
	}
	return tp.result(out, func(g []float32) {
		if m*n == 0 || k == 0 {
			return
		}
		if a.RequiresGrad {
			kernels.Sgemm(false, true, m, k, n, 1, g, n, b.Value.Data, n, 1, a.grad(), k)
		}
		if b.RequiresGrad {
			kernels.Sgemm(true, false, k, n, m, 1, a.Value.Data, k, g, n, 1, b.grad(), n)
		}
	}, a, b)
}

// Dense returns x·w + b for x [N,in], w [in,out] and b [out] (b may be nil):
// a fully connected layer (projection heads).
func (tp *Tape) Dense(x, w, b *Var) *Var {
	y := tp.MatMul(x, w)
	if b == nil {
		return y
	}
	if len(b.Value.Shape) != 1 || b.Value.Shape[0] != w.Value.Shape[1] {
		panic(fmt.Sprintf("autodiff.Dense: bias shape %v for weight %v", b.Value.Shape, w.Value.Shape))
	}
	return tp.Add(y, b)
}

package autodiff

import (
	"math"

	"github.com/fess-seg/fess/internal/kernels"
)

// Softplus returns log(1 + eˣ), computed without overflow as
// max(x,0) + log1p(e^−|x|); dy/dx = σ(x). It makes BCE on logits stable:
// BCE(σ(z), y) = softplus(z) − z·y.
func (tp *Tape) Softplus(x *Var) *Var {
	return tp.unary(x, func(v float32) float32 {
		f := float64(v)
		return float32(math.Max(f, 0) + math.Log1p(math.Exp(-math.Abs(f))))
	}, func(x, _ float32) float32 { return kernels.Sigmoid1(x) })
}

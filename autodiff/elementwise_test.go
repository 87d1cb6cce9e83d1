package autodiff

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// TestStableExtremes: sigmoid, softplus, log-sigmoid and log-softmax stay
// finite and exact-ish at |x| = 100 where naive formulas overflow.
func TestStableExtremes(t *testing.T) {
	x := Const(tensor.FromSlice([]float32{-100, 0, 100}, 3))
	var none *Tape
	chk := func(name string, got *Var, want []float64) {
		for i, w := range want {
			g := float64(got.Value.Data[i])
			if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Errorf("%s(%v) = %v, want %v", name, x.Value.Data[i], g, w)
			}
		}
	}
	chk("Sigmoid", none.Sigmoid(x), []float64{math.Exp(-100), 0.5, 1})
	chk("Softplus", none.Softplus(x), []float64{math.Exp(-100), math.Ln2, 100})
	chk("LogSigmoid", none.LogSigmoid(x), []float64{-100, -math.Ln2, -math.Exp(-100)})
	chk("LogSoftmax", none.LogSoftmax(x, 0), []float64{-200, -100, 0})
	chk("LogSumExp", none.Reshape(none.LogSumExp(x, 0), 1), []float64{100})
}

package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

func TestGradSoftplus(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randVar(rng, -6, 6, 3, 5)
	x.Value.Data[0] = 0 // the kink of max(x,0): the derivative is σ(0) = 1/2
	gradCheck(t, "Softplus", []*Var{x}, func(tp *Tape) *Var { return tp.Softplus(x) }, 1e-3, 1e-3, 1e-2)
}

func TestSoftplusValues(t *testing.T) {
	var none *Tape
	in := []float32{-100, -20, -1, 0, 1, 20, 100}
	y := none.Softplus(Const(tensor.FromSlice(in, len(in))))
	for i, v := range in {
		want := math.Log1p(math.Exp(float64(v))) // exact in float64 for |v| ≤ 100
		if d := math.Abs(float64(y.Value.Data[i]) - want); d > 1e-6*math.Max(1, want) {
			t.Errorf("Softplus(%v) = %v, want %v", v, y.Value.Data[i], want)
		}
	}
}

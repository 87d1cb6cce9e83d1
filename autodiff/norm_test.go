package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// TestBatchNormReLUIdentical checks that the fused op gives the same bits
// as ReLU(BatchNorm) for the output, the running statistics and the
// gradients of x, γ and β, in training and inference mode.
func TestBatchNormReLUIdentical(t *testing.T) {
	for _, train := range []bool{true, false} {
		run := func(fused bool) [][]float32 {
			rng := rand.New(rand.NewPCG(3, 4))
			x := randVar(rng, -2, 2, 2, 5, 6, 7, 5)
			gamma := randVar(rng, 0.5, 1.5, 5)
			beta := randVar(rng, -0.5, 0.5, 5)
			st := NewBNState(5, 0.1, 1e-5)
			for i := range st.RunMean.Data {
				st.RunMean.Data[i] = float32(i) * 0.1
			}
			tp := NewTape()
			var y *Var
			if fused {
				y = tp.BatchNormReLU(x, gamma, beta, st, train)
			} else {
				y = tp.ReLU(tp.BatchNorm(x, gamma, beta, st, train))
			}
			g := tensor.New(y.Value.Shape...)
			for i := range g.Data {
				g.Data[i] = float32(rng.Float64()*2 - 1)
			}
			y.Grad = g
			tp.BackwardFrom()
			return [][]float32{y.Value.Data, st.RunMean.Data, st.RunVar.Data, x.Grad.Data, gamma.Grad.Data, beta.Grad.Data}
		}
		a, b := run(true), run(false)
		for k := range a {
			for i := range a[k] {
				if a[k][i] != b[k][i] {
					t.Fatalf("train=%v: array %d element %d: fused %v, unfused %v", train, k, i, a[k][i], b[k][i])
				}
			}
		}
	}
}

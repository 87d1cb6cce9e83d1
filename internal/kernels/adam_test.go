package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamStepMatchesLoop holds AdamStep (assembly on whole groups of 8
// where the CPU has AVX2, Go on the rest) to the plain Adam loop, bit for
// bit, over several steps, on lengths with and without a remainder and on
// gradients spanning many magnitudes (zeros included).
func TestAdamStepMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 7))
	for _, n := range []int{1, 7, 8, 29, 1000} {
		p, g := randSlice(r, n), make([]float32, n)
		m, v := make([]float32, n), make([]float32, n)
		pw, mw, vw := append([]float32(nil), p...), make([]float32, n), make([]float32, n)
		b1, b2, eps := float32(0.9), float32(0.999), float32(1e-8)
		ob1, ob2 := float32(1-0.9), float32(1-0.999)
		for step := 1; step <= 4; step++ {
			for i := range g {
				g[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(10)-7)))
				if r.IntN(9) == 0 {
					g[i] = 0
				}
			}
			bc1 := 1 - math.Pow(0.9, float64(step))
			bc2s := float32(math.Sqrt(1 - math.Pow(0.999, float64(step))))
			lr := float32(-(1e-3 / bc1))
			AdamStep(p, g, m, v, b1, b2, ob1, ob2, bc2s, eps, lr)
			for i := range pw {
				gi := g[i]
				mw[i] = float32(mw[i]*b1) + float32(ob1*gi)
				vw[i] = float32(vw[i]*b2) + float32(float32(ob2*gi)*gi)
				den := float32(float32(math.Sqrt(float64(vw[i])))/bc2s) + eps
				pw[i] += float32(lr * float32(mw[i]/den))
			}
			for i := range p {
				if math.Float32bits(p[i]) != math.Float32bits(pw[i]) || m[i] != mw[i] || v[i] != vw[i] {
					t.Fatalf("n=%d step %d: [%d] p %v m %v v %v, want %v %v %v", n, step, i, p[i], m[i], v[i], pw[i], mw[i], vw[i])
				}
			}
		}
	}
	t.Logf("assembly: %v", adamAsm)
}

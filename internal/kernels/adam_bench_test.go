package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAdamStep times the Adam update on 4M parameters with gradients
// of a typical scale and of a scale whose squares are subnormal floats
// (slow arithmetic on most CPUs): GB/s of the seven streams.
func BenchmarkAdamStep(b *testing.B) {
	const n = 4 << 20
	for _, scale := range []float32{1e-3, 1e-21} {
		r := rand.New(rand.NewPCG(1, 2))
		p, g, m, v := randSlice(r, n), randSlice(r, n), make([]float32, n), make([]float32, n)
		for i := range g {
			g[i] *= scale
		}
		b.Run(fmt.Sprintf("grad%g", scale), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				AdamStep(p, g, m, v, 0.9, 0.999, 0.1, 0.001, 0.03, 1e-8, -1e-3)
			}
			b.ReportMetric(float64(7*4*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

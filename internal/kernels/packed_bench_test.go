package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSgemmPacked times the per-point GEMMs of the Winograd path
// (m = tiles per block, k = Cin, n = Cout) on one goroutine.
func BenchmarkSgemmPacked(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{120, 512, 16}, {12, 512, 16}, {12, 32, 32}, {24, 32, 32}, {48, 32, 32}, {60, 32, 32}, {48, 64, 64}, {48, 128, 128}, {64, 256, 256}, {60, 96, 32}, {252, 8, 8}, {120, 16, 16}} {
		m, k, n := s[0], s[1], s[2]
		a := randSlice(r, m*k)
		bb := randSlice(r, k*n)
		c := make([]float32, m*n)
		pb := PackB(make([]float32, PackBSize(k, n)), bb, n, k, n)
		for _, pf := range []bool{true, false} {
			b.Run(fmt.Sprintf("m%d_k%d_n%d/prefetch=%v", m, k, n, pf), func(b *testing.B) {
				defer func(v int) { packedNoPrefetch = v }(packedNoPrefetch)
				if pf {
					packedNoPrefetch = 0
				} else {
					packedNoPrefetch = 1 << 30
				}
				for i := 0; i < b.N; i++ {
					SgemmPacked(m, 1, a, k, pb, 0, c, n)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkPackB packs the B operand of a Winograd point's GEMM (the
// reference network's 1024×1024 bottleneck kernel, and a 32×32 one).
func BenchmarkPackB(b *testing.B) {
	for _, s := range []int{32, 1024} {
		src := make([]float32, s*s)
		dst := make([]float32, PackBSize(s, s))
		b.Run(fmt.Sprint(s), func(b *testing.B) {
			b.SetBytes(int64(4 * s * s))
			for i := 0; i < b.N; i++ {
				PackB(dst, src, s, s, s)
			}
		})
	}
}

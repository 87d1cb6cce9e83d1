package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkWinoIn times the input transform of one cache-resident tile
// (contiguous 4×4×4×c), the compute-bound cost per tile.
func BenchmarkWinoIn(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []int{8, 32} {
		src := randSlice(r, 64*c)
		ds := 64*c + 16
		dst := make([]float32, 64*ds)
		tmp := make([]float32, WinoInTmp)
		runBoth(b, fmt.Sprintf("c%d", c), func() { WinoIn(dst, ds, src, c, 4*c, 16*c, c, tmp) })
	}
}

// BenchmarkWinoOut times the output transform of one tile (bias, no
// accumulation), AVX2 against AVX-512 where the CPU has it.
func BenchmarkWinoOut(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []int{8, 32} {
		ss := 64*c + 16
		m := randSlice(r, 64*ss)
		dst := make([]float32, 8*c)
		bias := randSlice(r, c)
		tmp := make([]float32, WinoInTmp)
		runBoth(b, fmt.Sprintf("c%d", c), func() { WinoOut(dst, c, 2*c, 4*c, m, ss, c, bias, false, tmp) })
	}
}

// BenchmarkWinoGrad times the output-gradient transform of one tile, AVX2
// against AVX-512 where the CPU has it.
func BenchmarkWinoGrad(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []int{8, 32} {
		src := randSlice(r, 8*c)
		ds := 64*c + 16
		dst := make([]float32, 64*ds)
		tmp := make([]float32, WinoInTmp)
		runBoth(b, fmt.Sprintf("c%d", c), func() { WinoGrad(dst, ds, src, c, 2*c, 4*c, c, tmp) })
	}
}

// runBoth runs fn as a sub-benchmark with the AVX2 transforms and, where the
// CPU has them, the AVX-512 ones.
func runBoth(b *testing.B, name string, fn func()) {
	for _, avx512 := range []bool{false, true} {
		if avx512 && !winoIn512 {
			continue
		}
		saved := winoIn512
		winoIn512 = avx512
		b.Run(fmt.Sprintf("%s/avx512=%v", name, avx512), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fn()
			}
		})
		winoIn512 = saved
	}
}

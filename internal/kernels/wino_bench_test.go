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
		for _, avx512 := range []bool{false, true} {
			if avx512 && !winoIn512 {
				continue
			}
			saved := winoIn512
			winoIn512 = avx512
			b.Run(fmt.Sprintf("c%d/avx512=%v", c, avx512), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					WinoIn(dst, ds, src, c, 4*c, 16*c, c, tmp)
				}
			})
			winoIn512 = saved
		}
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
		for _, avx512 := range []bool{false, true} {
			if avx512 && !winoIn512 {
				continue
			}
			saved := winoIn512
			winoIn512 = avx512
			b.Run(fmt.Sprintf("c%d/avx512=%v", c, avx512), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					WinoOut(dst, c, 2*c, 4*c, m, ss, c, bias, false, tmp)
				}
			})
			winoIn512 = saved
		}
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
		for _, avx512 := range []bool{false, true} {
			if avx512 && !winoIn512 {
				continue
			}
			saved := winoIn512
			winoIn512 = avx512
			b.Run(fmt.Sprintf("c%d/avx512=%v", c, avx512), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					WinoGrad(dst, ds, src, c, 2*c, 4*c, c, tmp)
				}
			})
			winoIn512 = saved
		}
	}
}

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

// BenchmarkWino4Transforms times one F(4,3) tile's input and output
// transforms on a block of 48 tiles (point strides as the autodiff
// package's blocked schedule lays them out), 8, 16 and 32 channels: the
// per-tile costs behind configs a, b and s.
func BenchmarkWino4Transforms(b *testing.B) {
	for _, c := range []int{8, 16, 32} {
		const block = 48
		ds := block*c + 16
		src := make([]float32, 8*8*8*c)
		for i := range src {
			src[i] = float32(i%13) - 6
		}
		v := make([]float32, 216*ds)
		tmp := make([]float32, Wino4Tmp)
		out := make([]float32, 8*8*8*c)
		b.Run(fmt.Sprintf("in/c%d", c), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				j := i % block
				Wino4In(v[j*c:], ds, src, c, 8*c, 64*c, c, tmp)
			}
		})
		b.Run(fmt.Sprintf("out/c%d", c), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				j := i % block
				Wino4Out(out, c, 8*c, 64*c, v[j*c:], ds, c, nil, false, tmp)
			}
		})
	}
}

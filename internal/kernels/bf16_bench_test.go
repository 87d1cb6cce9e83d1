package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// BenchmarkSgemmBF16 compares Sgemm in FP32 and BF16 precision on conv-like
// shapes: channels-first C[Cout, voxels] = W[Cout, K]·cols (m = 64,
// n = 32768, k = 864: a 3×3×3 conv of 32 channels), and the engine's
// channels-last chunks C[voxels, Cout] = cols[voxels, K]·W (forward), their
// weight gradient (transposed A) and input gradient (transposed B).
func BenchmarkSgemmBF16(b *testing.B) {
	r := rand.New(rand.NewPCG(61, 62))
	shapes := []gemmShape{
		{"cf/m=64,n=32768,k=864", false, false, 64, 32768, 864},
		{"fwd/M=4096,K=864,N=64", false, false, 4096, 64, 864},
		{"fwd/M=4096,K=432,N=16", false, false, 4096, 16, 432},
		{"fwd/M=4096,K=216,N=8", false, false, 4096, 8, 216},
		{"wgrad/M=4096,K=864,N=64", true, false, 864, 64, 4096},
		{"igrad/M=4096,K=864,N=64", false, true, 4096, 864, 64},
	}
	for _, sh := range shapes {
		lda, ldb := sh.k, sh.n
		if sh.transA {
			lda = sh.m
		}
		if sh.transB {
			ldb = sh.k
		}
		a := randSlice(r, sh.m*sh.k)
		bm := randSlice(r, sh.k*sh.n)
		c := make([]float32, sh.m*sh.n)
		for _, prec := range []Prec{FP32, BF16} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%v/t=%d", sh.name, prec, threads), func(b *testing.B) {
					if prec == BF16 && !HasBF16() {
						b.Skip("this CPU has no AVX-512-BF16")
					}
					defer SetThreads(Threads())
					SetThreads(threads)
					defer precision.Store(precision.Load())
					if err := SetPrecision(prec); err != nil {
						b.Fatal(err)
					}
					loop(b, 2*float64(sh.m)*float64(sh.n)*float64(sh.k), func() {
						Sgemm(sh.transA, sh.transB, sh.m, sh.n, sh.k, 1, a, lda, bm, ldb, 0, c, sh.n)
					})
				})
			}
		}
	}
}

// BenchmarkBF16MicroKernel times the bfloat16 kernels on L1-resident packed
// panels (kp pairs: 2·kp k values), against the float32 kernels' ceiling in
// BenchmarkMicroKernel.
func BenchmarkBF16MicroKernel(b *testing.B) {
	var kerns []*bf16Kernel
	for _, set := range []*bf16Set{bf16Asm, bf16Go} {
		if set != nil {
			kerns = append(kerns, set.wide, set.narrow)
		}
	}
	for _, kern := range kerns {
		for _, kp := range []int{64, 128, 216} {
			for _, rowMajor := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/kp=%d/rowmajorA=%v", kern.name, kp, rowMajor), func(b *testing.B) {
					rs, cs := uintptr(4), uintptr(64)
					if rowMajor {
						rs, cs = uintptr(kp)*4, 4
					}
					ap := make([]uint32, kp*16)
					bp := make([]uint32, kp*16)
					for i := range ap {
						ap[i], bp[i] = bf16Pair(float32(i%7), 0.5), bf16Pair(0.25, float32(i%5))
					}
					c := make([]float32, 16*16)
					loop(b, 2*16*16*2*float64(kp), func() {
						kern.fn(kp, unsafe.Pointer(&ap[0]), rs, cs, unsafe.Pointer(&bp[0]), unsafe.Pointer(&c[0]), uintptr(kern.nr)*4, 1, 0)
					})
				})
			}
		}
	}
}

// BenchmarkBF16Convert times the packing conversions on L2-resident rows
// (4096 floats): bytes of float32 read per second.
func BenchmarkBF16Convert(b *testing.B) {
	const n = 4096
	src := make([]float32, 2*n)
	for i := range src {
		src[i] = float32(i) * 0.37
	}
	dst := make([]uint32, n)
	b.Run("pairSeq", func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			pairSeq(dst[:n/2], src[:n], 0)
		}
	})
	b.Run("pairRowsK", func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			pairRowsK(dst, 16, src, n/2, 2, n/2)
		}
	})
}

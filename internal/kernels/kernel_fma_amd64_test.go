//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// fmaEmulation is a pure-Go micro-kernel with the assembly kernels' exact
// arithmetic: per element acc = fma(A(i,p), B[p][j], acc) for increasing p
// (one rounding per step), then C = fma(beta, C, alpha*acc), or alpha*acc
// when beta == 0. The assembly kernels must match it bit for bit.
func fmaEmulation(mr, nr int) *microKernel {
	fn := func(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr) {
		for t := 0; t < tiles; t++ {
			at, ct := unsafe.Add(a, uintptr(t)*aStep), unsafe.Add(c, uintptr(t)*cStep)
			for i := 0; i < mr; i++ {
				ci := unsafe.Slice((*float32)(unsafe.Add(ct, uintptr(i)*ldc)), nr)
				for j := 0; j < nr; j++ {
					var acc float32
					for p := 0; p < k; p++ {
						ai := *(*float32)(unsafe.Add(at, uintptr(i)*rsA+uintptr(p)*csA))
						bj := *(*float32)(unsafe.Add(b, uintptr(p*nr+j)*4))
						acc = fma32(ai, bj, acc)
					}
					if beta == 0 {
						ci[j] = alpha * acc
					} else {
						ci[j] = fma32(beta, ci[j], alpha*acc)
					}
				}
			}
		}
	}
	return &microKernel{name: fmt.Sprintf("fma-emulation-%dx%d", mr, nr), mr: mr, nr: nr, fn: fn}
}

// TestAsmKernelsExact holds every assembly GEMM micro-kernel runnable on this
// CPU (AVX2 6×16 and 12×8, and the AVX-512F 6×32 and 12×16 where the CPU has them) to
// the Go FMA emulation bit for bit: packed, row-major and transposed A,
// k across the 8-step unrolling, both beta branches, several tiles per call.
// Passed with the AVX-512 kernel executing on an AMD EPYC Zen 4
// (AVX-512F/BW/DQ/VL/BF16), 2026-12-01, and with the 12×16 too on an AMD
// EPYC Zen 5 (family 26, full-width AVX-512), 2026-12-02.
func TestAsmKernelsExact(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2+FMA: no assembly GEMM kernels to test")
	}
	if !hasAVX512 {
		t.Log("this CPU has no AVX-512F: the 6×32 and 12×16 AVX-512 kernels are not tested here")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, kern := range asmKernels() {
		mr, nr := kern.mr, kern.nr
		emu := fmaEmulation(mr, nr)
		for _, k := range []int{1, 2, 7, 8, 9, 16, 23, 64, 131} {
			for _, beta := range []float32{0, 1, -0.75} {
				for mode := 0; mode < 3; mode++ {
					const tiles = 2
					var a []float32
					var rs, cs, aStep uintptr
					switch mode {
					case 0: // packed panels
						a = fillMat(r, tiles*k, mr, mr)
						rs, cs, aStep = 4, uintptr(mr)*4, uintptr(k*mr)*4
					case 1: // row-major, lda = k+3
						lda := k + 3
						a = fillMat(r, tiles*mr, lda, lda)
						rs, cs, aStep = uintptr(lda)*4, 4, uintptr(mr*lda)*4
					case 2: // transposed, lda = tiles*mr+5
						lda := tiles*mr + 5
						a = fillMat(r, k, lda, lda)
						rs, cs, aStep = 4, uintptr(lda)*4, uintptr(mr)*4
					}
					b := fillMat(r, k, nr, nr)
					ldc := nr + 1
					c0 := fillMat(r, tiles*mr, ldc, ldc)
					got := append([]float32(nil), c0...)
					want := append([]float32(nil), c0...)
					alpha := float32(1.25)
					args := func(c []float32) (unsafe.Pointer, uintptr, uintptr) {
						return unsafe.Pointer(&c[0]), uintptr(ldc) * 4, uintptr(mr*ldc) * 4
					}
					cp, ldcB, cStep := args(got)
					kern.fn(k, unsafe.Pointer(&a[0]), rs, cs, unsafe.Pointer(&b[0]), cp, ldcB, 64, 8, alpha, beta, tiles, aStep, cStep)
					cp, ldcB, cStep = args(want)
					emu.fn(k, unsafe.Pointer(&a[0]), rs, cs, unsafe.Pointer(&b[0]), cp, ldcB, 0, 0, alpha, beta, tiles, aStep, cStep)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s k=%d beta=%g mode=%d: C[%d] = %g (%#x), emulation %g (%#x)", kern.name, k, beta, mode,
								i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// TestAVX512SgemmMatchesAVX2: the blocked driver gives bit-identical results
// with and without the AVX-512 kernel (both run the same fused
// multiply-adds in the same order), on odd sizes, both transposes, both
// thread counts, Sgemm and SgemmPacked.
func TestAVX512SgemmMatchesAVX2(t *testing.T) {
	if !hasAVX512 {
		t.Skip("this CPU has no AVX-512F: the AVX-512 GEMM kernel cannot run here")
	}
	avx2 := kernelPair{wide: avx2Wide, narrow: avx2Narrow, dot: avx2Dot, pack6: pack6AVX2, packT: packTransAVX2, name: "avx2+fma"}
	avx512 := avx2
	avx512.wide, avx512.wider, avx512.name = avx512Mid, avx512Wide, "avx512+avx2"
	r := rand.New(rand.NewPCG(33, 34))
	for trial := 0; trial < 60; trial++ {
		tc := gemmCase{transA: trial&1 != 0, transB: trial&2 != 0,
			m: 1 + r.IntN(70), n: 9 + r.IntN(98), k: 1 + r.IntN(600),
			alpha: []float32{1, 0.5}[trial%2], beta: []float32{0, 1, -0.5}[trial%3]}
		tc.lda, tc.ldb, tc.ldc = tc.k+trial%3, tc.n+trial%2, tc.n+1
		if tc.transA {
			tc.lda = tc.m + trial%3
		}
		if tc.transB {
			tc.ldb = tc.k + trial%2
		}
		a, b, c := tc.operands(r)
		for _, threads := range []int{1, 2} {
			want := append([]float32(nil), c...)
			got := append([]float32(nil), c...)
			sgemmBlocked(avx2, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, want, tc.ldc)
			sgemmBlocked(avx512, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v threads=%d: C[%d] = %g with AVX-512, %g with AVX2", tc, threads, i, got[i], want[i])
				}
			}
		}
	}
}

// TestSetAVX512Switches holds SetAVX512 to what FESS_AVX512=0 selects at
// start-up: off, the AVX2 set and none of the AVX-512 loops; on again, the
// set chosen at start-up (here, the default one).
func TestSetAVX512Switches(t *testing.T) {
	if !useAVX512 {
		t.Skip("the AVX-512 kernels are not in use here (no AVX-512F, or FESS_AVX512=0)")
	}
	saved := kernelSet
	defer func() { kernelSet = saved; SetAVX512(true) }()
	SetAVX512(false)
	if kernelSet.wider != nil || kernelSet.wide != avx2Wide || kernelSet.name != "avx2+fma" || useAVX512 || poolAVX512 || winoIn512 || dropAsm {
		t.Fatalf("SetAVX512(false) left %q (wider %v), avx512 %v, pool %v, wino %v, drop %v",
			kernelSet.name, kernelSet.wider != nil, useAVX512, poolAVX512, winoIn512, dropAsm)
	}
	SetAVX512(true)
	if kernelSet.name != saved.name || kernelSet.wide != saved.wide || kernelSet.wider != saved.wider || !useAVX512 || !poolAVX512 || winoIn512 != cpu.X86.HasAVX512VL || dropAsm != cpu.X86.HasAVX512DQ {
		t.Fatalf("SetAVX512(true) gave %q, not the start-up set %q", kernelSet.name, saved.name)
	}
}

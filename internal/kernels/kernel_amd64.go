//go:build amd64 && !purego

package kernels

import (
	"os"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The assembly micro-kernels in kernel_amd64.s; see microKernel for the
// contract they share with the pure-Go kernel.

//go:noescape
func kern6x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)

//go:noescape
func kern12x8(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)

// kern12x16 is the AVX-512F widening of kern12x8 (kernel_avx512_amd64.s):
// twelve 16-lane rows, for n of 9 to 16.
//
//go:noescape
func kern12x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)

// kern6x32 is the AVX-512F widening of kern6x16 (kernel_avx512_amd64.s).
// TestAsmKernelsExact holds it bit for bit to the Go FMA emulation and
// TestAVX512SgemmMatchesAVX2 the whole Sgemm with it to the AVX2 set; both
// passed executing it on an AMD EPYC Zen 4 (AVX-512F/BW/DQ/VL/BF16),
// 2026-12-01.
//
//go:noescape
func kern6x32(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)

//go:noescape
func dot2x4(k int, a unsafe.Pointer, lda uintptr, bt unsafe.Pointer, ldbt uintptr, c unsafe.Pointer, ldc uintptr, alpha, beta float32, mask unsafe.Pointer)

// pack6AVX2 stores, for p < 8*blocks, column p of the 6-row block at src
// (rows lda bytes apart) as six consecutive floats at dst + p*ds.
//
//go:noescape
func pack6AVX2(dst, src unsafe.Pointer, lda uintptr, blocks int, ds uintptr)

// packTransAVX2 packs npan full mr-row panels (mr = 6 or 12) of a
// transposed A: for p < kb, q < npan, the mr floats at src + p*lda + q*mr*4
// go to dst + (q*kb + p)*mr*4.
//
//go:noescape
func packTransAVX2(dst, src unsafe.Pointer, lda uintptr, kb, npan, mr int)

// fmaPeakAVX2 runs n iterations of 12 independent register-only 8-lane FMAs
// (192 flops per iteration); it measures the core's FMA throughput.
//
//go:noescape
func fmaPeakAVX2(n int)

// fmaPeakAVX512 is fmaPeakAVX2 with 16-lane FMAs (384 flops per iteration;
// kernel_avx512_amd64.s); only on CPUs with AVX-512F.
//
//go:noescape
func fmaPeakAVX512(n int)

var (
	avx2Wide   = &microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: kern6x16}
	avx2Narrow = &microKernel{name: "avx2-12x8", mr: 12, nr: 8, fn: kern12x8}
	avx2Dot    = &dotKernel{name: "avx2-dot2x4", fn: dot2x4}
	avx512Wide = &microKernel{name: "avx512-6x32", mr: 6, nr: 32, fn: kern6x32}
	avx512Mid  = &microKernel{name: "avx512-12x16", mr: 12, nr: 16, fn: kern12x16}
)

// hasAVX512 reports whether the AVX-512F kernel can run on this CPU.
var hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F

// hasAVX2 reports whether the AVX2+FMA kernels can run on this CPU.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useAVX512 puts the AVX-512 kernels into Sgemm's set (6×32 for n > 16,
// 12×16 for 8 < n <= 16) on every
// CPU with AVX-512F. The environment variable FESS_AVX512=0 turns it off
// (AVX2 kernels only, e.g. to compare speeds or on a CPU whose AVX-512
// lowers its clock); any other value, or none, leaves it on. On CPUs without
// AVX-512F it is always off. The AVX-512 and AVX2 sets give bit-identical
// results (TestAVX512SgemmMatchesAVX2), so the choice affects only speed.
var useAVX512 = hasAVX512 && os.Getenv("FESS_AVX512") != "0"

func init() {
	if hasAVX2 {
		kernelSet = kernelPair{wide: avx2Wide, narrow: avx2Narrow, dot: avx2Dot, pack6: pack6AVX2, packT: packTransAVX2, name: "avx2+fma"}
	}
	if useAVX512 {
		setAVX512(true)
	}
}

// SetAVX512Mid switches, on AVX-512 CPUs with the AVX-512 set in use, the
// kernel for 9 to 16 columns between the AVX-512 12×16 (on, the default)
// and the AVX2 6×16 of earlier versions (off), for the A/B benchmarks; the
// set's name then ends in "-6x16" so that caches keyed by it keep the two
// apart. The results are the same bits either way.
func SetAVX512Mid(on bool) {
	if !useAVX512 {
		return
	}
	if on {
		kernelSet.wide, kernelSet.name = avx512Mid, "avx512+avx2"
	} else {
		kernelSet.wide, kernelSet.name = avx2Wide, "avx512+avx2-6x16"
	}
}

// SetAVX512 switches, on AVX-512 CPUs, every float32 AVX-512 kernel
// (Sgemm's 6×32 and 12×16, the Winograd transforms, max pooling, the
// dropout mask) on or off at run time, as FESS_AVX512=0 does at start-up,
// for the A/B benchmarks; the kernel set's name changes with it, so caches
// keyed by it keep the two apart. On (the default) it cannot enable what
// FESS_AVX512=0 or the CPU left off. The results are the same bits either
// way (TestAVX512SgemmMatchesAVX2 and the transforms' tests).
func SetAVX512(on bool) {
	if hasAVX512 && os.Getenv("FESS_AVX512") != "0" {
		setAVX512(on)
	}
}

// setAVX512 puts the AVX-512 kernels in or out of use: the start-up
// selection (init) and SetAVX512 share it.
func setAVX512(on bool) {
	useAVX512 = on
	poolAVX512 = on
	winoIn512 = on && cpu.X86.HasAVX512VL
	dropAsm = on && cpu.X86.HasAVX512DQ
	if on {
		kernelSet.wider = avx512Wide
		SetAVX512Mid(true)
	} else {
		kernelSet.wider, kernelSet.wide, kernelSet.name = nil, avx2Wide, "avx2+fma"
	}
}

// asmKernels lists the assembly kernels runnable here, for the tests.
func asmKernels() []*microKernel {
	var ks []*microKernel
	if hasAVX2 {
		ks = append(ks, avx2Wide, avx2Narrow)
	}
	if hasAVX512 {
		ks = append(ks, avx512Wide, avx512Mid)
	}
	return ks
}

// asmDotKernels lists the assembly dot kernels runnable here, for the tests.
func asmDotKernels() []*dotKernel {
	if !hasAVX2 {
		return nil
	}
	return []*dotKernel{avx2Dot}
}

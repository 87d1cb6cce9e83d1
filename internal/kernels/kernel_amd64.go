//go:build amd64 && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The assembly micro-kernels in kernel_amd64.s; see microKernel for the
// contract they share with the pure-Go kernel.

//go:noescape
func kern6x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32)

//go:noescape
func kern12x8(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32)

//go:noescape
func dot2x4(k int, a unsafe.Pointer, lda uintptr, bt unsafe.Pointer, ldbt uintptr, c unsafe.Pointer, ldc uintptr, alpha, beta float32, mask unsafe.Pointer)

// pack6AVX2 stores, for p < 8*blocks, column p of the 6-row block at src
// (rows lda bytes apart) as six consecutive floats at dst + p*ds.
//
//go:noescape
func pack6AVX2(dst, src unsafe.Pointer, lda uintptr, blocks int, ds uintptr)

// fmaPeakAVX2 runs n iterations of 12 independent register-only 8-lane FMAs
// (192 flops per iteration); it measures the core's FMA throughput.
//
//go:noescape
func fmaPeakAVX2(n int)

var (
	avx2Wide   = &microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: kern6x16}
	avx2Narrow = &microKernel{name: "avx2-12x8", mr: 12, nr: 8, fn: kern12x8}
	avx2Dot    = &dotKernel{name: "avx2-dot2x4", fn: dot2x4}
)

// hasAVX2 reports whether the AVX2+FMA kernels can run on this CPU.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func init() {
	if hasAVX2 {
		kernelSet = kernelPair{wide: avx2Wide, narrow: avx2Narrow, dot: avx2Dot, pack6: pack6AVX2, name: "avx2+fma"}
	}
}

// asmKernels lists the assembly kernels runnable here, for the tests.
func asmKernels() []*microKernel {
	if !hasAVX2 {
		return nil
	}
	return []*microKernel{avx2Wide, avx2Narrow}
}

// asmDotKernels lists the assembly dot kernels runnable here, for the tests.
func asmDotKernels() []*dotKernel {
	if !hasAVX2 {
		return nil
	}
	return []*dotKernel{avx2Dot}
}

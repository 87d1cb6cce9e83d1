package kernels

import "unsafe"

// microKernel is one register-tile kernel of the blocked GEMM. fn computes
//
//	C[i][j] = alpha * Σ_{p<k} A(i,p)·B[p][j] + beta * C[i][j],  i < mr, j < nr,
//
// where A(i,p) is the float32 at a + i*rsA + p*csA (byte strides: a packed
// panel has rsA = 4, csA = 4*mr; a row-major matrix read in place has
// rsA = 4*lda, csA = 4; its transpose rsA = 4, csA = 4*lda), B is a packed
// panel holding nr floats per p, and C's rows are ldc bytes apart. When
// beta == 0, C is written without being read. pf is a prefetch hint: the
// assembly kernels touch A(i,p)+pf bytes ahead of use (prefetches never
// fault, so pf may point past A); it does not change the result. The sum runs over increasing p,
// so every kernel is deterministic; kernels differ from each other only by
// rounding (the assembly ones use fused multiply-adds).
type microKernel struct {
	name   string
	mr, nr int
	fn     func(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf uintptr, alpha, beta float32)
}

// Largest tile any kernel uses; sizes the write-back scratch tile.
const (
	maxMR = 12
	maxNR = 16
)

var (
	goWide   = &microKernel{name: "go-6x16", mr: 6, nr: 16, fn: kernGo6x16}
	goNarrow = &microKernel{name: "go-12x8", mr: 12, nr: 8, fn: kernGo12x8}
)

func kernGo6x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf uintptr, alpha, beta float32) {
	kernGo(6, 16, k, a, rsA, csA, b, c, ldc, pf, alpha, beta)
}

func kernGo12x8(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf uintptr, alpha, beta float32) {
	kernGo(12, 8, k, a, rsA, csA, b, c, ldc, pf, alpha, beta)
}

// kernGo is the portable micro-kernel: the same contract as the assembly
// ones, for any mr <= maxMR, nr <= maxNR.
func kernGo(mr, nr, k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf uintptr, alpha, beta float32) {
	var acc [maxMR * maxNR]float32
	for p := 0; p < k; p++ {
		bp := unsafe.Slice((*float32)(unsafe.Add(b, p*nr*4)), nr)
		ap := unsafe.Add(a, uintptr(p)*csA)
		for i := 0; i < mr; i++ {
			ai := *(*float32)(unsafe.Add(ap, uintptr(i)*rsA))
			row := acc[i*nr : i*nr+nr]
			for j, bv := range bp {
				row[j] += ai * bv
			}
		}
	}
	for i := 0; i < mr; i++ {
		ci := unsafe.Slice((*float32)(unsafe.Add(c, uintptr(i)*ldc)), nr)
		row := acc[i*nr : i*nr+nr]
		if beta == 0 {
			for j := range ci {
				ci[j] = alpha * row[j]
			}
		} else {
			for j := range ci {
				ci[j] = alpha*row[j] + beta*ci[j]
			}
		}
	}
}

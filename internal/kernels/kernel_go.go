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
// beta == 0, C is written without being read. pf and pfs are a prefetch
// hint: every 8 p the assembly kernels prefetch a few lines at A(0,p)+pf,
// +pfs, +2*pfs, ... (prefetches never fault, so these may point past A); the
// hint does not change the result. One call runs tiles tiles that share the
// B panel: tile t reads A at a + t*aStep and writes C at c + t*cStep. The sum runs over increasing p,
// so every kernel is deterministic; kernels differ from each other only by
// rounding (the assembly ones use fused multiply-adds).
type microKernel struct {
	name   string
	mr, nr int
	fn     func(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)
}

// Largest tile any kernel uses; sizes the write-back scratch tile. The
// portable kernels below are plain loops over fixed-size arrays (no bounds
// checks in the inner loop); Go does not vectorise them.
const (
	maxMR = 12
	maxNR = 32
)

var (
	goWide   = &microKernel{name: "go-6x16", mr: 6, nr: 16, fn: kernGo6x16}
	goNarrow = &microKernel{name: "go-12x8", mr: 12, nr: 8, fn: kernGo12x8}
	// goWider mirrors the AVX-512 6×32 kernel's geometry, so the driver's
	// handling of a third, wider kernel is tested on every machine.
	goWider = &microKernel{name: "go-6x32", mr: 6, nr: 32, fn: kernGo6x32}
)

func kernGo6x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr) {
	for t := 0; t < tiles; t++ {
		kernGo6x16Tile(k, unsafe.Add(a, uintptr(t)*aStep), rsA, csA, b, unsafe.Add(c, uintptr(t)*cStep), ldc, alpha, beta)
	}
}

func kernGo6x16Tile(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	var acc [6][16]float32
	for p := 0; p < k; p++ {
		bp := (*[16]float32)(unsafe.Add(b, p*16*4))
		ap := unsafe.Add(a, uintptr(p)*csA)
		for i := range acc {
			ai := *(*float32)(unsafe.Add(ap, uintptr(i)*rsA))
			row := &acc[i]
			for j := range row {
				row[j] += ai * bp[j]
			}
		}
	}
	for i := range acc {
		writeRow(acc[i][:], unsafe.Add(c, uintptr(i)*ldc), alpha, beta)
	}
}

func kernGo6x32(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr) {
	for t := 0; t < tiles; t++ {
		kernGo6x32Tile(k, unsafe.Add(a, uintptr(t)*aStep), rsA, csA, b, unsafe.Add(c, uintptr(t)*cStep), ldc, alpha, beta)
	}
}

func kernGo6x32Tile(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	var acc [6][32]float32
	for p := 0; p < k; p++ {
		bp := (*[32]float32)(unsafe.Add(b, p*32*4))
		ap := unsafe.Add(a, uintptr(p)*csA)
		for i := range acc {
			ai := *(*float32)(unsafe.Add(ap, uintptr(i)*rsA))
			row := &acc[i]
			for j := range row {
				row[j] += ai * bp[j]
			}
		}
	}
	for i := range acc {
		writeRow(acc[i][:], unsafe.Add(c, uintptr(i)*ldc), alpha, beta)
	}
}

func kernGo12x8(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr) {
	for t := 0; t < tiles; t++ {
		kernGo12x8Tile(k, unsafe.Add(a, uintptr(t)*aStep), rsA, csA, b, unsafe.Add(c, uintptr(t)*cStep), ldc, alpha, beta)
	}
}

func kernGo12x8Tile(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	var acc [12][8]float32
	for p := 0; p < k; p++ {
		bp := (*[8]float32)(unsafe.Add(b, p*8*4))
		ap := unsafe.Add(a, uintptr(p)*csA)
		for i := range acc {
			ai := *(*float32)(unsafe.Add(ap, uintptr(i)*rsA))
			row := &acc[i]
			for j := range row {
				row[j] += ai * bp[j]
			}
		}
	}
	for i := range acc {
		writeRow(acc[i][:], unsafe.Add(c, uintptr(i)*ldc), alpha, beta)
	}
}

// writeRow stores C[j] = alpha*acc[j] + beta*C[j] (C[j] = alpha*acc[j] when
// beta == 0, without reading C) for one row of a tile.
func writeRow(acc []float32, c unsafe.Pointer, alpha, beta float32) {
	ci := unsafe.Slice((*float32)(c), len(acc))
	if beta == 0 {
		for j, v := range acc {
			ci[j] = alpha * v
		}
		return
	}
	for j, v := range acc {
		ci[j] = alpha*v + beta*ci[j]
	}
}

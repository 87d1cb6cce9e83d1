//go:build amd64 && !purego

package kernels

import "unsafe"

// rowsAsm reports whether the AVX2 row loops run.
var rowsAsm = hasAVX2

//go:noescape
func addBiasAVX2(rows unsafe.Pointer, n, c8, stride int, bias unsafe.Pointer)

func addBiasAsm(rows []float32, n, c8, c int, bias []float32) {
	addBiasAVX2(unsafe.Pointer(&rows[0]), n, c8, c*4, unsafe.Pointer(&bias[0]))
}

// colSumsAsm runs BatchNorm's sum loop (sumWindows) on the first c8 of the c
// channels: windows of 16 (or 8) channels whose float64 accumulators stay
// in registers over a block of rows, rows in order. (An earlier loop added
// each row to the sums in memory; with 8 channels every row then waited on
// the previous row's store.)
func colSumsAsm(acc []float64, g []float32, n, c8, c int) { sumWindows(acc, g, n, c8, c) }

//go:noescape
func addToAVX2(dst, src unsafe.Pointer, n int)

func addToAsm(dst, src []float32, n8 int) {
	addToAVX2(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n8)
}

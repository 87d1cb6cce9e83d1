//go:build amd64 && !purego

package kernels

import "unsafe"

// rowsAsm reports whether the AVX2 row loops run.
var rowsAsm = hasAVX2

//go:noescape
func addBiasAVX2(rows unsafe.Pointer, n, c8, stride int, bias unsafe.Pointer)

//go:noescape
func colSumsAVX2(acc unsafe.Pointer, src unsafe.Pointer, n, c8, stride int)

func addBiasAsm(rows []float32, n, c8, c int, bias []float32) {
	addBiasAVX2(unsafe.Pointer(&rows[0]), n, c8, c*4, unsafe.Pointer(&bias[0]))
}

func colSumsAsm(acc []float64, g []float32, n, c8, c int) {
	colSumsAVX2(unsafe.Pointer(&acc[0]), unsafe.Pointer(&g[0]), n, c8, c*4)
}

//go:noescape
func addToAVX2(dst, src unsafe.Pointer, n int)

func addToAsm(dst, src []float32, n8 int) {
	addToAVX2(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n8)
}

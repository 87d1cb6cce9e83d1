//go:build amd64 && !purego

package kernels

import "unsafe"

// sigmoidAsm: the AVX2 sigmoid loop (sigmoid_amd64.s) runs; its test holds it
// bit for bit to Sigmoid1.
var sigmoidAsm = hasAVX2

//go:noescape
func sigmoidAVX2(dst, src unsafe.Pointer, n8 int)

func sigmoidAsmLoop(dst, src []float32) {
	sigmoidAVX2(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), len(src)/8)
}

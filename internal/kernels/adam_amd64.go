//go:build amd64 && !purego

package kernels

import "unsafe"

// adamAsm reports whether the AVX2 Adam loop runs.
var adamAsm = hasAVX2

//go:noescape
func adamStepAVX2(p, grad, m, v unsafe.Pointer, n int, c *[7]float32)

func adamAVX2(p, g, m, v []float32, n8 int, c *[7]float32) {
	adamStepAVX2(unsafe.Pointer(&p[0]), unsafe.Pointer(&g[0]), unsafe.Pointer(&m[0]), unsafe.Pointer(&v[0]), n8, c)
}

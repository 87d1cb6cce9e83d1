//go:build amd64 && !purego

package kernels

import "unsafe"

// conv1Asm: the AVX2/FMA first-layer row loop (conv1_amd64.s) runs;
// TestConv1RowAsmMatchesGo holds it to conv1RowGo bit for bit (it passed
// on an AMD EPYC Zen 4, 2026-12-02).
var conv1Asm = hasAVX2

//go:noescape
func conv1RowAVX2(out, rows, w unsafe.Pointer, nx, co8 int, ldo uintptr)

func conv1RowAsm(out []float32, in *[9][]float32, w []float32, nx, co int) {
	var rows [9]unsafe.Pointer
	for r := range rows {
		rows[r] = unsafe.Pointer(&in[r][0])
	}
	conv1RowAVX2(unsafe.Pointer(&out[0]), unsafe.Pointer(&rows[0]), unsafe.Pointer(&w[0]), nx, co/8, uintptr(co)*4)
}

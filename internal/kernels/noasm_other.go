//go:build !amd64 || purego

package kernels

import "unsafe"

// Without assembly the portable Go versions (winograd.go, bn.go, maxpool.go)
// serve every call; these stubs are never reached.

var winoAsm = false

func winoInAsm(dst []float32, ds int, src []float32, sx, sy, sz, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

var winoInBF16Asm = false

var winoIn512 = false

func winoInBF16Chunks(dst []uint32, ds int, src []float32, sx, sy, sz, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func winoOutAsm(dst []float32, sx, sy, sz int, src []float32, ss, n8 int, bias []float32, acc bool, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func winoGradAsm(dst []float32, ds int, src []float32, sx, sy, sz, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func winoKernAsm(u []float32, ds int, w []float32, ss, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func winoKernAdjAsm(gw []float32, ds int, du []float32, ss, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

var bnAsm = false

func bnSumAsm(acc []float64, x []float32, rows, c int) { panic("kernels: no assembly") }

func bnSqDevAsm(acc []float64, x []float32, mu []float64, rows, c int) { panic("kernels: no assembly") }

func bnGradSumsAsm(gs, gd []float64, x, g, o, mean, invstd []float32, rows, c int, relu bool) {
	panic("kernels: no assembly")
}

func bnApplyAsm(out, x, scale, shift []float32, rows, c int, relu bool) {
	panic("kernels: no assembly")
}

func bnGradInputAsm(gx, x, g, o, mean, invstd, scale, a, b []float32, rows, c int, relu, set bool) {
	panic("kernels: no assembly")
}

var poolAsm = false

var poolAVX512 = false

var hasAVX512 = false

func maxPool2Asm(out []float32, arg []int32, x []float32, base, ow, c, sy, sz int) {
	panic("kernels: no assembly")
}

var bf16CvtAsm = false

func bf16PairSeq(dst, src unsafe.Pointer, npairs int, pf uintptr) { panic("kernels: no assembly") }

var dropAsm = false

func dropMaskAsm(d []float32, base, key, thresh uint64, s float32, grad int, bits []uint16) {
	panic("kernels: no assembly")
}

func dropApplyAsm(d []float32, bits []uint16, s float32, grad int) {
	panic("kernels: no assembly")
}

func bf16PairRowsK(dst, src unsafe.Pointer, ld uintptr, kp, n int, stride, pstride uintptr) {
	panic("kernels: no assembly")
}

var wino4Asm = false

func w4ExpandAsm(k int, dst []float32, ds int, src []float32, sx, sy, sz, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func w4ReduceAsm(k int, dst []float32, sx, sy, sz int, src []float32, ss, n8 int, bias []float32, acc bool, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

func w4InBF16Asm(dst []uint32, ds int, src []float32, sx, sy, sz, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

var rowsAsm = false

func addBiasAsm(rows []float32, n, c8, c int, bias []float32) {
	panic("kernels: no assembly row loops on this build")
}

func colSumsAsm(acc []float64, g []float32, n, c8, c int) {
	panic("kernels: no assembly row loops on this build")
}

func w4InRowsAsm(dst []float32, pairs []uint32, ds int, src []float32, off *[36]int, zeros []float32, sx, lo, hi, n8 int, tmp []float32) {
	panic("kernels: no assembly Winograd transforms on this build")
}

var adamAsm = false

func adamAVX2(p, g, m, v []float32, n8 int, c *[7]float32) {
	panic("kernels: no assembly Adam on this build")
}

func addToAsm(dst, src []float32, n8 int) {
	panic("kernels: no assembly row loops on this build")
}

var conv1Asm = false

func conv1RowAsm(out []float32, in *[9][]float32, w []float32, nx, co int) {
	panic("kernels: no assembly first-layer loop on this build")
}

var sigmoidAsm = false

func sigmoidAsmLoop(dst, src []float32) { panic("kernels: no assembly") }

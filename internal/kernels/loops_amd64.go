//go:build amd64 && !purego

package kernels

// Declarations and wrappers of the AVX2 BatchNorm loops (bn_amd64.s) and max
// pool (maxpool_amd64.s).

import "unsafe"

//go:noescape
func bnSumAVX2(acc unsafe.Pointer, x unsafe.Pointer, rows int, stride uintptr, wide int)

//go:noescape
func bnSqDevAVX2(acc, x, mu unsafe.Pointer, rows int, stride uintptr, wide int)

//go:noescape
func bnGradSumsAVX2(gs, gd, x, gy, o, mean, invstd unsafe.Pointer, rows int, stride uintptr, relu int)

//go:noescape
func bnApplyAVX2(out, x, scale, shift unsafe.Pointer, rows, chunks, relu int)

//go:noescape
func bnGradInputAVX2(gx, x, gy, o, pc unsafe.Pointer, rows, chunks, flags int)

// bnAsm reports whether the AVX2 BatchNorm loops run.
var bnAsm = hasAVX2

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The sums sweep a block of rows once per window of 16 channels (8 for the
// last window when c is an odd multiple of 8; always 8 for the gradient
// sums), keeping the window's accumulators in registers, and go through
// the rows in blocks of bnBlockRows(c) so that the later windows find the
// block in cache (one sweep of all the rows per window streamed every
// window's cache lines from memory again). Each channel still adds its
// rows in order, so the sums are the same bits either way.

// bnBlockRows returns the rows per block.
func bnBlockRows(c int) int { return max(8, bnBlockFloats/c) }

func bnSumAsm(acc []float64, x []float32, rows, c int) { sumWindows(acc, x, rows, c, c) }

// sumWindows adds the first c8 (a multiple of 8) of the c channels of each
// row of x to acc, rows in order, window by window within row blocks.
func sumWindows(acc []float64, x []float32, rows, c8, c int) {
	br := bnBlockRows(c)
	for r0 := 0; r0 < rows; r0 += br {
		nr := min(br, rows-r0)
		for j := 0; j < c8; {
			wide := c8-j >= 16
			bnSumAVX2(unsafe.Pointer(&acc[j]), unsafe.Pointer(&x[r0*c+j]), nr, uintptr(c)*4, b2i(wide))
			j += 8 + 8*b2i(wide)
		}
	}
}

func bnSqDevAsm(acc []float64, x []float32, mu []float64, rows, c int) {
	br := bnBlockRows(c)
	for r0 := 0; r0 < rows; r0 += br {
		nr := min(br, rows-r0)
		for j := 0; j < c; {
			wide := c-j >= 16
			bnSqDevAVX2(unsafe.Pointer(&acc[j]), unsafe.Pointer(&x[r0*c+j]), unsafe.Pointer(&mu[j]), nr, uintptr(c)*4, b2i(wide))
			j += 8 + 8*b2i(wide)
		}
	}
}

func bnGradSumsAsm(gs, gd []float64, x, g, o, mean, invstd []float32, rows, c int, relu bool) {
	br := bnBlockRows(c)
	for r0 := 0; r0 < rows; r0 += br {
		nr := min(br, rows-r0)
		for j := 0; j < c; j += 8 {
			k := r0*c + j
			op := unsafe.Pointer(&x[k]) // not read without relu
			if relu {
				op = unsafe.Pointer(&o[k])
			}
			bnGradSumsAVX2(unsafe.Pointer(&gs[j]), unsafe.Pointer(&gd[j]), unsafe.Pointer(&x[k]), unsafe.Pointer(&g[k]),
				op, unsafe.Pointer(&mean[j]), unsafe.Pointer(&invstd[j]), nr, uintptr(c)*4, b2i(relu))
		}
	}
}

func bnApplyAsm(out, x, scale, shift []float32, rows, c int, relu bool) {
	bnApplyAVX2(unsafe.Pointer(&out[0]), unsafe.Pointer(&x[0]), unsafe.Pointer(&scale[0]), unsafe.Pointer(&shift[0]),
		rows, c/8, b2i(relu))
}

func bnGradInputAsm(gx, x, g, o, mean, invstd, scale, a, b []float32, rows, c int, relu, set bool) {
	// per-channel operands interleaved per 8-channel chunk, so the loop
	// walks one pointer
	pc := make([]float32, 5*c)
	for k := 0; k < c/8; k++ {
		for i, s := range [][]float32{mean, invstd, scale, a, b} {
			copy(pc[k*40+i*8:k*40+i*8+8], s[k*8:k*8+8])
		}
	}
	op := unsafe.Pointer(&x[0])
	if relu {
		op = unsafe.Pointer(&o[0])
	}
	bnGradInputAVX2(unsafe.Pointer(&gx[0]), unsafe.Pointer(&x[0]), unsafe.Pointer(&g[0]), op, unsafe.Pointer(&pc[0]),
		rows, c/8, b2i(relu)|b2i(set)<<1)
}

//go:noescape
func maxPool2AVX2(out, arg, x unsafe.Pointer, ow, chunks int, c4, sy4, sz4 uintptr, base int, didx unsafe.Pointer)

//go:noescape
func maxPool2AVX512(out, arg, x unsafe.Pointer, ow, chunks int, c4, sy4, sz4 uintptr, base int, didx unsafe.Pointer)

// poolAsm reports whether the AVX2 max pool runs.
var poolAsm = hasAVX2

// poolAVX512 selects the AVX-512F max pool for channel counts that are a
// multiple of 16, on the CPUs where Sgemm uses AVX-512 (useAVX512:
// FESS_AVX512=0 turns it off). TestMaxPool2RowAsmMatchesGo holds it to the
// portable pool bit for bit, indices included; it passed on an AMD EPYC
// Zen 4, 2026-12-01.
var poolAVX512 = useAVX512

func maxPool2Asm(out []float32, arg []int32, x []float32, base, ow, c, sy, sz int) {
	var didx [8]int32
	for e := 0; e < 8; e++ {
		didx[e] = int32((e>>2)*sz + (e>>1&1)*sy + (e&1)*c)
	}
	var ap unsafe.Pointer
	if arg != nil {
		ap = unsafe.Pointer(&arg[0])
	}
	if poolAVX512 && c%16 == 0 {
		maxPool2AVX512(unsafe.Pointer(&out[0]), ap, unsafe.Pointer(&x[base]), ow, c/16, uintptr(c)*4, uintptr(sy)*4, uintptr(sz)*4,
			base, unsafe.Pointer(&didx[0]))
		return
	}
	maxPool2AVX2(unsafe.Pointer(&out[0]), ap, unsafe.Pointer(&x[base]), ow, c/8, uintptr(c)*4, uintptr(sy)*4, uintptr(sz)*4,
		base, unsafe.Pointer(&didx[0]))
}

package kernels

import "fmt"

// Conv1Row computes one output row of a 3×3×3 convolution of a
// one-channel volume (the U-Net's first layer) directly, without an
// im2col matrix: for output voxels x < nx and channels j < co,
//
//	out[x·co + j] = Σ_{p<27} in[p/3][x + p%3] · w[p·co + j]
//
// summed in increasing p as one fused multiply-add chain from +0, the
// order and rounding of the GEMM micro-kernels on the im2col matrix, so
// the result is the im2col path's bit for bit (the bias is added after, as
// there). in holds the nine input rows (kz·3 + ky) of the output row, each
// padded: in[r][x] is the input at x−1, with zeros at x = 0 and x = nx+1
// (and a zero row for a padding row); each needs nx+2 floats, w is
// [27][co]. co must be a multiple of 8 for the assembly (AVX2/FMA, four
// voxels per step); the Go version (exact FMA emulation) takes any co and
// the last voxels.
func Conv1Row(out []float32, in *[9][]float32, w []float32, nx, co int) {
	if nx < 0 || co <= 0 || len(out) < nx*co || len(w) < 27*co {
		panic(fmt.Sprintf("kernels.Conv1Row: %d voxels of %d channels into %d floats, weights %d", nx, co, len(out), len(w)))
	}
	for r, row := range in {
		if len(row) < nx+2 {
			panic(fmt.Sprintf("kernels.Conv1Row: input row %d has %d floats, need %d", r, len(row), nx+2))
		}
	}
	x4 := 0
	if conv1Asm && co%8 == 0 {
		x4 = nx &^ 3
		if x4 > 0 {
			conv1RowAsm(out, in, w, x4, co)
		}
	}
	conv1RowGo(out, in, w, x4, nx, co)
}

// Conv1Native reports whether Conv1Row runs on assembly here. Its Go
// version emulates each FMA exactly, for the tests; callers keep the im2col
// path where it is false (its GEMM is then the portable one, whose
// rounding the direct sum would not match).
func Conv1Native() bool { return conv1Asm }

func conv1RowGo(out []float32, in *[9][]float32, w []float32, x0, nx, co int) {
	for x := x0; x < nx; x++ {
		o := out[x*co : (x+1)*co]
		for j := range o {
			var acc float32
			for p := 0; p < 27; p++ {
				acc = fma32(in[p/3][x+p%3], w[p*co+j], acc)
			}
			o[j] = acc
		}
	}
}

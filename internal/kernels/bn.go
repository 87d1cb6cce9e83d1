package kernels

import (
	"fmt"
	"math"
)

// Per-channel loops of BatchNorm (and its fused ReLU) over a row-major
// [rows, c] block of channels-last activations. Sums accumulate in float64,
// each channel's in row order, so a block's result does not depend on how
// the channels are vectorised: the AVX2 versions (bn_amd64.s, eight
// channels per instruction, used when c is a multiple of 8) agree bit for
// bit with the portable ones below. Explicit conversions keep the Go
// compiler from fusing a multiply and an add into one rounding.

// bnBlockFloats is the floats of each input per block of rows (32 KiB) in
// the assembly sums (loops_amd64.go); BenchmarkBNSums also runs it at
// 1<<40, one sweep of all rows per channel window.
var bnBlockFloats = 8192

// BNSum adds Σ_r float64(x[r·c+j]) to acc[j].
func BNSum(acc []float64, x []float32, rows, c int) {
	checkBN("BNSum", rows, c, len(x), len(acc))
	if bnAsm && c%8 == 0 && rows > 0 {
		bnSumAsm(acc, x, rows, c)
		return
	}
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c : (r+1)*c] {
			acc[j] += float64(v)
		}
	}
}

// BNSumSqDev adds Σ_r (float64(x[r·c+j]) − mu[j])² to acc[j].
func BNSumSqDev(acc []float64, x []float32, mu []float64, rows, c int) {
	checkBN("BNSumSqDev", rows, c, len(x), min(len(acc), len(mu)))
	if bnAsm && c%8 == 0 && rows > 0 {
		bnSqDevAsm(acc, x, mu, rows, c)
		return
	}
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c : (r+1)*c] {
			dv := float64(v) - mu[j]
			acc[j] += float64(dv * dv)
		}
	}
}

// BNApply writes out[r·c+j] = x·scale[j] + shift[j], then max(·, 0) if relu
// (NaN stays NaN, −0 becomes +0, as Go's max).
func BNApply(out, x, scale, shift []float32, rows, c int, relu bool) {
	checkBN("BNApply", rows, c, min(len(x), len(out)), min(len(scale), len(shift)))
	if bnAsm && c%8 == 0 && rows > 0 {
		bnApplyAsm(out, x, scale, shift, rows, c, relu)
		return
	}
	for r := 0; r < rows; r++ {
		xr, or := x[r*c:(r+1)*c], out[r*c:(r+1)*c]
		for j, v := range xr {
			y := float32(v*scale[j]) + shift[j]
			if relu {
				y = max(y, 0)
			}
			or[j] = y
		}
	}
}

// ReLUMask returns g where the ReLU output o is > 0, else +0, without a
// data-dependent branch: o is +0, positive, +Inf or NaN, and o > 0 exactly
// when its bit pattern b satisfies 0 < b ≤ 0x7F800000 (+Inf).
func ReLUMask(g, o float32) float32 {
	b := math.Float32bits(o)
	m := uint32(0)
	if b-1 < 0x7F800000 {
		m = ^uint32(0)
	}
	return math.Float32frombits(math.Float32bits(g) & m)
}

// BNGradSums adds, with gv = g (or ReLUMask(g, o) if relu) and
// x̂ = (x − mean)·invstd in float32, Σ gv to gs[j] and Σ gv·x̂ to gd[j].
func BNGradSums(gs, gd []float64, x, g, o, mean, invstd []float32, rows, c int, relu bool) {
	checkBN("BNGradSums", rows, c, min(len(x), len(g)), min(len(gs), len(gd), len(mean), len(invstd)))
	if relu && len(o) < rows*c {
		panic("kernels.BNGradSums: short ReLU output")
	}
	if bnAsm && c%8 == 0 && rows > 0 {
		bnGradSumsAsm(gs, gd, x, g, o, mean, invstd, rows, c, relu)
		return
	}
	for r := 0; r < rows; r++ {
		xr, gr := x[r*c:(r+1)*c], g[r*c:(r+1)*c]
		for j := range xr {
			gv := gr[j]
			if relu {
				gv = ReLUMask(gv, o[r*c+j])
			}
			xh := float32(xr[j]-mean[j]) * invstd[j]
			gs[j] += float64(gv)
			gd[j] += float64(float64(gv) * float64(xh))
		}
	}
}

// BNGradInput adds the training-mode input gradient to gx (writes it, if
// set): gx += scale·((gv − a) − x̂·b), gv and x̂ as in BNGradSums.
func BNGradInput(gx, x, g, o, mean, invstd, scale, a, b []float32, rows, c int, relu, set bool) {
	checkBN("BNGradInput", rows, c, min(len(gx), len(x), len(g)), min(len(mean), len(invstd), len(scale), len(a), len(b)))
	if relu && len(o) < rows*c {
		panic("kernels.BNGradInput: short ReLU output")
	}
	if bnAsm && c%8 == 0 && rows > 0 {
		bnGradInputAsm(gx, x, g, o, mean, invstd, scale, a, b, rows, c, relu, set)
		return
	}
	for r := 0; r < rows; r++ {
		xr, gr, xg := x[r*c:(r+1)*c], g[r*c:(r+1)*c], gx[r*c:(r+1)*c]
		for j := range xr {
			gv := gr[j]
			if relu {
				gv = ReLUMask(gv, o[r*c+j])
			}
			xh := float32(xr[j]-mean[j]) * invstd[j]
			t := float32(gv-a[j]) - float32(xh*b[j])
			if set {
				xg[j] = float32(scale[j] * t)
			} else {
				xg[j] += float32(scale[j] * t)
			}
		}
	}
}

func checkBN(op string, rows, c, lx, lc int) {
	if rows < 0 || c <= 0 || lx < rows*c || lc < c {
		panic(fmt.Sprintf("kernels.%s: %d rows of %d channels with data of %d and per-channel slices of %d", op, rows, c, lx, lc))
	}
}

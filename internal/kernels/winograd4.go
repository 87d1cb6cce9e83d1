package kernels

import "fmt"

// Tile transforms of the 3-D Winograd convolution F(4×4×4, 3×3×3): each
// output tile of 4×4×4 voxels comes from a 6×6×6 input tile,
// Y = Aᵀ⊗Aᵀ⊗Aᵀ [ (G⊗G⊗G w) ⊙ (Bᵀ⊗Bᵀ⊗Bᵀ d) ], with 216 products per tile
// and channel pair where F(2×2×2, 3×3×3) needs 512 for the same 64
// outputs (2.4× fewer) and the direct convolution 1728 (8×). The matrices
// come from the interpolation points 0, 1, −1, 2, −½ and ∞ (Toom–Cook, as in
// Lavin & Gray 2016); asmgen/winograd4.py derives them, checks each line
// program below against them in exact arithmetic and writes both the Go
// line programs (winograd4_lines.go) and the assembly.
//
// Precision: the transforms' entries are no longer 0 and ±1 (they reach
// 5/2 in Bᵀ, 8 in Aᵀ, 16/15 in G), so rounding inside them grows: in float32
// the largest error relative to the output's largest magnitude is a few
// 1e-6 against 2–4e-7 for F(2,3) and the direct convolution
// (TestWino4Accuracy measures it). Training in float32 tolerates this; the
// autodiff package documents where it is used and how to turn it off.
//
// Layouts are those of the F(2,3) transforms (winograd.go): channels last
// and contiguous, the 216 points ξ = (a·6 + b)·6 + c with a along z, b along
// y, c along x, each point's channels at ξ·ds. Every 3-D transform runs as
// three passes of line transforms, along x, then y, then z; the assembly
// (AVX2 with 8 channels per instruction, AVX-512 with 16) does the same
// operations in the same order as the Go code, so they agree bit for bit.

// Wino4Tmp is the scratch the F(4,3) transforms need (floats): 216 vectors
// of 16 floats.
const Wino4Tmp = 216 * 16

// w4Zeros is the bias of output transforms called without one (the
// assembly always adds a bias vector); calls cover at most its length of
// channels at a time.
var w4Zeros [1024]float32

// Wino4In writes the 216 transformed points of a 6×6×6 input tile:
// dst[ξ·ds + c] = (Bᵀ⊗Bᵀ⊗Bᵀ d)[ξ] for channel c < nc, the tile's voxel
// (z,y,x) at src[z·sz + y·sy + x·sx + c]. tmp needs Wino4Tmp floats.
func Wino4In(dst []float32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	checkWino("Wino4In", len(dst), 215*ds+nc, len(src), 5*(sx+sy+sz)+nc, len(tmp), Wino4Tmp, nc)
	w4Expand(w4In, 6, dst, ds, src, sx, sy, sz, nc, tmp)
}

// Wino4InBF16 is Wino4In with each transformed value rounded to bfloat16
// as the bfloat16 GEMM rounds its operands (bf16FromF32) and stored as
// channel pairs, the A operand SgemmPackedPairs reads: dst[ξ·ds + q] =
// bf16Pair(p[2q], p[2q+1]) for the point's values p and q < nc/2 (ds in
// pairs). nc must be even. The same bits as rounding a float32 V while
// packing. tmp needs Wino4Tmp floats.
func Wino4InBF16(dst []uint32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	if nc&1 != 0 {
		panic(fmt.Sprintf("kernels.Wino4InBF16: %d channels (want an even count)", nc))
	}
	checkWino("Wino4InBF16", len(dst), 215*ds+nc/2, len(src), 5*(sx+sy+sz)+nc, len(tmp), Wino4Tmp, nc)
	n8 := 0
	if wino4Asm && winoInBF16Asm {
		n8 = nc &^ 7
		if n8 > 0 {
			w4InBF16Asm(dst, ds, src, sx, sy, sz, n8, tmp)
		}
	}
	w4InBF16Go(dst, ds, src, sx, sy, sz, n8, nc, tmp)
}

// w4InBF16Go does channels [c0, nc) of Wino4InBF16 (c0 even) eight at a
// time: the float32 transform into tmp, then rounded to pairs.
func w4InBF16Go(dst []uint32, ds int, src []float32, sx, sy, sz, c0, nc int, tmp []float32) {
	for c := c0; c < nc; c += 8 {
		w := min(8, nc-c)
		w4ExpandGo(w4LineBT, 6, tmp[:216*8], 8, src[c:], sx, sy, sz, w)
		pairsFrom8(dst[c/2:], ds, tmp, 216, w)
	}
}

// Wino4InRows is Wino4In with the tile given line by line, for tiles at
// the volume's faces: line l = z·6 + y (z, y < 6) starts at src[off[l]]
// (its six voxels sx floats apart, channels contiguous), or, where off[l]
// < 0, is zeros (the padding), read from zeros (at least 5·sx + nc
// floats, all zero). The same bits as gathering the tile and calling
// Wino4In, without the copy. tmp needs Wino4Tmp floats.
func Wino4InRows(dst []float32, ds int, src []float32, off *[36]int, zeros []float32, sx, nc int, tmp []float32) {
	Wino4InRowsX(dst, ds, src, off, zeros, sx, 0, 6, nc, tmp)
}

// Wino4InRowsX is Wino4InRows for tiles at an x face as well: only the
// voxels x ∈ [lo, hi) of each line are read, voxel x at src[off[l] +
// (x−lo)·sx]; the others are zeros (0 ≤ lo < hi ≤ 6). With AVX-512 (see
// Wino4RowsWindowed) the window costs nothing: the assembly's loads of
// the padding voxels are masked off. Elsewhere a window other than [0, 6)
// is staged in Go, slower than gathering the tile; callers check
// Wino4RowsWindowed first.
func Wino4InRowsX(dst []float32, ds int, src []float32, off *[36]int, zeros []float32, sx, lo, hi, nc int, tmp []float32) {
	checkRows("Wino4InRowsX", len(dst), 215*ds+nc, src, off, zeros, sx, lo, hi, nc, len(tmp))
	n8 := 0
	if wino4Asm && (lo == 0 && hi == 6 || winoIn512) {
		n8 = nc &^ 7
		if n8 > 0 {
			w4InRowsAsm(dst, nil, ds, src, off, zeros, sx, lo, hi, n8, tmp)
		}
	}
	for c := n8; c < nc; c += 16 {
		w := min(16, nc-c)
		stageRows(tmp[:216*16], 16, src, off, sx, lo, hi, c, w)
		w4ExpandGo(w4LineBT, 6, dst[c:], ds, tmp, 16, 96, 576, w)
	}
}

// Wino4RowsWindowed reports whether Wino4InRowsX and Wino4InRowsXBF16 run
// windows other than [0, 6) in assembly (CPUs with AVX-512F and VL, the
// AVX-512 kernels switched on).
func Wino4RowsWindowed() bool { return wino4Asm && winoIn512 }

// Wino4InRowsBF16 is Wino4InRows writing bfloat16 pairs as Wino4InBF16
// does (nc even, ds in pairs).
func Wino4InRowsBF16(dst []uint32, ds int, src []float32, off *[36]int, zeros []float32, sx, nc int, tmp []float32) {
	Wino4InRowsXBF16(dst, ds, src, off, zeros, sx, 0, 6, nc, tmp)
}

// Wino4InRowsXBF16 is Wino4InRowsX writing bfloat16 pairs as Wino4InBF16
// does (nc even, ds in pairs).
func Wino4InRowsXBF16(dst []uint32, ds int, src []float32, off *[36]int, zeros []float32, sx, lo, hi, nc int, tmp []float32) {
	if nc&1 != 0 {
		panic(fmt.Sprintf("kernels.Wino4InRowsXBF16: %d channels (want an even count)", nc))
	}
	checkRows("Wino4InRowsXBF16", len(dst), 215*ds+nc/2, src, off, zeros, sx, lo, hi, nc, len(tmp))
	n8 := 0
	if wino4Asm && winoInBF16Asm && (lo == 0 && hi == 6 || winoIn512) {
		n8 = nc &^ 7
		if n8 > 0 {
			w4InRowsAsm(nil, dst, ds, src, off, zeros, sx, lo, hi, n8, tmp)
		}
	}
	for c := n8; c < nc; c += 8 {
		w := min(8, nc-c)
		stageRows(tmp[:216*8], 8, src, off, sx, lo, hi, c, w)
		f := tmp[216*8 : 2*216*8]
		w4ExpandGo(w4LineBT, 6, f, 8, tmp, 8, 48, 288, w)
		pairsFrom8(dst[c/2:], ds, f, 216, w)
	}
}

// stageRows copies channels [c, c+w) of the lines off describes into st
// (voxel (z,y,x) at ((z·6+y)·6+x)·cs), voxels x ∈ [lo, hi) from the line
// (voxel x at off[l] + (x−lo)·sx), zeros for the rest and the padding
// lines.
func stageRows(st []float32, cs int, src []float32, off *[36]int, sx, lo, hi, c, w int) {
	for l, o := range off {
		for x := 0; x < 6; x++ {
			d := st[(l*6+x)*cs : (l*6+x)*cs+w]
			if o < 0 || x < lo || x >= hi {
				clear(d)
			} else {
				copy(d, src[o+(x-lo)*sx+c:])
			}
		}
	}
}

// checkRows panics (a programmer error) when the window is not within a
// line, the line table reaches past src, zeros is too short or a slice is.
func checkRows(op string, ld, needD int, src []float32, off *[36]int, zeros []float32, sx, lo, hi, nc, lt int) {
	if lo < 0 || hi > 6 || lo >= hi {
		panic(fmt.Sprintf("kernels.%s: window [%d, %d) not within a 6-voxel line", op, lo, hi))
	}
	checkWino(op, ld, needD, len(zeros), 5*sx+nc, lt, Wino4Tmp, nc)
	for l, o := range off {
		if o >= 0 && o+(hi-lo-1)*sx+nc > len(src) {
			panic(fmt.Sprintf("kernels.%s: line %d at %d reaches past the %d source floats", op, l, o, len(src)))
		}
	}
}

// Wino4Grad writes the 216 transformed points of a 4×4×4 output-gradient
// tile: dst[ξ·ds + c] = (A⊗A⊗A g)[ξ], A being Aᵀ's transpose (the output
// transform's adjoint). tmp needs Wino4Tmp floats.
func Wino4Grad(dst []float32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	checkWino("Wino4Grad", len(dst), 215*ds+nc, len(src), 3*(sx+sy+sz)+nc, len(tmp), Wino4Tmp, nc)
	w4Expand(w4Grad, 4, dst, ds, src, sx, sy, sz, nc, tmp)
}

// Wino4Kernel writes the transformed kernels u[ξ·ds + p] = (G⊗G⊗G w)[ξ] of
// np 3×3×3 kernels w[k·ss + p], k = 9·kz + 3·ky + kx. tmp needs Wino4Tmp
// floats.
func Wino4Kernel(u []float32, ds int, w []float32, ss, np int, tmp []float32) {
	checkWino("Wino4Kernel", len(u), 215*ds+np, len(w), 26*ss+np, len(tmp), Wino4Tmp, np)
	w4Expand(w4Kern, 3, u, ds, w, ss, 3*ss, 9*ss, np, tmp)
}

// Wino4Out writes a 4×4×4 output tile from 216 transformed points src[ξ·ss
// + c]: y = (Aᵀ⊗Aᵀ⊗Aᵀ m) + bias, stored to dst[z·sz + y·sy + x·sx + c], or
// added to what is there when acc is set. Without a bias, zeros are added
// (so a −0 result reads +0). tmp needs Wino4Tmp floats.
func Wino4Out(dst []float32, sx, sy, sz int, src []float32, ss, nc int, bias []float32, acc bool, tmp []float32) {
	checkWino("Wino4Out", len(src), 215*ss+nc, len(dst), 3*(sx+sy+sz)+nc, len(tmp), Wino4Tmp, nc)
	if bias != nil && len(bias) < nc {
		panic(fmt.Sprintf("kernels.Wino4Out: bias has %d floats, need %d", len(bias), nc))
	}
	w4Reduce(w4Out, 4, dst, sx, sy, sz, src, ss, nc, bias, acc, tmp)
}

// Wino4KernelAdjoint adds Gᵀ⊗Gᵀ⊗Gᵀ du to the kernel gradients
// gw[k·ds + p] from du[ξ·ss + p], p < np: Wino4Kernel's adjoint (strides as
// WinoKernelAdjoint's). tmp needs Wino4Tmp floats.
func Wino4KernelAdjoint(gw []float32, ds int, du []float32, ss, np int, tmp []float32) {
	checkWino("Wino4KernelAdjoint", len(du), 215*ss+np, len(gw), 26*ds+np, len(tmp), Wino4Tmp, np)
	w4Reduce(w4KernAdj, 3, gw, ds, 3*ds, 9*ds, du, ss, np, nil, true, tmp)
}

// The five transforms, as indices into the assembly tables.
const (
	w4In = iota
	w4Grad
	w4Kern
	w4Out
	w4KernAdj
)

var w4Lines = [...]func(in, out []float32){w4LineBT, w4LineA, w4LineG, w4LineAT, w4LineGT}

// w4Expand runs an expanding transform (nin³ values to 216 points): the
// assembly on whole 8-channel groups where it runs, Go on the rest.
func w4Expand(k, nin int, dst []float32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	n8 := 0
	if wino4Asm {
		n8 = nc &^ 7
		if n8 > 0 {
			w4ExpandAsm(k, dst, ds, src, sx, sy, sz, n8, tmp)
		}
	}
	if n8 < nc {
		w4ExpandGo(w4Lines[k], nin, dst[n8:], ds, src[n8:], sx, sy, sz, nc-n8)
	}
}

// w4Reduce runs a reducing transform (216 points to nout³ values).
func w4Reduce(k, nout int, dst []float32, sx, sy, sz int, src []float32, ss, nc int, bias []float32, acc bool, tmp []float32) {
	n8 := 0
	if wino4Asm {
		n8 = nc &^ 7
		switch {
		case n8 == 0:
		case bias != nil:
			w4ReduceAsm(k, dst, sx, sy, sz, src, ss, n8, bias, acc, tmp)
		default:
			// zeros for the bias, at most len(w4Zeros) channels per call
			for c := 0; c < n8; c += len(w4Zeros) {
				w4ReduceAsm(k, dst[c:], sx, sy, sz, src[c:], ss, min(len(w4Zeros), n8-c), w4Zeros[:], acc, tmp)
			}
		}
	}
	if n8 < nc {
		var b []float32
		if bias != nil {
			b = bias[n8:]
		}
		w4ReduceGo(w4Lines[k], nout, dst[n8:], sx, sy, sz, src[n8:], ss, nc-n8, b, acc)
	}
}

// w4ExpandGo is the portable expanding transform: per channel, lines along
// x (into t[z·36 + y·6 + x]), along y in place, along z into dst.
func w4ExpandGo(line func(in, out []float32), nin int, dst []float32, ds int, src []float32, sx, sy, sz, nc int) {
	var t [216]float32
	var in, out [6]float32
	for c := 0; c < nc; c++ {
		for z := 0; z < nin; z++ {
			for y := 0; y < nin; y++ {
				for e := 0; e < nin; e++ {
					in[e] = src[z*sz+y*sy+e*sx+c]
				}
				line(in[:nin], t[z*36+y*6:z*36+y*6+6])
			}
		}
		for z := 0; z < nin; z++ {
			for x := 0; x < 6; x++ {
				for e := 0; e < nin; e++ {
					in[e] = t[z*36+e*6+x]
				}
				line(in[:nin], out[:])
				for e := 0; e < 6; e++ {
					t[z*36+e*6+x] = out[e]
				}
			}
		}
		for l := 0; l < 36; l++ {
			for e := 0; e < nin; e++ {
				in[e] = t[e*36+l]
			}
			line(in[:nin], out[:])
			for e := 0; e < 6; e++ {
				dst[(e*36+l)*ds+c] = out[e]
			}
		}
	}
}

// w4ReduceGo is the portable reducing transform: per channel, lines along x
// (into t[l·6 + x], l = z·6 + y), along y in place, along z into dst, plus
// the bias (or zero), plus dst's value when acc.
func w4ReduceGo(line func(in, out []float32), nout int, dst []float32, sx, sy, sz int, src []float32, ss, nc int, bias []float32, acc bool) {
	var t [216]float32
	var in, out [6]float32
	for c := 0; c < nc; c++ {
		for l := 0; l < 36; l++ {
			for e := 0; e < 6; e++ {
				in[e] = src[(l*6+e)*ss+c]
			}
			line(in[:], t[l*6:l*6+nout])
		}
		for z := 0; z < 6; z++ {
			for x := 0; x < nout; x++ {
				for e := 0; e < 6; e++ {
					in[e] = t[z*36+e*6+x]
				}
				line(in[:], out[:nout])
				for e := 0; e < nout; e++ {
					t[z*36+e*6+x] = out[e]
				}
			}
		}
		var b float32
		if bias != nil {
			b = bias[c]
		}
		for y := 0; y < nout; y++ {
			for x := 0; x < nout; x++ {
				for e := 0; e < 6; e++ {
					in[e] = t[e*36+y*6+x]
				}
				line(in[:], out[:nout])
				for e := 0; e < nout; e++ {
					o := e*sz + y*sy + x*sx + c
					r := out[e] + b
					if acc {
						r = dst[o] + r
					}
					dst[o] = r
				}
			}
		}
	}
}

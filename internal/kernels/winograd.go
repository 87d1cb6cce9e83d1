package kernels

import "fmt"

// Tile transforms of the 3-D Winograd convolution F(2×2×2, 3×3×3) (Lavin &
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2016, extended
// to three dimensions by applying the 1-D transforms along each axis). With
// the interpolation points 0, 1, −1, ∞ the 1-D matrices are
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]     (input, 4 → 4)
//	G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]               (kernel, 3 → 4)
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]                        (output, 4 → 2)
//
// and one 2×2×2 output tile of a stride-1 3×3×3 correlation is
// Y = Aᵀ⊗Aᵀ⊗Aᵀ [ (G⊗G⊗G w) ⊙ (Bᵀ⊗Bᵀ⊗Bᵀ d) ] for its 4×4×4 input tile d:
// 64 products per output tile and channel pair instead of 216. By the chain
// rule the weight gradient of that expression is G⊗G⊗Gᵀ applied to
// Σ_tiles (A⊗A⊗A dY) ⊙ (Bᵀ⊗Bᵀ⊗Bᵀ d), so the same input transform serves
// the weight gradient, with A (2 → 4) transforming the output gradient.
//
// Every transform here works on all channels of a tile at once, channels
// contiguous (NDHWC): a tile voxel (z,y,x) holds nc floats at
// src[z·sz + y·sy + x·sx : … + nc], and transformed point ξ = 16·a + 4·b + c
// (a along z, b along y, c along x) holds nc floats at dst[ξ·ds : ξ·ds + nc].
// The AVX2 versions (winograd_amd64.s) run eight channels per instruction;
// the portable versions below are the reference they are tested against.
// Both do the same additions in the same order, so they agree bit for bit.

// WinoInTmp is the scratch WinoIn and WinoInBF16 need (floats): 48
// 64-byte vectors for the AVX-512 transforms.
const WinoInTmp = 768

// WinoIn writes the 64 transformed points of a 4×4×4 input tile:
// dst[ξ·ds + c] = (Bᵀ⊗Bᵀ⊗Bᵀ d)[ξ] for channel c < nc. tmp needs
// WinoInTmp floats.
func WinoIn(dst []float32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	checkWino("WinoIn", len(dst), 63*ds+nc, len(src), 3*(sx+sy+sz)+nc, len(tmp), WinoInTmp, nc)
	n8 := 0
	if winoAsm {
		n8 = nc &^ 7
		if n8 > 0 {
			winoInAsm(dst, ds, src, sx, sy, sz, n8, tmp)
		}
	}
	if n8 < nc {
		winoInGo(dst[n8:], ds, src[n8:], sx, sy, sz, nc-n8)
	}
}

// WinoInBF16 is WinoIn with each transformed value rounded to bfloat16 as
// the bfloat16 GEMM rounds its operands (bf16FromF32: nearest, ties to even,
// as PyTorch) and stored as channel pairs, the A operand SgemmPackedPairs
// reads: dst[ξ·ds + q] = bf16Pair(p[2q], p[2q+1]) for the point's values p
// and q < nc/2 (ds in pairs). nc must be even. Rounding the float32 points
// here instead of while packing gives the same bits, without the float32
// copy of V. tmp needs WinoInTmp floats.
func WinoInBF16(dst []uint32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	if nc&1 != 0 {
		panic(fmt.Sprintf("kernels.WinoInBF16: %d channels (want an even count)", nc))
	}
	checkWino("WinoInBF16", len(dst), 63*ds+nc/2, len(src), 3*(sx+sy+sz)+nc, len(tmp), WinoInTmp, nc)
	n8 := 0
	if winoInBF16Asm {
		n8 = nc &^ 7
		if n8 > 0 {
			winoInBF16Chunks(dst, ds, src, sx, sy, sz, n8, tmp)
		}
	}
	winoInBF16Go(dst, ds, src, sx, sy, sz, n8, nc, tmp)
}

// winoInBF16Go does channels [c0, nc) of WinoInBF16 (c0 even) eight at a
// time: winoInGo into tmp, then rounded to pairs.
func winoInBF16Go(dst []uint32, ds int, src []float32, sx, sy, sz, c0, nc int, tmp []float32) {
	for c := c0; c < nc; c += 8 {
		w := min(8, nc-c)
		winoInGo(tmp[:512], 8, src[c:], sx, sy, sz, w)
		pairsFrom8(dst[c/2:], ds, tmp, 64, w)
	}
}

// pairsFrom8 rounds npts points of w ≤ 8 channels, f[ξ·8 + c], to bfloat16
// pairs dst[ξ·ds + q] (the Go remainder of the pairs-writing transforms).
func pairsFrom8(dst []uint32, ds int, f []float32, npts, w int) {
	for xi := 0; xi < npts; xi++ {
		for q := 0; q < w/2; q++ {
			dst[xi*ds+q] = bf16Pair(f[xi*8+2*q], f[xi*8+2*q+1])
		}
	}
}

// WinoOut writes a 2×2×2 output tile from 64 transformed points:
// y = (Aᵀ⊗Aᵀ⊗Aᵀ m) + bias, stored to dst[z·sz + y·sy + x·sx + c], or added
// to what is there when acc is set. bias may be nil. tmp needs 512 floats.
func WinoOut(dst []float32, sx, sy, sz int, src []float32, ss, nc int, bias []float32, acc bool, tmp []float32) {
	checkWino("WinoOut", len(src), 63*ss+nc, len(dst), sx+sy+sz+nc, len(tmp), 512, nc)
	if bias != nil && len(bias) < nc {
		panic(fmt.Sprintf("kernels.WinoOut: bias has %d floats, need %d", len(bias), nc))
	}
	n8 := 0
	if winoAsm {
		n8 = nc &^ 7
		if n8 > 0 {
			winoOutAsm(dst, sx, sy, sz, src, ss, n8, bias, acc, tmp)
		}
	}
	if n8 < nc {
		var b []float32
		if bias != nil {
			b = bias[n8:]
		}
		winoOutGo(dst[n8:], sx, sy, sz, src[n8:], ss, nc-n8, b, acc)
	}
}

// WinoGrad writes the 64 transformed points of a 2×2×2 output-gradient
// tile: dst[ξ·ds + c] = (A⊗A⊗A g)[ξ], where A = Aᵀ's transpose, that is
// q0 = g0, q1 = g0 + g1, q2 = g0 − g1, q3 = −g1 along each axis. tmp needs
// 512 floats.
func WinoGrad(dst []float32, ds int, src []float32, sx, sy, sz, nc int, tmp []float32) {
	checkWino("WinoGrad", len(dst), 63*ds+nc, len(src), sx+sy+sz+nc, len(tmp), 512, nc)
	n8 := 0
	if winoAsm {
		n8 = nc &^ 7
		if n8 > 0 {
			winoGradAsm(dst, ds, src, sx, sy, sz, n8, tmp)
		}
	}
	if n8 < nc {
		winoGradGo(dst[n8:], ds, src[n8:], sx, sy, sz, nc-n8)
	}
}

// checkWino panics (a programmer error) when a transform's slices are too
// short: ld, ls floats where needD, needS are read or written, lt of
// needT scratch floats, n channels or kernels.
func checkWino(op string, ld, needD, ls, needS, lt, needT, n int) {
	if n <= 0 || ld < needD || ls < needS || lt < needT {
		panic(fmt.Sprintf("kernels.%s: %d channels, slices of %d and %d floats (need %d and %d), tmp %d (need %d)",
			op, n, ld, ls, needD, needS, lt, needT))
	}
}

// bt is Bᵀ applied to one line: the order of operations is the assembly's.
func bt(d0, d1, d2, d3 float32) (float32, float32, float32, float32) {
	return d0 - d2, d1 + d2, d2 - d1, d1 - d3
}

func winoInGo(dst []float32, ds int, src []float32, sx, sy, sz, nc int) {
	var t [64]float32
	for c := 0; c < nc; c++ {
		// along x
		for z := 0; z < 4; z++ {
			for y := 0; y < 4; y++ {
				o := z*sz + y*sy + c
				i := (z*4 + y) * 4
				t[i], t[i+1], t[i+2], t[i+3] = bt(src[o], src[o+sx], src[o+2*sx], src[o+3*sx])
			}
		}
		// along y
		for z := 0; z < 4; z++ {
			for x := 0; x < 4; x++ {
				i := z*16 + x
				t[i], t[i+4], t[i+8], t[i+12] = bt(t[i], t[i+4], t[i+8], t[i+12])
			}
		}
		// along z, into dst
		for i := 0; i < 16; i++ {
			a, b, e, f := bt(t[i], t[i+16], t[i+32], t[i+48])
			dst[i*ds+c], dst[(i+16)*ds+c], dst[(i+32)*ds+c], dst[(i+48)*ds+c] = a, b, e, f
		}
	}
}

// at is Aᵀ applied to one line.
func at(m0, m1, m2, m3 float32) (float32, float32) {
	return m0 + m1 + m2, m1 - m2 - m3
}

func winoOutGo(dst []float32, sx, sy, sz int, src []float32, ss, nc int, bias []float32, acc bool) {
	var t [32]float32
	for c := 0; c < nc; c++ {
		// along z: t[zo*16 + y*4 + x]
		for i := 0; i < 16; i++ {
			t[i], t[16+i] = at(src[i*ss+c], src[(i+16)*ss+c], src[(i+32)*ss+c], src[(i+48)*ss+c])
		}
		// along y: t[zo*16 + yo*4 + x]
		for zo := 0; zo < 2; zo++ {
			for x := 0; x < 4; x++ {
				i := zo*16 + x
				t[i], t[i+4] = at(t[i], t[i+4], t[i+8], t[i+12])
			}
		}
		var b float32
		if bias != nil {
			b = bias[c]
		}
		// along x, into dst
		for zo := 0; zo < 2; zo++ {
			for yo := 0; yo < 2; yo++ {
				i := zo*16 + yo*4
				v0, v1 := at(t[i], t[i+1], t[i+2], t[i+3])
				v0 += b
				v1 += b
				o := zo*sz + yo*sy + c
				if acc {
					dst[o] += v0
					dst[o+sx] += v1
				} else {
					dst[o] = v0
					dst[o+sx] = v1
				}
			}
		}
	}
}

func winoGradGo(dst []float32, ds int, src []float32, sx, sy, sz, nc int) {
	var t [64]float32
	for c := 0; c < nc; c++ {
		// along x: t[z*16 + y*4 + x] for z, y < 2
		for z := 0; z < 2; z++ {
			for y := 0; y < 2; y++ {
				o := z*sz + y*sy + c
				g0, g1 := src[o], src[o+sx]
				i := z*16 + y*4
				t[i], t[i+1], t[i+2], t[i+3] = g0, g0+g1, g0-g1, 0-g1
			}
		}
		// along y, for z < 2
		for z := 0; z < 2; z++ {
			for x := 0; x < 4; x++ {
				i := z*16 + x
				g0, g1 := t[i], t[i+4]
				t[i], t[i+4], t[i+8], t[i+12] = g0, g0+g1, g0-g1, 0-g1
			}
		}
		// along z, into dst
		for i := 0; i < 16; i++ {
			g0, g1 := t[i], t[i+16]
			dst[i*ds+c], dst[(i+16)*ds+c], dst[(i+32)*ds+c], dst[(i+48)*ds+c] = g0, g0+g1, g0-g1, 0-g1
		}
	}
}

// WinoKernel writes the transformed kernels u[ξ·ds + p] = (G⊗G⊗G w)[ξ] for
// p < np, the 27 taps of kernel p being w[k·ss + p] (k = 9·kz + 3·ky + kx).
// G's rows are (w0), ½((w0+w2)+w1), ½((w0+w2)−w1), (w2). tmp needs 1024
// floats.
func WinoKernel(u []float32, ds int, w []float32, ss, np int, tmp []float32) {
	checkWino("WinoKernel", len(u), 63*ds+np, len(w), 26*ss+np, len(tmp), 1024, np)
	n8 := 0
	if winoAsm {
		n8 = np &^ 7
		if n8 > 0 {
			winoKernAsm(u, ds, w, ss, n8, tmp)
		}
	}
	if n8 < np {
		winoKernGo(u[n8:], ds, w[n8:], ss, np-n8)
	}
}

// WinoKernelAdjoint adds Gᵀ⊗Gᵀ⊗Gᵀ du to the kernel gradients:
// gw[k·ds + p] += (Gᵀ⊗Gᵀ⊗Gᵀ du)[k] for the 64 points du[ξ·ss + p], p < np.
// Gᵀ's rows are u0 + s, ½(u1−u2), s + u3 with s = ½(u1+u2). tmp needs 1024
// floats.
func WinoKernelAdjoint(gw []float32, ds int, du []float32, ss, np int, tmp []float32) {
	checkWino("WinoKernelAdjoint", len(gw), 26*ds+np, len(du), 63*ss+np, len(tmp), 1024, np)
	n8 := 0
	if winoAsm {
		n8 = np &^ 7
		if n8 > 0 {
			winoKernAdjAsm(gw, ds, du, ss, n8, tmp)
		}
	}
	if n8 < np {
		winoKernAdjGo(gw[n8:], ds, du[n8:], ss, np-n8)
	}
}

// gRow is G applied to one line of three taps (the explicit conversions
// keep the compiler from fusing operations, so Go and assembly agree).
func gRow(w0, w1, w2 float32) (float32, float32, float32, float32) {
	s := float32(w0 + w2)
	return w0, 0.5 * float32(s+w1), 0.5 * float32(s-w1), w2
}

// gtRow is Gᵀ applied to one line of four points.
func gtRow(u0, u1, u2, u3 float32) (float32, float32, float32) {
	s := float32(0.5 * float32(u1+u2))
	return float32(u0 + s), 0.5 * float32(u1-u2), float32(s + u3)
}

func winoKernGo(u []float32, ds int, w []float32, ss, np int) {
	var a [36]float32 // after the x pass: [kz][ky][4]
	var b [48]float32 // after the y pass: [kz][4][4]
	for p := 0; p < np; p++ {
		for k := 0; k < 9; k++ {
			a[4*k], a[4*k+1], a[4*k+2], a[4*k+3] = gRow(w[3*k*ss+p], w[(3*k+1)*ss+p], w[(3*k+2)*ss+p])
		}
		for kz := 0; kz < 3; kz++ {
			for c := 0; c < 4; c++ {
				i := kz*12 + c
				b[16*kz+c], b[16*kz+4+c], b[16*kz+8+c], b[16*kz+12+c] = gRow(a[i], a[i+4], a[i+8])
			}
		}
		for i := 0; i < 16; i++ {
			u0, u1, u2, u3 := gRow(b[i], b[16+i], b[32+i])
			u[i*ds+p], u[(16+i)*ds+p], u[(32+i)*ds+p], u[(48+i)*ds+p] = u0, u1, u2, u3
		}
	}
}

func winoKernAdjGo(gw []float32, ds int, du []float32, ss, np int) {
	var a [48]float32 // after the z pass: [kz][4][4]
	var b [36]float32 // after the y pass: [kz][ky][4]
	for p := 0; p < np; p++ {
		for i := 0; i < 16; i++ {
			a[i], a[16+i], a[32+i] = gtRow(du[i*ss+p], du[(16+i)*ss+p], du[(32+i)*ss+p], du[(48+i)*ss+p])
		}
		for kz := 0; kz < 3; kz++ {
			for c := 0; c < 4; c++ {
				i := kz*16 + c
				b[12*kz+c], b[12*kz+4+c], b[12*kz+8+c] = gtRow(a[i], a[i+4], a[i+8], a[i+12])
			}
		}
		for k := 0; k < 9; k++ {
			v0, v1, v2 := gtRow(b[4*k], b[4*k+1], b[4*k+2], b[4*k+3])
			gw[3*k*ds+p] += v0
			gw[(3*k+1)*ds+p] += v1
			gw[(3*k+2)*ds+p] += v2
		}
	}
}

package autodiff

import (
	"fmt"
	"sync"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// ConvSpec gives a 3-D convolution's strides and padding (per axis z, y, x).
// A zero Stride entry means 1. With Same set, padding follows TensorFlow's
// 'same' rule (output size ceil(in/stride), total padding
// max((out−1)·stride + k − in, 0), the odd pixel on the high side); for odd
// kernels at stride 1 that equals PyTorch's padding=(k−1)/2. Otherwise Pad is
// a symmetric zero padding (PyTorch's padding=); Pad = 0 is 'valid'.
type ConvSpec struct {
	Stride [3]int
	Pad    [3]int
	Same   bool
}

// Same3D returns the 'same' spec for stride s on every axis.
func Same3D(s int) ConvSpec { return ConvSpec{Stride: [3]int{s, s, s}, Same: true} }

// Valid3D returns the unpadded spec for stride s on every axis.
func Valid3D(s int) ConvSpec { return ConvSpec{Stride: [3]int{s, s, s}} }

// convGeom is the geometry of a convolution from an "input" volume
// [n,d,h,w,c] to an "output" volume [n,od,oh,ow,co] with kernel k, stride s
// and low-side padding p. im2col rows are output voxels in NDHW order;
// columns are (kz,ky,kx,c), matching DHWIO weights viewed as [K,co].
type convGeom struct {
	n, d, h, w, c  int
	k, s, p        [3]int
	od, oh, ow, co int
}

func (g *convGeom) rows() int  { return g.n * g.od * g.oh * g.ow }
func (g *convGeom) kcols() int { return g.k[0] * g.k[1] * g.k[2] * g.c }

// identity reports a 1×1×1, stride-1, unpadded conv (im2col is the input).
func (g *convGeom) identity() bool {
	return g.k == [3]int{1, 1, 1} && g.s == [3]int{1, 1, 1} && g.p == [3]int{}
}

// disjoint reports that kernel windows never overlap (k == s, no padding),
// so col2im writes each input element at most once.
func (g *convGeom) disjoint() bool { return g.k == g.s && g.p == [3]int{} }

// im2col fills col (rows r0..r1, kcols() columns each) from src (the
// input volume); out-of-range taps are zero. The kw taps of one (kz,ky) are
// contiguous in src (kw·c floats), so interior rows copy them in one go.
func (g *convGeom) im2col(src []float32, r0, r1 int, col []float32) {
	K, c := g.kcols(), g.c
	run := g.k[2] * c
	ox, oy, oz, n := g.unrow(r0)
	for r := r0; r < r1; r++ {
		dst := col[(r-r0)*K : (r-r0+1)*K]
		ix0 := ox*g.s[2] - g.p[2]
		inside := ix0 >= 0 && ix0+g.k[2] <= g.w
		j := 0
		for kz := 0; kz < g.k[0]; kz++ {
			iz := oz*g.s[0] - g.p[0] + kz
			for ky := 0; ky < g.k[1]; ky++ {
				iy := oy*g.s[1] - g.p[1] + ky
				d := dst[j : j+run]
				j += run
				if iz < 0 || iz >= g.d || iy < 0 || iy >= g.h {
					clear(d)
					continue
				}
				base := ((n*g.d+iz)*g.h + iy) * g.w
				if inside {
					copy(d, src[(base+ix0)*c:(base+ix0)*c+run])
					continue
				}
				for kx := 0; kx < g.k[2]; kx++ {
					ix := ix0 + kx
					dd := d[kx*c : (kx+1)*c]
					if ix < 0 || ix >= g.w {
						clear(dd)
					} else {
						copy(dd, src[(base+ix)*c:(base+ix+1)*c])
					}
				}
			}
		}
		if ox++; ox == g.ow {
			ox = 0
			if oy++; oy == g.oh {
				oy = 0
				if oz++; oz == g.od {
					oz = 0
					n++
				}
			}
		}
	}
}

// unrow splits an im2col row index into (ox, oy, oz, n).
func (g *convGeom) unrow(r int) (ox, oy, oz, n int) {
	ox = r % g.ow
	t := r / g.ow
	oy = t % g.oh
	t /= g.oh
	return ox, oy, t % g.od, t / g.od
}

// col2im adds col (rows r0..r1) back into dst (the input volume's shape):
// the adjoint of im2col. With set (only valid when disjoint()), it assigns.
func (g *convGeom) col2im(col []float32, r0, r1 int, dst []float32, set bool) {
	K, c := g.kcols(), g.c
	run := g.k[2] * c
	ox, oy, oz, n := g.unrow(r0)
	for r := r0; r < r1; r++ {
		src := col[(r-r0)*K : (r-r0+1)*K]
		ix0 := ox*g.s[2] - g.p[2]
		inside := ix0 >= 0 && ix0+g.k[2] <= g.w
		j := 0
		for kz := 0; kz < g.k[0]; kz++ {
			iz := oz*g.s[0] - g.p[0] + kz
			for ky := 0; ky < g.k[1]; ky++ {
				iy := oy*g.s[1] - g.p[1] + ky
				sv := src[j : j+run]
				j += run
				if iz < 0 || iz >= g.d || iy < 0 || iy >= g.h {
					continue
				}
				base := ((n*g.d+iz)*g.h + iy) * g.w
				if inside {
					d := dst[(base+ix0)*c : (base+ix0)*c+run]
					if set {
						copy(d, sv)
					} else {
						d = d[:len(sv)]
						for i, v := range sv {
							d[i] += v
						}
					}
					continue
				}
				for kx := 0; kx < g.k[2]; kx++ {
					ix := ix0 + kx
					if ix < 0 || ix >= g.w {
						continue
					}
					d := dst[(base+ix)*c : (base+ix+1)*c]
					s := sv[kx*c : (kx+1)*c]
					if set {
						copy(d, s)
					} else {
						for i := range d {
							d[i] += s[i]
						}
					}
				}
			}
		}
		if ox++; ox == g.ow {
			ox = 0
			if oy++; oy == g.oh {
				oy = 0
				if oz++; oz == g.od {
					oz = 0
					n++
				}
			}
		}
	}
}

var scratch sync.Pool

// getScratch returns a pooled buffer of at least n floats (contents
// undefined), resliced to n.
func getScratch(n int) *[]float32 {
	if p, ok := scratch.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

func putScratch(p *[]float32) { scratch.Put(p) }

// tileElems bounds one worker's im2col buffer (floats): 1 MiB.
var tileElems = 1 << 18

// tiles returns the rows per tile and the tile count.
func (g *convGeom) tiles() (int, int) {
	M := g.rows()
	t := max(1, min(M, tileElems/max(1, g.kcols())))
	return t, (M + t - 1) / t
}

// forEachTile runs fn over the row tiles, tiles split into contiguous
// per-worker ranges (fixed for a given thread count). col is the worker's
// im2col scratch (nil for identity geometries).
func (g *convGeom) forEachTile(fn func(worker, r0, r1 int, col []float32)) {
	T, nt := g.tiles()
	M := g.rows()
	defer sgemmSerial(tensor.Chunks(nt, 1))()
	tensor.Parallel(nt, 1, func(w, lo, hi int) {
		var col []float32
		if !g.identity() {
			buf := getScratch(T * g.kcols())
			defer putScratch(buf)
			col = *buf
		}
		for t := lo; t < hi; t++ {
			r0, r1 := t*T, min(M, (t+1)*T)
			fn(w, r0, r1, col)
		}
	})
}

// colOrSrc returns the tile's im2col matrix A (rows r0..r1 × kcols()) for
// Sgemm as (a, transA, lda): for identity geometries the source rows
// themselves; for one input channel A transposed (kcols() rows of r1−r0,
// built from contiguous runs, see im2colT1); otherwise row-major im2col.
func (g *convGeom) colOrSrc(src []float32, r0, r1 int, col []float32) ([]float32, bool, int) {
	K := g.kcols()
	if g.identity() {
		return src[r0*K : r1*K], false, K
	}
	if g.c == 1 {
		g.im2colT1(src, r0, r1, col)
		return col[:(r1-r0)*K], true, r1 - r0
	}
	g.im2col(src, r0, r1, col)
	return col[:(r1-r0)*K], false, K
}

// im2colT1 writes the transposed im2col matrix of a one-channel input:
// colT[j][q] for tap j = (kz,ky,kx) and tile row q. For a run of rows with
// equal (n,oz,oy) and stride 1 along x, each tap's values are a contiguous
// slice of src, so the matrix is filled by copies.
func (g *convGeom) im2colT1(src []float32, r0, r1 int, colT []float32) {
	m := r1 - r0
	for r := r0; r < r1; {
		ox0, oy, oz, n := g.unrow(r)
		cnt := min(g.ow-ox0, r1-r)
		q0 := r - r0
		j := 0
		for kz := 0; kz < g.k[0]; kz++ {
			iz := oz*g.s[0] - g.p[0] + kz
			for ky := 0; ky < g.k[1]; ky++ {
				iy := oy*g.s[1] - g.p[1] + ky
				valid := iz >= 0 && iz < g.d && iy >= 0 && iy < g.h
				base := ((n*g.d+iz)*g.h + iy) * g.w
				for kx := 0; kx < g.k[2]; kx, j = kx+1, j+1 {
					dst := colT[j*m+q0 : j*m+q0+cnt]
					if !valid {
						clear(dst)
						continue
					}
					off := ox0*g.s[2] - g.p[2] + kx // ix of q = 0
					sx := g.s[2]
					// valid q: 0 ≤ off + q·sx < w
					qlo := 0
					if off < 0 {
						qlo = min(cnt, (-off+sx-1)/sx)
					}
					qhi := cnt
					if last := off + (cnt-1)*sx; last >= g.w {
						if off >= g.w {
							qhi = qlo
						} else {
							qhi = max(qlo, (g.w-1-off)/sx+1)
						}
					}
					clear(dst[:qlo])
					clear(dst[qhi:])
					if sx == 1 {
						copy(dst[qlo:qhi], src[base+off+qlo:base+off+qhi])
					} else {
						for q := qlo; q < qhi; q++ {
							dst[q] = src[base+off+q*sx]
						}
					}
				}
			}
		}
		r += cnt
	}
}

// newConvGeom validates x [N,D,H,W,C] against kernel dims k and channel
// counts, resolves padding and computes the output size.
func newConvGeom(op string, xs []int, k [3]int, co int, spec ConvSpec) convGeom {
	g := convGeom{n: xs[0], d: xs[1], h: xs[2], w: xs[3], c: xs[4], k: k, co: co}
	in := [3]int{g.d, g.h, g.w}
	var out [3]int
	for i := 0; i < 3; i++ {
		s := spec.Stride[i]
		if s == 0 {
			s = 1
		}
		g.s[i] = s
		if spec.Same {
			out[i] = (in[i] + s - 1) / s
			g.p[i] = max((out[i]-1)*s+k[i]-in[i], 0) / 2
		} else {
			g.p[i] = spec.Pad[i]
			out[i] = (in[i]+2*g.p[i]-k[i])/s + 1
		}
		if out[i] <= 0 || k[i] <= 0 {
			panic(fmt.Sprintf("%s: kernel %v stride %v pad %v does not fit input %v", op, k, g.s, g.p, xs))
		}
	}
	g.od, g.oh, g.ow = out[0], out[1], out[2]
	return g
}

// Conv3D returns the 3-D convolution (cross-correlation, as PyTorch and
// TensorFlow) of x [N,D,H,W,Cin] with weights w [kd,kh,kw,Cin,Cout] plus
// bias b [Cout] (may be nil):
//
//	y[n,o,co] = b[co] + Σ_{kz,ky,kx,ci} x[n, o·s − p + k, ci] · w[kz,ky,kx,ci,co]
//
// computed as im2col tiles × W on kernels.Sgemm, tiles spread over
// tensor.Threads() workers; convs with stride 1 along z, kd > 1 and at
// least two input channels take the z-split path (convz.go: per-plane
// (ky,kx,c) im2col, one GEMM per z-tap). Backward: dW = colᵀ·dY
// (per-worker partial sums added in worker order), db = Σ dY, dX as a
// forward conv of dY with the flipped kernel at stride 1, else
// col2im(dY·Wᵀ).
func (tp *Tape) Conv3D(x, w, b *Var, spec ConvSpec) *Var {
	tensor.MustRank("autodiff.Conv3D input", x.Value, 5)
	tensor.MustRank("autodiff.Conv3D weight", w.Value, 5)
	ws := w.Value.Shape
	if ws[3] != x.Value.Shape[4] {
		panic(fmt.Sprintf("autodiff.Conv3D: input %v has %d channels, weight %v expects %d",
			x.Value.Shape, x.Value.Shape[4], ws, ws[3]))
	}
	co := ws[4]
	checkBias("Conv3D", b, co)
	g := newConvGeom("autodiff.Conv3D", x.Value.Shape, [3]int{ws[0], ws[1], ws[2]}, co, spec)
	out := tp.allocFull(g.n, g.od, g.oh, g.ow, co)
	xd, wd, od := x.Value.Data, w.Value.Data, out.Data
	K := g.kcols()
	var bias []float32
	if b != nil {
		bias = b.Value.Data
	}
	if g.winograd() {
		g.winoConv(xd, wd, false, od, false, bias)
	} else if g.conv1() {
		g.conv1Direct(xd, wd, od, bias)
	} else if g.zsplit() {
		g.convZ(xd, wd, od, false, bias)
	} else {
		g.forEachTile(func(_, r0, r1 int, col []float32) {
			a, ta, lda := g.colOrSrc(xd, r0, r1, col)
			kernels.Sgemm(ta, false, r1-r0, co, K, 1, a, lda, wd, co, 0, od[r0*co:r1*co], co)
			if b != nil {
				addBiasRows(od[r0*co:r1*co], b.Value.Data)
			}
		})
	}
	return tp.result(out, func(gy []float32) {
		convBackward(&g, x, w, b, gy, false)
	}, x, w, b)
}

// useConv1 enables conv1Direct (a variable so the tests compare it with
// the im2col path).
var useConv1 = true

// conv1 reports whether g is a same-padded stride-1 3×3×3 conv of a
// one-channel input to a multiple of 8 channels (the U-Net's first layer)
// on a CPU with the assembly row loop: conv1Direct computes it without an
// im2col matrix.
func (g *convGeom) conv1() bool {
	return useConv1 && kernels.Conv1Native() && g.c == 1 && g.co%8 == 0 && g.k == [3]int{3, 3, 3} && g.s == [3]int{1, 1, 1} &&
		g.p == [3]int{1, 1, 1} && g.od == g.d && g.oh == g.h && g.ow == g.w
}

// conv1Direct computes the forward conv of a conv1 geometry row by row with
// kernels.Conv1Row: for each output row its nine input rows, padded with a
// zero at each end, are staged (9 copies of a row where the transposed
// im2col matrix took 27), and the row loop reads them in place. The sums
// are the im2col path's FMA chains, so the result is that path's bit for
// bit (TestConv1DirectMatchesIm2col); at 2×64³ with 8 channels (config
// c's first layer, 2 threads) the im2col path took 6.6 ms, this 3.1 ms.
func (g *convGeom) conv1Direct(src, wd, dst, bias []float32) {
	W, co := g.w, g.co
	parOwn(g.n*g.d*g.h, 1, func(lo, hi int) {
		stage := getBuf(10 * (W + 2)) // nine rows and a zero row
		defer putBuf(stage)
		zero := stage[9*(W+2):]
		for r := lo; r < hi; r++ {
			n, z, y := r/(g.d*g.h), r/g.h%g.d, r%g.h
			var in [9][]float32
			for k := range in {
				iz, iy := z-1+k/3, y-1+k%3
				if iz < 0 || iz >= g.d || iy < 0 || iy >= g.h {
					in[k] = zero
					continue
				}
				row := stage[k*(W+2) : (k+1)*(W+2)] // row[0], row[W+1] stay 0
				copy(row[1:W+1], src[((n*g.d+iz)*g.h+iy)*W:][:W])
				in[k] = row
			}
			out := dst[r*W*co : (r+1)*W*co]
			kernels.Conv1Row(out, &in, wd, W, co)
			if bias != nil {
				kernels.AddBias(out, bias)
			}
		}
	})
}

func checkBias(op string, b *Var, n int) {
	if b != nil && (len(b.Value.Shape) != 1 || b.Value.Shape[0] != n) {
		panic(fmt.Sprintf("autodiff.%s: bias shape %v, want [%d]", op, b.Value.Shape, n))
	}
}

func addBiasRows(rows, bias []float32) { kernels.AddBias(rows, bias) }

// biasGrad adds Σ_rows gy to gb, summing per-worker partials in order.
func biasGrad(gy []float32, c int, gb []float32) {
	M := len(gy) / c
	p := tensor.Chunks(M, 1024)
	part := make([]float64, p*c)
	tensor.Parallel(M, 1024, func(w, lo, hi int) {
		kernels.ColSums(part[w*c:(w+1)*c], gy[lo*c:hi*c])
	})
	for w := 0; w < p; w++ {
		for j := 0; j < c; j++ {
			gb[j] += float32(part[w*c+j])
		}
	}
}

// convBackward propagates gy through the conv of geometry g with x as the
// im2col source ("input" volume) and w as [K, co]; if transposed, roles are
// those of ConvTranspose3D: g's input is the transposed conv's output (its
// gradient gy), and x is g's output-shaped operand.
func convBackward(g *convGeom, x, w, b *Var, gy []float32, transposed bool) {
	K, co := g.kcols(), g.co
	wd := w.Value.Data
	if b != nil && b.RequiresGrad {
		if transposed {
			biasGrad(gy, g.c, b.grad())
		} else {
			biasGrad(gy, co, b.grad())
		}
	}
	T, nt := g.tiles()
	p := tensor.Chunks(nt, 1)
	if w.RequiresGrad && !transposed && g.winograd() {
		g.winoWeightGrad(x.Value.Data, gy, w.grad())
	} else if w.RequiresGrad && !transposed && g.zsplit() {
		g.weightGradZ(x.Value.Data, gy, w.grad())
	} else if w.RequiresGrad {
		// dW[K,co] = Σ_tiles colᵀ · rows  (conv: col of x, rows of gy;
		// transposed: col of gy, rows of x), per-worker partials.
		parts := make([][]float32, p)
		src, rowsOf := x.Value.Data, gy
		if transposed {
			src, rowsOf = gy, x.Value.Data
		}
		g.forEachTile(func(wk, r0, r1 int, col []float32) {
			if parts[wk] == nil {
				parts[wk] = getBuf(K * co)
			}
			a, ta, lda := g.colOrSrc(src, r0, r1, col)
			kernels.Sgemm(!ta, false, K, co, r1-r0, 1, a, lda, rowsOf[r0*co:r1*co], co, 1, parts[wk], co)
		})
		addParts(w.grad(), parts)
	}
	if transposed && x.RequiresGrad {
		// dX = im2col(gy) · W  (rows × K)·(K × co): a forward conv of gy;
		// the tiles cover every row, so a fresh gradient is written (β 0).
		gx, fresh := x.gradFresh()
		beta := float32(1)
		if fresh {
			beta = 0
		}
		g.forEachTile(func(_, r0, r1 int, col []float32) {
			a, ta, lda := g.colOrSrc(gy, r0, r1, col)
			kernels.Sgemm(ta, false, r1-r0, co, K, 1, a, lda, wd, co, beta, gx[r0*co:r1*co], co)
		})
		return
	}
	if !transposed && x.RequiresGrad {
		gx, fresh := x.gradFresh()
		if g.s == [3]int{1, 1, 1} && !g.identity() {
			inputGradAsConv(g, gy, wd, gx, !fresh)
			return
		}
		// dX = col2im(gy · Wᵀ).
		if fresh {
			clearPar(gx)
		}
		colAdjoint(g, gy, wd, gx, T, p, false)
	}
}

// inputGradGeom is the geometry of the forward conv that computes a
// stride-1 conv's input gradient: from gy (g's output, g.co channels) to
// g's input (g.c channels), with the flipped kernel and padding k−1−p.
func (g *convGeom) inputGradGeom() convGeom {
	return convGeom{n: g.n, d: g.od, h: g.oh, w: g.ow, c: g.co, k: g.k, s: [3]int{1, 1, 1},
		p: [3]int{g.k[0] - 1 - g.p[0], g.k[1] - 1 - g.p[1], g.k[2] - 1 - g.p[2]}, od: g.d, oh: g.h, ow: g.w, co: g.c}
}

// inputGradAsConv computes dX += (dX = unless acc) the input gradient of a stride-1 conv as a
// forward conv of gy with the kernel flipped in space and transposed in
// channels, padding k−1−p:
//
//	dX[i, ci] = Σ_{k', co} gy[i − (k−1−p) + k', co] · W[k−1−k', ci, co]
//
// Each tile writes its own rows of dX, so workers need no private buffers
// and no col2im scatter.
func inputGradAsConv(g *convGeom, gy, wd, gx []float32, acc bool) {
	ci, co := g.c, g.co
	g2 := g.inputGradGeom()
	if g2.winograd() {
		// the kernel transform reads the flipped kernels from wd itself
		g2.winoConv(gy, wd, true, gx, acc, nil)
		return
	}
	// The flipped kernel comes from the buffer pool, not the Go heap: for
	// the reference network's 1024×1024 bottleneck conv it is 113 MiB,
	// which on the heap raised the step's peak RSS by that much again
	// until the next collection.
	wf := getBufDirty(len(wd))
	defer putBuf(wf)
	flipKernels(wf, wd, g.k, ci, co)
	if g2.zsplit() {
		g2.convZ(gy, wf, gx, acc, nil)
		return
	}
	K := g2.kcols()
	beta := float32(0)
	if acc {
		beta = 1
	}
	g2.forEachTile(func(_, r0, r1 int, col []float32) {
		a, ta, lda := g2.colOrSrc(gy, r0, r1, col)
		kernels.Sgemm(ta, false, r1-r0, ci, K, 1, a, lda, wf, ci, beta, gx[r0*ci:r1*ci], ci)
	})
}

// flipKernels writes wf[kz',ky',kx',co,ci] = w[kd−1−kz', kh−1−ky',
// kw−1−kx', ci, co] (the input gradient's kernels): the taps in parallel,
// each transposed in blocks.
func flipKernels(wf, wd []float32, k [3]int, ci, co int) {
	kd, kh, kw := k[0], k[1], k[2]
	tensor.Parallel(kd*kh*kw, max(1, 4096/(ci*co)), func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			kz, ky, kx := t/(kh*kw), t/kw%kh, t%kw
			dst := wf[(((kd-1-kz)*kh+(kh-1-ky))*kw+(kw-1-kx))*co*ci:][:co*ci]
			transposeBlocked(dst, wd[t*ci*co:(t+1)*ci*co], ci, co)
		}
	})
}

// transposeBlocked writes the c×r transpose of the row-major r×c src to
// dst, through a 16×16 tile on the stack: each tile's 16 source rows and
// 16 destination rows are each read or written whole, one after the other.
// (Writing each source row's values straight to their 16–32 destination
// rows kept those rows' cache lines live across the block; at a stride of
// a power of two, as for 1024 channels, they all share one cache set and
// evicted each other: 3 ns per float.)
func transposeBlocked(dst, src []float32, r, c int) {
	const bs = 16
	var t [bs][bs]float32
	for a0 := 0; a0 < r; a0 += bs {
		na := min(bs, r-a0)
		for b0 := 0; b0 < c; b0 += bs {
			nb := min(bs, c-b0)
			for i := 0; i < na; i++ {
				copy(t[i][:nb], src[(a0+i)*c+b0:])
			}
			for j := 0; j < nb; j++ {
				row := dst[(b0+j)*r+a0:][:na]
				for i := range row {
					row[i] = t[i][j]
				}
			}
		}
	}
}

// colAdjoint computes dst += col2im(rows · Wᵀ) over all tiles, where rows
// has co columns and W is [K, co]. Workers after the first accumulate into
// private buffers that are then added in worker order (deterministic); when
// the windows are disjoint and set is true, workers assign directly.
func colAdjoint(g *convGeom, rows, wd, dst []float32, T, p int, set bool) {
	K, co := g.kcols(), g.co
	// Each tile of an identity geometry (1×1×1, stride 1) adds to its own
	// rows of dst only, so workers need no private copies of dst (for the
	// U-Net's head those were a zeroed copy of the whole input gradient
	// per extra worker, summed back afterwards).
	direct := (set && g.disjoint()) || g.identity()
	bufs := make([][]float32, p)
	g.forEachTile(func(wk, r0, r1 int, col []float32) {
		target := dst
		if wk > 0 && !direct {
			if bufs[wk] == nil {
				bufs[wk] = getBuf(len(dst))
			}
			target = bufs[wk]
		}
		if g.identity() {
			kernels.Sgemm(false, true, r1-r0, K, co, 1, rows[r0*co:r1*co], co, wd, co, 1, target[r0*K:r1*K], K)
			return
		}
		c := col[:(r1-r0)*K]
		kernels.Sgemm(false, true, r1-r0, K, co, 1, rows[r0*co:r1*co], co, wd, co, 0, c, K)
		g.col2im(c, r0, r1, target, direct)
	})
	addParts(dst, bufs)
}

// ConvTranspose3D returns the transposed convolution (the adjoint of
// Conv3D, PyTorch's ConvTranspose3d) of x [N,D,H,W,Cin] with weights
// w [kd,kh,kw,Cout,Cin] (Keras Conv3DTranspose layout; PyTorch's
// [Cin,Cout,kd,kh,kw] permuted) plus bias b [Cout]:
//
//	y[n, i·s − p + k, co] += x[n,i,ci] · w[kz,ky,kx,co,ci];  y += b
//
// Output size (in−1)·s + k − 2p; with Same, in·s. Kernel 2, stride 2 (the
// U-Net's up-sampling) has disjoint windows and writes outputs directly.
func (tp *Tape) ConvTranspose3D(x, w, b *Var, spec ConvSpec) *Var {
	tensor.MustRank("autodiff.ConvTranspose3D input", x.Value, 5)
	tensor.MustRank("autodiff.ConvTranspose3D weight", w.Value, 5)
	xs, ws := x.Value.Shape, w.Value.Shape
	if ws[4] != xs[4] {
		panic(fmt.Sprintf("autodiff.ConvTranspose3D: input %v has %d channels, weight %v expects %d",
			xs, xs[4], ws, ws[4]))
	}
	cout := ws[3]
	checkBias("ConvTranspose3D", b, cout)
	k := [3]int{ws[0], ws[1], ws[2]}
	// g is the geometry of the adjoint conv: from y [N,OD,OH,OW,Cout] to x.
	g := convGeom{n: xs[0], c: cout, k: k, co: xs[4], od: xs[1], oh: xs[2], ow: xs[3]}
	in := [3]int{xs[1], xs[2], xs[3]}
	var outSz [3]int
	for i := 0; i < 3; i++ {
		s := spec.Stride[i]
		if s == 0 {
			s = 1
		}
		g.s[i] = s
		if spec.Same {
			tot := max(k[i]-s, 0)
			g.p[i] = tot / 2
			outSz[i] = in[i] * s
		} else {
			g.p[i] = spec.Pad[i]
			outSz[i] = (in[i]-1)*s + k[i] - 2*g.p[i]
		}
		if outSz[i] <= 0 {
			panic(fmt.Sprintf("autodiff.ConvTranspose3D: kernel %v stride %v pad %v does not fit input %v", k, g.s, g.p, xs))
		}
	}
	g.d, g.h, g.w = outSz[0], outSz[1], outSz[2]
	var out *tensor.Tensor
	if g.up2Direct() {
		out = tp.allocFull(g.n, g.d, g.h, g.w, cout)
		g.up2(x.Value.Data, w.Value.Data, out.Data)
	} else {
		out = tp.alloc(g.n, g.d, g.h, g.w, cout)
		T, nt := g.tiles()
		colAdjoint(&g, x.Value.Data, w.Value.Data, out.Data, T, tensor.Chunks(nt, 1), true)
	}
	if b != nil {
		od := out.Data
		tensor.Parallel(len(od)/cout, 1024, func(_, lo, hi int) {
			addBiasRows(od[lo*cout:hi*cout], b.Value.Data)
		})
	}
	return tp.result(out, func(gy []float32) {
		convBackward(&g, x, w, b, gy, true)
	}, x, w, b)
}

// useUp2 enables up2 (a variable so the tests and the A/B benchmark
// compare it with colAdjoint).
var useUp2 = true

// up2MinW is the shortest input row up2 takes: its GEMMs have one row per
// input voxel of a row.
const up2MinW = 16

// up2Direct reports whether g (the adjoint geometry of a transposed conv)
// is the U-Net's up-sampling, kernel 2 and stride 2 without padding, with
// input rows of at least up2MinW voxels.
func (g *convGeom) up2Direct() bool {
	return useUp2 && g.k == [3]int{2, 2, 2} && g.s == [3]int{2, 2, 2} && g.p == [3]int{} &&
		g.d == 2*g.od && g.h == 2*g.oh && g.w == 2*g.ow && g.ow >= up2MinW
}

// up2 writes the kernel-2 stride-2 transposed conv of x ([N,od,oh,ow,ci],
// ci = g.co) with w ([2,2,2,co,ci], co = g.c) to out ([N,2od,2oh,2ow,co]),
// without bias, straight from the GEMMs. For a row of input voxels (fixed
// n, z, y) and a tap pair (kz, ky), the outputs of taps kx = 0, 1 of
// consecutive voxels are consecutive in out's row (2z+kz, 2y+ky): one GEMM
// of the row's voxels (ow × ci) by the pair's kernels (ci × 2co, packed
// once) writes that output row whole. colAdjoint's GEMM writes every tap
// to an im2col-shaped buffer that col2im then copies into out: the same
// sums (each output is one row-times-column product), with two more passes
// over an output-sized buffer.
func (g *convGeom) up2(x, wd, out []float32) {
	ci, co, W := g.co, g.c, g.ow
	n2 := 2 * co
	psz := kernels.PackBSize(ci, n2)
	pk := getBufDirty(4 * psz)
	defer putBuf(pk)
	bt := getBufDirty(ci * n2)
	var packed [4]kernels.PackedB
	for t := 0; t < 4; t++ {
		// the pair's rows of w, [(kx, o)][ci], as [ci][(kx, o)]
		transposeBlocked(bt, wd[t*n2*ci:(t+1)*n2*ci], n2, ci)
		packed[t] = kernels.PackB(pk[t*psz:(t+1)*psz], bt, n2, ci, n2)
	}
	putBuf(bt)
	rows := g.n * g.od * g.oh
	parOwn(rows, 1, func(lo, hi int) { // (SgemmPacked runs on the calling goroutine)
		for r := lo; r < hi; r++ {
			n, z, y := r/(g.od*g.oh), r/g.oh%g.od, r%g.oh
			a := x[r*W*ci : (r+1)*W*ci]
			for t := 0; t < 4; t++ {
				iz, iy := 2*z+t/2, 2*y+t%2
				c := out[((n*g.d+iz)*g.h+iy)*g.w*co:][:g.w*co]
				kernels.SgemmPacked(W, 1, a, ci, packed[t], 0, c, n2)
			}
		}
	})
}

package autodiff

import (
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// The z-split convolution path: for a conv with stride 1 along z and kd > 1
// taps there, the im2col matrix is built per input plane with only the
// (ky,kx,c) columns (K9 = kh·kw·c), and the kd taps along z become kd GEMMs
// with k = K9 that read the same plane rows shifted by one plane each:
//
//	y[n,oz,oy,ox,:] = Σ_kz col9[n, oz−p+kz, oy, ox, :] · W[kz]      (W[kz]: [K9, co])
//
// An input plane's col9 rows serve up to kd output planes, so building the
// operand costs (T+kd−1)/T plane copies per output plane for a slab of T
// output planes instead of kd for the full im2col, and no col row is ever
// written for a z-padding plane (those taps are skipped by clipping the
// output-plane range). The weight gradient uses the same decomposition
// (dW[kz] += col9ᵀ · dY over the valid planes), and the input gradient of a
// stride-1 conv is a forward conv of dY (inputGradAsConv), so it runs here
// too. Each output element's value is accumulated in the fixed kz order, and
// the tiling depends only on the shapes and the thread count, so results are
// bit-identical run to run (they differ from the one-GEMM im2col path only
// by floating-point summation order).
//
// useZSplit switches the path off (tests compare it with the im2col path).
var useZSplit = true

// stripW is the width of the weight strips convZ runs its GEMMs on (the
// AVX2 wide micro-kernel's panel width).
const stripW = 16

// zMinRows is the fewest output rows the z-split path gives one GEMM when
// the plane allows (a multiple of the AVX2 kernels' 6 and 12 rows).
const zMinRows = 192

// zTileElems bounds one worker's col9 buffer (floats): 2 MiB.
var zTileElems = 1 << 19

// zsplit reports whether the z-split path applies to g.
func (g *convGeom) zsplit() bool {
	return useZSplit && g.s[0] == 1 && g.k[0] > 1 && g.c > 1
}

// zTiling returns the output planes per slab tz and output rows per band by
// for the z-split path, and the tile counts along z and y.
func (g *convGeom) zTiling() (tz, by, nz, ny int) {
	K9 := g.k[1] * g.k[2] * g.c
	kd := g.k[0]
	rowFloats := g.ow * K9
	tz = min(g.od, 8)
	by = max(1, min(g.oh, zTileElems/((tz+kd-1)*rowFloats)))
	if by < g.oh && by*g.ow < zMinRows {
		// wide rows (large K9): fewer planes per slab, so that each GEMM
		// still gets at least zMinRows rows (small GEMMs cost more in call
		// overhead and partial micro-tiles than the extra im2col rows)
		bmin := min(g.oh, (zMinRows+g.ow-1)/g.ow)
		tz = max(1, min(g.od, zTileElems/(bmin*rowFloats)-(kd-1)))
		by = max(bmin, min(g.oh, zTileElems/((tz+kd-1)*rowFloats)))
	}
	if by < g.oh && by >= 3 && (by*g.ow)%6 != 0 {
		// whole 6-row panels for the AVX2 kernel (no partial panel to pack
		// per call) where the band allows
		for b := by; b >= max(1, by-5); b-- {
			if (b*g.ow)%6 == 0 {
				by = b
				break
			}
		}
	}
	if by == g.oh {
		// whole planes: grow the slab while the buffer allows
		tz = max(tz, min(g.od, zTileElems/(g.oh*rowFloats)-(kd-1)))
	}
	return tz, by, (g.od + tz - 1) / tz, (g.oh + by - 1) / by
}

// zTile is one tile of the z-split path: batch item n, output planes
// [z0,z1), output rows [y0,y1) of each plane, and the input planes [a,b)
// whose col9 rows it needs.
type zTile struct{ n, z0, z1, y0, y1, a, b int }

// forEachZTile runs fn on every tile with the worker's col9 buffer filled
// for the tile's input planes; tiles are split into contiguous per-worker
// ranges (fixed for a given thread count).
func (g *convGeom) forEachZTile(src []float32, fn func(worker int, t zTile, col []float32)) {
	tz, by, nz, ny := g.zTiling()
	K9 := g.k[1] * g.k[2] * g.c
	kd, p := g.k[0], g.p[0]
	total := g.n * nz * ny
	// the 2-D geometry of one input plane (a conv over y and x only)
	g2 := convGeom{n: 1, d: 1, h: g.h, w: g.w, c: g.c, k: [3]int{1, g.k[1], g.k[2]},
		s: [3]int{1, g.s[1], g.s[2]}, p: [3]int{0, g.p[1], g.p[2]}, od: 1, oh: g.oh, ow: g.ow, co: g.co}
	plane := g.h * g.w * g.c
	defer sgemmSerial(tensor.Chunks(total, 1))()
	tensor.Parallel(total, 1, func(w, lo, hi int) {
		buf := getScratch((tz + kd - 1) * by * g.ow * K9)
		defer putScratch(buf)
		col := *buf
		for i := lo; i < hi; i++ {
			yi := i % ny
			zi := (i / ny) % nz
			n := i / (ny * nz)
			t := zTile{n: n, z0: zi * tz, z1: min(g.od, (zi+1)*tz), y0: yi * by, y1: min(g.oh, (yi+1)*by)}
			t.a = max(0, t.z0-p)
			t.b = min(g.d, t.z1-1-p+kd)
			rows := (t.y1 - t.y0) * g.ow
			for iz := t.a; iz < t.b; iz++ {
				off := (n*g.d + iz) * plane
				g2.im2col(src[off:off+plane], t.y0*g.ow, t.y1*g.ow, col[(iz-t.a)*rows*K9:])
			}
			fn(w, t, col)
		}
	})
}

// zRange returns the output planes [lo,hi) of tile t for which tap kz reads
// an input plane inside the volume.
func (g *convGeom) zRange(t zTile, kz int) (lo, hi int) {
	p := g.p[0]
	return max(t.z0, p-kz), min(t.z1, g.d+p-kz)
}

// convZ computes dst (= if accumulate, += ) the conv of src with weights wd
// [kd, K9, co] on the z-split path. Without accumulate, each output row
// starts as bias (zeros if bias is nil) and the taps are added to it.
func (g *convGeom) convZ(src, wd, dst []float32, accumulate bool, bias []float32) {
	K9 := g.k[1] * g.k[2] * g.c
	co, ohw := g.co, g.oh*g.ow
	// With more than 16 output channels (a multiple of 16), the weights are
	// laid out once as 16-column strips [kd][co/16][K9][16] and each GEMM
	// runs per strip: a B operand that is exactly one 16-wide panel is read
	// in place by Sgemm, where a wider B would be re-packed on every call
	// (the calls are many: one per tile, tap and plane).
	strips := co > stripW && co%stripW == 0
	var ws []float32
	if strips {
		ws = getBufDirty(len(wd))
		defer putBuf(ws)
		ns := co / stripW
		for kz := 0; kz < g.k[0]; kz++ {
			for r := 0; r < K9; r++ {
				src := wd[(kz*K9+r)*co : (kz*K9+r+1)*co]
				for j := 0; j < ns; j++ {
					copy(ws[((kz*ns+j)*K9+r)*stripW:((kz*ns+j)*K9+r+1)*stripW], src[j*stripW:(j+1)*stripW])
				}
			}
		}
	}
	gemm := func(kz, m int, a, c []float32) {
		if !strips {
			kernels.Sgemm(false, false, m, co, K9, 1, a, K9, wd[kz*K9*co:(kz+1)*K9*co], co, 1, c, co)
			return
		}
		ns := co / stripW
		for j := 0; j < ns; j++ {
			b := ws[(kz*ns+j)*K9*stripW : (kz*ns+j+1)*K9*stripW]
			kernels.Sgemm(false, false, m, stripW, K9, 1, a, K9, b, stripW, 1, c[j*stripW:], co)
		}
	}
	g.forEachZTile(src, func(_ int, t zTile, col []float32) {
		rows := (t.y1 - t.y0) * g.ow
		whole := rows == ohw
		if !accumulate {
			for oz := t.z0; oz < t.z1; oz++ {
				o := ((t.n*g.od+oz)*ohw + t.y0*g.ow) * co
				d := dst[o : o+rows*co]
				if bias == nil {
					clear(d)
					continue
				}
				for i := 0; i < len(d); i += co {
					copy(d[i:i+co], bias)
				}
			}
		}
		for kz := 0; kz < g.k[0]; kz++ {
			lo, hi := g.zRange(t, kz)
			if whole && hi > lo {
				a := col[(lo-g.p[0]+kz-t.a)*rows*K9:]
				o := (t.n*g.od + lo) * ohw * co
				gemm(kz, (hi-lo)*rows, a, dst[o:o+(hi-lo)*rows*co])
				continue
			}
			for oz := lo; oz < hi; oz++ {
				a := col[(oz-g.p[0]+kz-t.a)*rows*K9:]
				o := ((t.n*g.od+oz)*ohw + t.y0*g.ow) * co
				gemm(kz, rows, a, dst[o:o+rows*co])
			}
		}
	})
}

// weightGradZ adds the weight gradient colᵀ·gy of the z-split path to gw
// ([kd, K9, co]): per-worker partial sums, added in worker order.
func (g *convGeom) weightGradZ(src, gy, gw []float32) {
	K9 := g.k[1] * g.k[2] * g.c
	co, ohw := g.co, g.oh*g.ow
	_, _, nz, ny := g.zTiling()
	parts := make([][]float32, tensor.Chunks(g.n*nz*ny, 1))
	g.forEachZTile(src, func(wk int, t zTile, col []float32) {
		if parts[wk] == nil {
			parts[wk] = getBuf(len(gw))
		}
		part := parts[wk]
		rows := (t.y1 - t.y0) * g.ow
		whole := rows == ohw
		for kz := 0; kz < g.k[0]; kz++ {
			lo, hi := g.zRange(t, kz)
			pk := part[kz*K9*co : (kz+1)*K9*co]
			if whole && hi > lo {
				a := col[(lo-g.p[0]+kz-t.a)*rows*K9:]
				o := (t.n*g.od + lo) * ohw * co
				kernels.Sgemm(true, false, K9, co, (hi-lo)*rows, 1, a, K9, gy[o:o+(hi-lo)*rows*co], co, 1, pk, co)
				continue
			}
			for oz := lo; oz < hi; oz++ {
				a := col[(oz-g.p[0]+kz-t.a)*rows*K9:]
				o := ((t.n*g.od+oz)*ohw + t.y0*g.ow) * co
				kernels.Sgemm(true, false, K9, co, rows, 1, a, K9, gy[o:o+rows*co], co, 1, pk, co)
			}
		}
	})
	addParts(gw, parts)
}

// sgemmSerial makes each Sgemm call single-threaded while workers > 1
// goroutines already run tiles in parallel (otherwise every worker's call
// would start its own helpers: more runnable goroutines than cores); it
// returns the function that restores the setting. Sgemm's results do not
// depend on its thread count.
func sgemmSerial(workers int) func() {
	if workers <= 1 {
		return func() {}
	}
	old := kernels.Threads()
	kernels.SetThreads(1)
	return func() { kernels.SetThreads(old) }
}

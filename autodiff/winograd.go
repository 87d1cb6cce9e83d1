package autodiff

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// The Winograd path for the U-Net's 3×3×3, stride-1, padding-1 ("same")
// convolutions: F(2×2×2, 3×3×3), see internal/kernels/winograd.go for the
// transforms. The output is cut into 2×2×2 tiles; a block of B tiles is
// transformed into V[ξ][B][Cin] (64 points ξ per tile, channels last), the
// 64 products become 64 GEMMs M[ξ] = V[ξ]·U[ξ] with U[ξ] = (G⊗G⊗G w)[ξ]
// ([Cin, Cout], transformed once per call), and each tile's 2×2×2 outputs
// come back through the output transform. That is 64 multiply-adds per
// output tile and channel pair where the direct convolution needs 216
// (3.4× fewer), for the price of the transforms, which are linear in the
// channel counts rather than in their product.
//
// The input gradient of such a conv is again a same-padded 3×3×3
// correlation (of dY with the flipped, channel-transposed kernel), so it
// runs here too. The weight gradient is the chain rule through the same
// expression: dU[ξ] = Σ_tiles V[ξ]ᵀ·Q[ξ] with Q = A⊗A⊗A dY (the output
// transform's transpose), then dW = Gᵀ⊗Gᵀ⊗Gᵀ dU.
//
// Precision: the transforms multiply by 0, ±1 and ±½ only, and each output
// is a sum of at most 64·Cin products of transformed values, so float32
// results differ from the direct path's by summation order and a few ulps
// of transform rounding. Measured on the PyTorch conv fixture, the largest
// error relative to the tensor's largest magnitude is 2.5e-7 (y), 3.5e-7
// (dx) and 4.4e-7 (dW) against the direct path's 2.3e-7, 3.1e-7 and 3.1e-7;
// the path matches the im2col path within 1e-5 relative on odd shapes, and
// the U-Net golden test against PyTorch runs with it on.
// Determinism: blocks depend only on the shapes, each output element is
// computed by exactly one block in a fixed order, and weight-gradient
// partials are summed in worker order, as on the other paths.
//
// useWinograd switches the path off (tests compare it with the others).
var useWinograd = true

// winoPairs switches the bfloat16-pairs input transform off (tests compare
// it with converting a float32 V in the GEMM).
var winoPairs = true

// winoMinTiles is the fewest output tiles (over the batch) for which the
// path is used: below it the weight transform and the per-point GEMMs over
// too few rows cost more than the multiplications saved. Measured
// (BenchmarkConv3DSmallVolumes, Zen 4, 2 threads): on a 4³ volume with
// batch 1 (8 tiles; config b's bottleneck) F(2,3) is 1.3–2.1× slower than
// the z-split path; with batch 5 (40 tiles; the reference network's
// 1024-channel bottleneck) it is 1.5–2.6× faster.
var winoMinTiles = 32

// useWino4 selects F(4×4×4, 3×3×3) (kernels/winograd4.go) on volumes
// with at least winoMinTiles4 of its 4×4×4 output tiles: 2.4× fewer
// multiplications than F(2,3) and cheaper transforms per output, for a
// larger float32 rounding error (TestWino4Accuracy in the kernels package:
// a few 1e-6 of the output's largest magnitude, against 2–4e-7 for F(2,3)
// and the direct path). It is off by default: after ten Adam steps of the
// U-Net golden test its parameters differ from PyTorch's by 5.8× PyTorch's
// own float32-to-float64 spread (RMS), past that test's tolerance of 3×. SetWinograd(4)
// or FESS_WINOGRAD=4 turn it on.
var useWino4 = os.Getenv("FESS_WINOGRAD") == "4"

// winoMinTiles4 is the fewest F(4,3) tiles (over the batch) for F(4,3);
// below it F(2,3) serves. Measured (BenchmarkConv3DWinogradTiles, Zen 4, 2
// threads), forward + backward: F(4,3) is 1.3× faster on config s's 8³
// level (40 tiles, 256 channels) and 1.6× slower on config b's (8 tiles,
// 128 channels), where the 216-point weight transform and the per-point
// GEMMs' fixed costs are spread over too few rows.
var winoMinTiles4 = 32

// winoMinC is the fewest input and output channels for the path: with one
// input channel (the first layer) the transforms cost more than the
// products they save.
var winoMinC = 4

// winoBlockBytes bounds one worker's V and M (or V and Q) buffers on the
// blocked schedule; winoWholeBytes bounds all of V and M on the whole
// schedule (see winoPlan). 2.5 MiB, more than the development machine's
// 1 MiB L2 per core: the longer GEMMs (36 rows instead of 12 on the
// reference network's 32-channel 64³ level) gain more than the L3 traffic
// costs (A/B, F(4,3): config s 0.88–0.98, c 0.89, b 0.97 of the step at
// 1 MiB; 4 MiB was faster on c, slower on s).
var (
	winoBlockBytes = 5 << 19
	winoWholeBytes = 24 << 20
	// winoWholeMaxBytes bounds V and M on the whole schedule where the
	// kernels outweigh them (see winoPlan).
	winoWholeMaxBytes = 256 << 20
	// winoWholeMaxTiles bounds the tiles of a volume that takes the whole
	// schedule for its size alone: with more, blocks of a hundred tiles
	// and more keep V and M in cache instead of sweeping all of them three
	// times (config a's 32³ level, 1024 tiles of 8 channels in 14 MB: the
	// step 0.83 of the whole schedule's, A/B); with fewer (config b's 16³
	// decoder conv, 64 tiles in 11 MB), blocks would be short. The weight
	// gradient keeps the whole schedule there (its sums stay grouped as
	// before: blocked, the ten-step Adam golden test on the portable
	// kernels moved 5.6× PyTorch's own spread from PyTorch, against 0.06×
	// whole).
	winoWholeMaxTiles = 256
)

// winoMinBlock is the fewest tiles per block where the volume has them: the
// per-point GEMMs get at least this many rows. Blocks are otherwise sized
// to keep V and M within winoBlockBytes (the L2 cache): at 12 rather than
// 48, the reference network's 32³ level with F(4,3) (5 × 8³ tiles,
// 128→64 channels, 166 KB per tile) keeps its block in L2 and ran 1.25–1.5×
// faster forward and 1.1× backward (GFLOP per CPU-second, alternated), with
// no change measurable at 64→32 and 32→32 channels.
const winoMinBlock = 12

// winoMinBlockGrad is winoMinBlock for the weight gradient, whose GEMMs
// sum over the block's tiles (k = tiles) into the gradient: short sums
// spend their time loading and storing it (48 against 12 on the reference
// network's 64³ and 32³ levels: backward with the input gradient 1.1–1.4×
// faster, GFLOP per CPU-second, alternated).
const winoMinBlockGrad = 48

// winoBlockQuantBF16 rounds the blocks down to a multiple of the bfloat16
// GEMM kernel's 16 rows in BF16 precision (not the float32 kernels' 12):
// at 12, a block of 36 tiles ran two full 16-row tiles and one of 4 rows
// on a scratch copy of C, a third of the kernel's work on padding.
var winoBlockQuantBF16 = 16

// winoPad separates consecutive points' rows in V and M by one cache line
// more than their length, so that with a power-of-two block length the 64
// points of a tile, which the transforms touch together, do not all map to
// one L1 set (a precaution: no difference was measurable on the development
// machine).
const winoPad = 16

// winograd reports whether the Winograd path applies to g.
func (g *convGeom) winograd() bool {
	if !useWinograd || g.k != [3]int{3, 3, 3} || g.s != [3]int{1, 1, 1} || g.p != [3]int{1, 1, 1} ||
		g.od != g.d || g.oh != g.h || g.ow != g.w || g.c < winoMinC || g.co < winoMinC {
		return false
	}
	tz, ty, tx := (g.od+1)/2, (g.oh+1)/2, (g.ow+1)/2
	return g.n*tz*ty*tx >= winoMinTiles
}

// winoPlan is the schedule of one Winograd conv. Tiles are numbered with x
// fastest, then y, z and the batch item. On the whole schedule (deep, small
// levels) one buffer holds every tile's transform: the tile transforms run
// in parallel over tiles and the 64 per-point GEMMs in parallel over
// points, each with all tiles as rows. On the blocked schedule (large
// levels) each worker takes contiguous blocks of tiles through transform,
// GEMMs and back-transform while they are in cache. Neither depends on the
// thread count except for the split of work, and every output element is
// computed by one GEMM row in a fixed order.
type winoPlan struct {
	m, np             int // output tile edge (2 or 4) and transformed points per tile (64 or 216)
	tz, ty, tx, total int
	block, blocks     int
	vs, ms            int // point strides of V and M (floats)
	whole             bool
}

// winoTile is the output tile edge of g's Winograd path: 4 (F(4,3)) where
// useWino4 is on and the volume has at least winoMinTiles4 such tiles, else
// 2 (F(2,3)).
func (g *convGeom) winoTile() int {
	if useWino4 && g.n*((g.od+3)/4)*((g.oh+3)/4)*((g.ow+3)/4) >= winoMinTiles4 {
		return 4
	}
	return 2
}

func (g *convGeom) winoPlan(cin, cout int) winoPlan { return g.winoPlanFor(cin, cout, false) }

// winoPlanFor is winoPlan for the forward and input gradient (grad false)
// or the weight gradient (grad true: blocks of at least winoMinBlockGrad
// tiles, and the whole schedule wherever V and M fit winoWholeBytes).
func (g *convGeom) winoPlanFor(cin, cout int, grad bool) winoPlan {
	minBlock := winoMinBlock
	if grad {
		minBlock = winoMinBlockGrad
	}
	// blocks of whole micro-tiles: 6 and 12 rows for the float32 kernels,
	// 16 for the bfloat16 one
	quant := 12
	if kernels.Precision() == kernels.BF16 {
		quant = winoBlockQuantBF16
		minBlock = (minBlock + quant - 1) / quant * quant
	}
	var t winoPlan
	t.m = g.winoTile()
	t.np = (t.m + 2) * (t.m + 2) * (t.m + 2)
	t.tz, t.ty, t.tx = (g.od+t.m-1)/t.m, (g.oh+t.m-1)/t.m, (g.ow+t.m-1)/t.m
	t.total = g.n * t.tz * t.ty * t.tx
	perTile := t.np * 4 * (cin + cout)
	if t.total*perTile <= winoWholeBytes && (t.total <= winoWholeMaxTiles || grad) {
		t.whole, t.block, t.blocks = true, t.total, 1
	} else {
		b := max(winoBlockBytes/perTile, minBlock)
		// at least two blocks per worker where the volume allows, so that
		// both cores get similar shares
		b = min(b, (t.total+2*tensor.Threads()-1)/(2*tensor.Threads()))
		if b > quant {
			b -= b % quant
		}
		t.block = max(b, 1)
		t.blocks = (t.total + t.block - 1) / t.block
		// Each block streams every point's packed kernels (np·cin·cout
		// floats) from memory again, and each worker past the first sums
		// its weight gradient into a buffer of that size. Where that costs
		// more than writing and reading back all of V and M once (few tiles
		// of many channels: the reference network's 8³ level), the whole
		// schedule is cheaper, within winoWholeMaxBytes.
		if all := t.total * perTile; all <= winoWholeMaxBytes && 2*all < (t.blocks-1)*t.np*4*cin*cout {
			t.whole, t.block, t.blocks = true, t.total, 1
		}
	}
	t.vs, t.ms = t.block*cin+winoPad, t.block*cout+winoPad
	return t
}

// at locates tile i: batch item n and the first output voxel (z,y,x).
func (t *winoPlan) at(i int) (n, z, y, x int) {
	x = t.m * (i % t.tx)
	i /= t.tx
	y = t.m * (i % t.ty)
	i /= t.ty
	z = t.m * (i % t.tz)
	return i / t.tz, z, y, x
}

// winoScratch is one worker's buffers: V and M (blocked schedule only),
// the boundary stage and the transforms' scratch.
type winoScratch struct {
	v, m, stage, tmp []float32
	zero             []float32 // zeros for the padding lines of Wino4InRows
	tile             int       // the plan's output tile edge
}

// zeroLine returns n zeros (a buffer kept with the scratch).
func (s *winoScratch) zeroLine(n int) []float32 {
	if len(s.zero) < n {
		if s.zero != nil {
			putBuf(s.zero)
		}
		s.zero = getBuf(n)
	}
	return s.zero[:n]
}

func newWinoScratch(t *winoPlan, cin, cout int, blocks bool) *winoScratch {
	tmp := kernels.WinoInTmp
	if t.m == 4 {
		tmp = kernels.Wino4Tmp
	}
	s := &winoScratch{stage: getBufDirty(t.np * max(cin, cout)), tmp: getBufDirty(tmp), tile: t.m}
	if blocks {
		s.v, s.m = getBufDirty(t.np*t.vs), getBufDirty(t.np*t.ms)
	}
	return s
}

func (s *winoScratch) free() {
	for _, b := range [][]float32{s.v, s.m, s.stage, s.tmp, s.zero} {
		if b != nil {
			putBuf(b)
		}
	}
}

// winoInputTile writes the input transform of the 4×4×4 tile of src
// ([N,D,H,W,c] with g's spatial size) whose first output voxel is (z,y,x)
// into v (point stride ds), or, with vp != nil, as bfloat16 pairs into vp
// (kernels.WinoInBF16; c even, ds in pairs); voxels outside the volume (the
// padding) are zeros, gathered through s.stage.
func (g *convGeom) winoInputTile(s *winoScratch, src []float32, c, n, z, y, x int, v []float32, vp []uint32, ds int) {
	sx, sy, sz := c, g.w*c, g.h*g.w*c
	z0, y0, x0 := z-1, y-1, x-1
	e := s.tile + 2 // the input window's edge
	inside := z0 >= 0 && y0 >= 0 && x0 >= 0 && z0+e <= g.d && y0+e <= g.h && x0+e <= g.w
	lo, hi := max(0, -x0), min(e, g.w-x0) // the window's voxels inside the volume along x
	if !inside && s.tile == 4 && lo < hi && (lo == 0 && hi == e || useRowsWindow && kernels.Wino4RowsWindowed()) {
		// a tile at a face: its lines are rows of src (from voxel lo to
		// hi, the rest padding) or padding, read in place
		// (kernels.Wino4InRowsX) instead of gathered
		var off [36]int
		for a := 0; a < 6; a++ {
			for b := 0; b < 6; b++ {
				iz, iy := z0+a, y0+b
				off[a*6+b] = -1
				if iz >= 0 && iz < g.d && iy >= 0 && iy < g.h {
					off[a*6+b] = (((n*g.d+iz)*g.h+iy)*g.w + x0 + lo) * c
				}
			}
		}
		zeros := s.zeroLine(6 * c)
		if vp != nil {
			kernels.Wino4InRowsXBF16(vp, ds, src, &off, zeros, c, lo, hi, c, s.tmp)
		} else {
			kernels.Wino4InRowsX(v, ds, src, &off, zeros, c, lo, hi, c, s.tmp)
		}
		return
	}
	if !inside {
		st := s.stage[:e*e*e*c]
		gatherTile(st, src, c, n, z0, y0, x0, e, g.d, g.h, g.w)
		src, sx, sy, sz = st, c, e*c, e*e*c
	} else {
		src = src[(((n*g.d+z0)*g.h+y0)*g.w+x0)*c:]
	}
	if s.tile == 4 {
		if vp != nil {
			kernels.Wino4InBF16(vp, ds, src, sx, sy, sz, c, s.tmp)
		} else {
			kernels.Wino4In(v, ds, src, sx, sy, sz, c, s.tmp)
		}
	} else if vp != nil {
		kernels.WinoInBF16(vp, ds, src, sx, sy, sz, c, s.tmp)
	} else {
		kernels.WinoIn(v, ds, src, sx, sy, sz, c, s.tmp)
	}
}

// asPairs views a float32 buffer's storage as uint32 (bfloat16 pairs).
func asPairs(b []float32) []uint32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b))
}

// useRowsWindow lets tiles at an x face read their lines in place through
// the masked kernels (kernels.Wino4InRowsX) where the CPU has them, instead
// of gathering the tile (a variable for the A/B benchmarks).
var useRowsWindow = true

// gatherTile copies the size³ window with first voxel (z0,y0,x0) of batch
// item n of src ([N,d,h,w,c]) into st (size³·c floats, x fastest), with
// zeros where the window leaves the volume: the boundary tiles' staging.
func gatherTile(st, src []float32, c, n, z0, y0, x0, size, d, h, w int) {
	xlo, xhi := max(x0, 0), min(x0+size, w)
	row := size * c
	head, tail := (xlo-x0)*c, (x0+size-xhi)*c // zero voxels before and after the volume along x
	for a := 0; a < size; a++ {
		iz := z0 + a
		for b := 0; b < size; b++ {
			iy := y0 + b
			r := st[(a*size+b)*row : (a*size+b+1)*row]
			if iz < 0 || iz >= d || iy < 0 || iy >= h || xlo >= xhi {
				clear(r)
				continue
			}
			off := (((n*d+iz)*h+iy)*w + xlo) * c
			clear(r[:head])
			copy(r[head:], src[off:off+(xhi-xlo)*c])
			clear(r[row-tail:])
		}
	}
}

// winoOutputTile writes (or adds, if acc) the output transform of one
// tile's points m (stride ms) plus bias to the 2×2×2 outputs of dst whose
// first voxel is (z,y,x); outputs past the volume's end are dropped.
func (g *convGeom) winoOutputTile(s *winoScratch, dst []float32, cout, n, z, y, x int, m []float32, ms int, bias []float32, acc bool) {
	osx, osy, osz := cout, g.ow*cout, g.oh*g.ow*cout
	off := (((n*g.od+z)*g.oh+y)*g.ow + x) * cout
	k := s.tile
	out := kernels.WinoOut
	if k == 4 {
		out = kernels.Wino4Out
	}
	if z+k <= g.od && y+k <= g.oh && x+k <= g.ow {
		out(dst[off:], osx, osy, osz, m, ms, cout, bias, acc, s.tmp)
		return
	}
	st := s.stage[:k*k*k*cout]
	out(st, cout, k*cout, k*k*cout, m, ms, cout, bias, false, s.tmp)
	for a := 0; a < k && z+a < g.od; a++ {
		for b := 0; b < k && y+b < g.oh; b++ {
			for c := 0; c < k && x+c < g.ow; c++ {
				d := dst[off+a*osz+b*osy+c*osx : off+a*osz+b*osy+c*osx+cout]
				sv := st[((a*k+b)*k+c)*cout:][:cout]
				if acc {
					kernels.AddTo(d, sv)
				} else {
					copy(d, sv)
				}
			}
		}
	}
}

// winoGradTile writes the transform A⊗A⊗A of the 2×2×2 output-gradient
// tile of gy whose first voxel is (z,y,x) into q (point stride qs);
// voxels past the volume's end count as zeros.
func (g *convGeom) winoGradTile(s *winoScratch, gy []float32, cout, n, z, y, x int, q []float32, qs int) {
	osx, osy, osz := cout, g.ow*cout, g.oh*g.ow*cout
	off := (((n*g.od+z)*g.oh+y)*g.ow + x) * cout
	k := s.tile
	grad := kernels.WinoGrad
	if k == 4 {
		grad = kernels.Wino4Grad
	}
	if z+k <= g.od && y+k <= g.oh && x+k <= g.ow {
		grad(q, qs, gy[off:], osx, osy, osz, cout, s.tmp)
		return
	}
	st := s.stage[:k*k*k*cout]
	gatherTile(st, gy, cout, n, z, y, x, k, g.od, g.oh, g.ow)
	grad(q, qs, st, cout, k*cout, k*k*cout, cout, s.tmp)
}

// forTiles runs fn over tiles [0, t.total) in parallel, each worker with
// its own scratch. fn writes only tile i's own rows and outputs, so the
// tiles are handed out dynamically (tensor.ParallelDynamic), in runs of
// at least 16.
func (t *winoPlan) forTiles(cin, cout int, fn func(s *winoScratch, i int)) {
	ws := newWorkerScratch(t, cin, cout, false)
	defer ws.free()
	tensor.ParallelDynamic(t.total, ownChunk(t.total, 16), func(w, lo, hi int) {
		s := ws.get(w)
		for i := lo; i < hi; i++ {
			fn(s, i)
		}
	})
}

// workerScratch holds one winoScratch per worker of a dynamic loop,
// created on a worker's first range.
type workerScratch struct {
	t         *winoPlan
	cin, cout int
	blocks    bool
	s         []*winoScratch
}

func newWorkerScratch(t *winoPlan, cin, cout int, blocks bool) *workerScratch {
	return &workerScratch{t: t, cin: cin, cout: cout, blocks: blocks, s: make([]*winoScratch, tensor.Threads())}
}

func (ws *workerScratch) get(w int) *winoScratch {
	if ws.s[w] == nil {
		ws.s[w] = newWinoScratch(ws.t, ws.cin, ws.cout, ws.blocks)
	}
	return ws.s[w]
}

func (ws *workerScratch) free() {
	for _, s := range ws.s {
		if s != nil {
			s.free()
		}
	}
}

// winoConv computes dst (+= if acc) the same-padded stride-1 3×3×3
// correlation of src ([N,D,H,W,g.c]) with wd ([3,3,3,g.c,g.co]) plus bias
// (may be nil), on the Winograd path. With flip, wd holds [3,3,3,g.co,g.c]
// kernels that are used flipped and transposed (flipKernels): the input
// gradient of the conv with those kernels.
func (g *convGeom) winoConv(src, wd []float32, flip bool, dst []float32, acc bool, bias []float32) {
	g.winoConvParts(onePart(src, g.c, false), wd, flip, onePart(dst, g.co, acc), bias)
}

// chanPart is one piece of a conv operand that is the concatenation of
// tensors along the channel axis (Conv3DCat): data ([N,D,H,W,c]) holds the
// operand's channels [off, off+c). For an output, acc adds to data instead
// of writing it.
type chanPart struct {
	data   []float32
	c, off int
	acc    bool
}

func onePart(d []float32, c int, acc bool) []chanPart { return []chanPart{{data: d, c: c, acc: acc}} }

// catParts is the input of a conv on the concatenation [a, b] (ca and cb
// channels).
func catParts(a []float32, ca int, b []float32, cb int) []chanPart {
	return []chanPart{{data: a, c: ca}, {data: b, c: cb, off: ca}}
}

// winoInputParts writes the input transform of tile (n,z,y,x) of the
// concatenation srcs into row j of v (point stride vs; as bfloat16 pairs
// if pairs): each part's channels at their offset. The transforms are
// per channel, so this is the transform of the concatenated tensor.
func (g *convGeom) winoInputParts(s *winoScratch, srcs []chanPart, cin, n, z, y, x int, v []float32, j, vs int, pairs bool) {
	for _, p := range srcs {
		if pairs {
			g.winoInputTile(s, p.data, p.c, n, z, y, x, nil, asPairs(v)[(j*cin+p.off)/2:], vs/2)
		} else {
			g.winoInputTile(s, p.data, p.c, n, z, y, x, v[j*cin+p.off:], nil, vs)
		}
	}
}

// winoOutputParts is winoOutputTile for an output split into parts: each
// part's channels of the tile's points m (row start; point stride ms).
func (g *convGeom) winoOutputParts(s *winoScratch, dsts []chanPart, n, z, y, x int, m []float32, ms int, bias []float32) {
	for _, p := range dsts {
		var bp []float32
		if bias != nil {
			bp = bias[p.off : p.off+p.c]
		}
		g.winoOutputTile(s, p.data, p.c, n, z, y, x, m[p.off:], ms, bp, p.acc)
	}
}

// winoConvParts is winoConv with the input and the output each given as
// channel parts (one part each: winoConv). Only the output parts listed
// are written; they may leave channels out.
func (g *convGeom) winoConvParts(srcs []chanPart, wd []float32, flip bool, dsts []chanPart, bias []float32) {
	cin, cout := g.c, g.co
	t := g.winoPlan(cin, cout)
	np := t.np
	var packed []kernels.PackedB
	if flip {
		pu, p := winoPackedWeights(t.m, np, wd, flip, cin, cout)
		defer putBuf(pu)
		packed = p
	} else {
		p, release := cachedPackedWeights(t.m, np, wd, cin, cout)
		defer release()
		packed = p
	}
	// In BF16 precision with an even channel count the input transform
	// rounds V to bfloat16 pairs itself (kernels.WinoInBF16, Wino4InBF16)
	// and the GEMMs read them in place: the same bits as converting a
	// float32 V while packing, with half the memory traffic and no
	// conversion pass. V's point stride is then t.vs/2 pairs.
	pairs := winoPairs && packed[0].BF16()
	for _, p := range srcs {
		pairs = pairs && p.c%2 == 0
	}
	vlen := np * t.vs
	if pairs {
		vlen /= 2
	}
	// inTile transforms tile i into row j of v; mul runs point xi's GEMM
	// on rows rows of v into m.
	inTile := func(s *winoScratch, v []float32, i, j int) {
		n, z, y, x := t.at(i)
		g.winoInputParts(s, srcs, cin, n, z, y, x, v, j, t.vs, pairs)
	}
	mul := func(rows int, v []float32, xi int, m []float32) {
		if pairs {
			kernels.SgemmPackedPairs(rows, 1, asPairs(v)[xi*t.vs/2:], cin/2, packed[xi], 0, m[xi*t.ms:], cout)
		} else {
			kernels.SgemmPacked(rows, 1, v[xi*t.vs:], cin, packed[xi], 0, m[xi*t.ms:], cout)
		}
	}
	if t.whole {
		v, m := getBufDirty(vlen), getBufDirty(np*t.ms)
		defer putBuf(v)
		defer putBuf(m)
		t.forTiles(cin, cout, func(s *winoScratch, i int) { inTile(s, v, i, i) })
		func() {
			defer sgemmSerial(tensor.Chunks(np, 1))()
			tensor.ParallelDynamic(np, 1, func(_, lo, hi int) { // each point writes its own M
				for xi := lo; xi < hi; xi++ {
					mul(t.total, v, xi, m)
				}
			})
		}()
		t.forTiles(cin, cout, func(s *winoScratch, i int) {
			n, z, y, x := t.at(i)
			g.winoOutputParts(s, dsts, n, z, y, x, m[i*cout:], t.ms, bias)
		})
		return
	}
	defer sgemmSerial(tensor.Chunks(t.blocks, 1))()
	// each block writes only its tiles' outputs: blocks are handed out
	// dynamically
	ws := newWorkerScratch(&t, cin, cout, true)
	defer ws.free()
	tensor.ParallelDynamic(t.blocks, 1, func(w, lo, hi int) {
		s := ws.get(w)
		for blk := lo; blk < hi; blk++ {
			i0 := blk * t.block
			nb := min(t.block, t.total-i0)
			for j := 0; j < nb; j++ {
				inTile(s, s.v, i0+j, j)
			}
			for xi := 0; xi < np; xi++ {
				mul(nb, s.v, xi, s.m)
			}
			for j := 0; j < nb; j++ {
				n, z, y, x := t.at(i0 + j)
				g.winoOutputParts(s, dsts, n, z, y, x, s.m[j*cout:], t.ms, bias)
			}
		}
	})
}

// winoWeightGrad adds the weight gradient of the Winograd-path conv of src
// with output gradient gy to gw ([3,3,3,g.c,g.co]).
func (g *convGeom) winoWeightGrad(src, gy, gw []float32) {
	g.winoWeightGradParts(onePart(src, g.c, false), gy, gw)
}

// winoWeightGradParts is winoWeightGrad with the input given as channel
// parts.
func (g *convGeom) winoWeightGradParts(srcs []chanPart, gy, gw []float32) {
	cin, cout := g.c, g.co
	t := g.winoPlanFor(cin, cout, true)
	np := t.np
	P := cin * cout
	ds := oddLines(P) // du's point stride
	if t.whole {
		// every point's GEMM writes all of its du (beta 0)
		du := getBufDirty(np * ds)
		defer putBuf(du)
		v, q := getBufDirty(np*t.vs), getBufDirty(np*t.ms)
		defer putBuf(v)
		defer putBuf(q)
		t.forTiles(cin, cout, func(s *winoScratch, i int) {
			n, z, y, x := t.at(i)
			g.winoInputParts(s, srcs, cin, n, z, y, x, v, i, t.vs, false)
			g.winoGradTile(s, gy, cout, n, z, y, x, q[i*cout:], t.ms)
		})
		func() {
			defer sgemmSerial(tensor.Chunks(np, 1))()
			tensor.ParallelDynamic(np, 1, func(_, lo, hi int) { // each point writes its own du
				for xi := lo; xi < hi; xi++ {
					kernels.Sgemm(true, false, cin, cout, t.total, 1, v[xi*t.vs:], cin,
						q[xi*t.ms:], cout, 0, du[xi*ds:xi*ds+P], cout)
				}
			})
		}()
		winoWeightsAdjoint(t.m, du, ds, P, gw)
		return
	}
	du := getBuf(np * ds)
	defer putBuf(du)
	workers := tensor.Chunks(t.blocks, 1)
	parts := make([][]float32, workers)
	func() {
		defer sgemmSerial(workers)()
		tensor.Parallel(t.blocks, 1, func(w, lo, hi int) {
			s := newWinoScratch(&t, cin, cout, true)
			defer s.free()
			part := du
			if w > 0 {
				part = getBuf(np * ds)
				parts[w] = part
			}
			for blk := lo; blk < hi; blk++ {
				i0 := blk * t.block
				nb := min(t.block, t.total-i0)
				for j := 0; j < nb; j++ {
					n, z, y, x := t.at(i0 + j)
					g.winoInputParts(s, srcs, cin, n, z, y, x, s.v, j, t.vs, false)
					g.winoGradTile(s, gy, cout, n, z, y, x, s.m[j*cout:], t.ms)
				}
				for xi := 0; xi < np; xi++ {
					kernels.Sgemm(true, false, cin, cout, nb, 1, s.v[xi*t.vs:], cin,
						s.m[xi*t.ms:], cout, 1, part[xi*ds:xi*ds+P], cout)
				}
			}
		})
	}()
	addParts(du, parts[1:])
	winoWeightsAdjoint(t.m, du, ds, P, gw)
}

// winoKernelTransform returns the kernel transform of tile m and the
// scratch floats it needs.
func winoKernelTransform(m int) (func(u []float32, ds int, w []float32, ss, np int, tmp []float32), int) {
	if m == 4 {
		return kernels.Wino4Kernel, kernels.Wino4Tmp
	}
	return kernels.WinoKernel, 1024
}

// winoWeights writes u[ξ·us + p] = (G⊗G⊗G w)[ξ] for each of the P =
// Cin·Cout kernels, w[k·P + p] (k = 9·kz + 3·ky + kx), on the kernels'
// transform.
func winoWeights(m int, w []float32, P int, u []float32, us int) {
	kern, tmpN := winoKernelTransform(m)
	tensor.Parallel(P, 1024, func(_, lo, hi int) {
		tmp := getBufDirty(tmpN)
		kern(u[lo:], us, w[lo:], P, hi-lo, tmp)
		putBuf(tmp)
	})
}

// winoPackedWeights returns the transformed kernels of wd ([3,3,3,cin,cout];
// with flip, [3,3,3,cout,cin] used as flipKernels would turn them), each
// point's cin×cout matrix U[ξ] packed once for the GEMM micro-kernel (not
// once per block), and the buffer holding them (for putBuf). In float32
// precision the kernel transform writes the packed layout itself: one
// call per input channel and column panel, whose NR outputs per point are
// consecutive in every point's packed matrix. The same bits as
// transforming all of U and packing it, without writing U to memory and
// reading it back: on the deep levels, where U is hundreds of megabytes and
// the GEMMs have few rows, that traffic cost as much as the GEMMs. With
// flip, each call's 27×NR kernel values are first gathered from wd into a
// small buffer, instead of flipping and transposing all of wd in memory.
// BF16 precision packs the whole U (its pairs straddle rows).
func winoPackedWeights(m, np int, wd []float32, flip bool, cin, cout int) ([]float32, []kernels.PackedB) {
	psz := kernels.PackBSize(cin, cout)
	ps := oddLines(psz) // the points' packed matrices' stride
	pu := getBufDirty(np * ps)
	packed := make([]kernels.PackedB, np)
	P := cin * cout
	if kernels.Precision() == kernels.BF16 {
		if flip {
			wf := getBufDirty(27 * P)
			defer putBuf(wf)
			flipKernels(wf, wd, [3]int{3, 3, 3}, cout, cin)
			wd = wf
		}
		us := oddLines(P)
		u := getBufDirty(np * us)
		winoWeights(m, wd, P, u, us)
		tensor.Parallel(np, 1, func(_, lo, hi int) {
			for xi := lo; xi < hi; xi++ {
				packed[xi] = kernels.PackB(pu[xi*ps:xi*ps+psz], u[xi*us:xi*us+P], cout, cin, cout)
			}
		})
		putBuf(u)
		return pu, packed
	}
	for xi := range packed {
		packed[xi] = kernels.NewPackedB(pu[xi*ps:xi*ps+psz], cin, cout)
	}
	kern, tmpN := winoKernelTransform(m)
	pb, nr := packed[0], packed[0].NR()
	pad := func(off, cols int) { // the last panel's padding
		if cols < nr {
			for xi := 0; xi < np; xi++ {
				clear(pu[xi*ps+off+cols : xi*ps+off+nr])
			}
		}
	}
	if !flip {
		tensor.Parallel(cin, max(1, 1024/cout), func(_, lo, hi int) {
			tmp := getBufDirty(tmpN)
			for ci := lo; ci < hi; ci++ {
				for q := 0; q*nr < cout; q++ {
					off, cols := pb.PanelOffset(ci, q), min(nr, cout-q*nr)
					kern(pu[off:], ps, wd[ci*cout+q*nr:], P, cols, tmp)
					pad(off, cols)
				}
			}
			putBuf(tmp)
		})
		return pu, packed
	}
	// With flip, output channel b of this conv is wd's input channel:
	// kernel (a, b) at tap k is wd[26−k][b][a]. For flipCIs consecutive
	// input channels a and one column panel, the 27·NR kernels of each a
	// are gathered into kt (under 1 MiB: in the L2 cache) first, each wd
	// row read flipCIs floats at a time: with 16 (one cache line) the
	// gather waited on memory at every row (BenchmarkWinoPackedWeights,
	// 1024 channels: 188 ms with 16, 56–79 ms with 256, against 89–107 ms
	// for flipping all of wd first).
	flipCIs := max(16, (224<<10)/(27*nr)/16*16)
	tensor.Parallel(cin, max(1, 1024/cout), func(_, lo, hi int) {
		tmp := getBufDirty(tmpN)
		kt := getBufDirty(min(flipCIs, hi-lo) * 27 * nr)
		for a0 := lo; a0 < hi; a0 += flipCIs {
			na := min(flipCIs, hi-a0)
			for q := 0; q*nr < cout; q++ {
				cols := min(nr, cout-q*nr)
				for k := 0; k < 27; k++ {
					for j := 0; j < cols; j++ {
						src := wd[(26-k)*P+(q*nr+j)*cin+a0:][:na]
						for i, v := range src {
							kt[(i*27+k)*nr+j] = v
						}
					}
				}
				for i := 0; i < na; i++ {
					off := pb.PanelOffset(a0+i, q)
					kern(pu[off:], ps, kt[i*27*nr:], nr, cols, tmp)
					pad(off, cols)
				}
			}
		}
		putBuf(kt)
		putBuf(tmp)
	})
	return pu, packed
}

// oddLines returns n floats rounded up to an odd number of 64-byte cache
// lines. Buffers of one matrix per transform point, each point's matrix
// that far from the last, keep the points' rows in different cache sets:
// at a power-of-two stride (cin·cout floats for 2^k channels), the 64 or
// 216 points a kernel transform writes together all map to one set of the
// 8-way L1 and L2 caches and evict each other on every store.
func oddLines(n int) int {
	l := (n + 15) / 16
	return (l | 1) * 16
}

// winoWeightsAdjoint adds Gᵀ⊗Gᵀ⊗Gᵀ du to gw ([3,3,3,P] for P = Cin·Cout;
// du[ξ·ds + p]): the adjoint of winoWeights.
func winoWeightsAdjoint(m int, du []float32, ds, P int, gw []float32) {
	adj, tmpN := kernels.WinoKernelAdjoint, 1024
	if m == 4 {
		adj, tmpN = kernels.Wino4KernelAdjoint, kernels.Wino4Tmp
	}
	tensor.Parallel(P, 1024, func(_, lo, hi int) {
		tmp := getBufDirty(tmpN)
		adj(gw[lo:], P, du[lo:], ds, hi-lo, tmp)
		putBuf(tmp)
	})
}

// SetWinograd selects the Winograd output tile of the whole process: 2
// (F(2×2×2, 3×3×3), the default: errors within PyTorch's own float32
// spread) or 4 (F(4×4×4, 3×3×3) where the volume has enough of its tiles:
// fewer operations, about ten times F(2,3)'s float32 rounding error; see
// useWino4). Call it before any convolution runs, not concurrently with
// one.
func SetWinograd(m int) error {
	switch m {
	case 2, 4:
		useWino4 = m == 4
		return nil
	}
	return fmt.Errorf("autodiff: Winograd tile %d: want 2 or 4", m)
}

// Winograd reports the Winograd output tile SetWinograd selected.
func Winograd() int {
	if useWino4 {
		return 4
	}
	return 2
}

package autodiff

import (
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
// of transform rounding (tests hold them to the same tolerances as the
// other paths; the U-Net golden test against PyTorch runs with it on).
// Determinism: blocks depend only on the shapes, each output element is
// computed by exactly one block in a fixed order, and weight-gradient
// partials are summed in worker order, as on the other paths.
//
// useWinograd switches the path off (tests compare it with the others).
var useWinograd = true

// winoMinTiles is the fewest output tiles (over the batch) for which the
// path is used: below it the weight transform, O(Cin·Cout), costs more than
// the multiplications saved (the U-Net's 4³ bottleneck has 8 tiles).
var winoMinTiles = 64

// winoMinC is the fewest input and output channels for the path: with one
// input channel (the first layer) the transforms cost more than the
// products they save.
const winoMinC = 4

// winoBlockBytes bounds one worker's V and M (or V and Q) buffers.
var winoBlockBytes = 1 << 20

// winograd reports whether the Winograd path applies to g.
func (g *convGeom) winograd() bool {
	if !useWinograd || g.k != [3]int{3, 3, 3} || g.s != [3]int{1, 1, 1} || g.p != [3]int{1, 1, 1} ||
		g.od != g.d || g.oh != g.h || g.ow != g.w || g.c < winoMinC || g.co < winoMinC {
		return false
	}
	tz, ty, tx := (g.od+1)/2, (g.oh+1)/2, (g.ow+1)/2
	return g.n*tz*ty*tx >= winoMinTiles
}

// winoTiles describes the tiling of g: tile counts per axis, tiles in all,
// tiles per block and the number of blocks.
type winoTiles struct {
	tz, ty, tx, total, block, blocks int
}

func (g *convGeom) winoTiling(cin, cout int) winoTiles {
	var t winoTiles
	t.tz, t.ty, t.tx = (g.od+1)/2, (g.oh+1)/2, (g.ow+1)/2
	t.total = g.n * t.tz * t.ty * t.tx
	b := winoBlockBytes / (64 * 4 * (cin + cout))
	// at least two blocks per worker where the volume allows, so that both
	// cores get similar shares
	b = min(b, (t.total+2*tensor.Threads()-1)/(2*tensor.Threads()))
	if b > 12 {
		b -= b % 12 // whole 6- and 12-row micro-tiles
	}
	t.block = max(b, 1)
	t.blocks = (t.total + t.block - 1) / t.block
	return t
}

// winoTile locates tile i: batch item n and the first output voxel (z,y,x).
func (t *winoTiles) at(i int) (n, z, y, x int) {
	x = 2 * (i % t.tx)
	i /= t.tx
	y = 2 * (i % t.ty)
	i /= t.ty
	z = 2 * (i % t.tz)
	return i / t.tz, z, y, x
}

// winoScratch is one worker's buffers.
type winoScratch struct {
	v, m, stage, tmp []float32
}

func newWinoScratch(t winoTiles, cin, cout int) *winoScratch {
	return &winoScratch{
		v:     getBufDirty(64 * t.block * cin),
		m:     getBufDirty(64 * t.block * cout),
		stage: getBufDirty(64 * max(cin, cout)),
		tmp:   getBufDirty(512),
	}
}

func (s *winoScratch) free() {
	putBuf(s.v)
	putBuf(s.m)
	putBuf(s.stage)
	putBuf(s.tmp)
}

// inputTile writes the input transform of the 4×4×4 tile of src ([N,D,H,W,c]
// with g's spatial size) whose first output voxel is (z,y,x) into
// v[j·c:] (point stride ds); voxels outside the volume (the padding) are
// zeros, gathered through s.stage.
func (g *convGeom) winoInputTile(s *winoScratch, src []float32, c, n, z, y, x int, v []float32, ds int) {
	sx, sy, sz := c, g.w*c, g.h*g.w*c
	z0, y0, x0 := z-1, y-1, x-1
	if z0 >= 0 && y0 >= 0 && x0 >= 0 && z0+4 <= g.d && y0+4 <= g.h && x0+4 <= g.w {
		off := (((n*g.d+z0)*g.h+y0)*g.w + x0) * c
		kernels.WinoIn(v, ds, src[off:], sx, sy, sz, c, s.tmp)
		return
	}
	st := s.stage[:64*c]
	clear(st)
	xlo, xhi := max(x0, 0), min(x0+4, g.w)
	for a := 0; a < 4; a++ {
		iz := z0 + a
		if iz < 0 || iz >= g.d {
			continue
		}
		for b := 0; b < 4; b++ {
			iy := y0 + b
			if iy < 0 || iy >= g.h || xlo >= xhi {
				continue
			}
			off := (((n*g.d+iz)*g.h+iy)*g.w + xlo) * c
			copy(st[((a*4+b)*4+xlo-x0)*c:], src[off:off+(xhi-xlo)*c])
		}
	}
	kernels.WinoIn(v, ds, st, c, 4*c, 16*c, c, s.tmp)
}

// winoConv computes dst (+= if acc) the same-padded stride-1 3×3×3
// correlation of src ([N,D,H,W,g.c]) with wd ([3,3,3,g.c,g.co]) plus bias
// (may be nil), on the Winograd path.
func (g *convGeom) winoConv(src, wd, dst []float32, acc bool, bias []float32) {
	cin, cout := g.c, g.co
	u := getBufDirty(64 * cin * cout)
	winoWeights(wd, cin*cout, u)
	// each U[ξ] packed once for the micro-kernel (not once per block)
	psz := kernels.PackBSize(cin, cout)
	pu := getBufDirty(64 * psz)
	defer putBuf(pu)
	packed := make([]kernels.PackedB, 64)
	tensor.Parallel(64, 1, func(_, lo, hi int) {
		for xi := lo; xi < hi; xi++ {
			packed[xi] = kernels.PackB(pu[xi*psz:(xi+1)*psz], u[xi*cin*cout:(xi+1)*cin*cout], cout, cin, cout)
		}
	})
	putBuf(u)
	t := g.winoTiling(cin, cout)
	osx, osy, osz := cout, g.ow*cout, g.oh*g.ow*cout
	workers := tensor.Chunks(t.blocks, 1)
	defer sgemmSerial(workers)()
	tensor.Parallel(t.blocks, 1, func(_, lo, hi int) {
		s := newWinoScratch(t, cin, cout)
		defer s.free()
		B := t.block
		for blk := lo; blk < hi; blk++ {
			i0 := blk * B
			nb := min(B, t.total-i0)
			for j := 0; j < nb; j++ {
				n, z, y, x := t.at(i0 + j)
				g.winoInputTile(s, src, cin, n, z, y, x, s.v[j*cin:], B*cin)
			}
			for xi := 0; xi < 64; xi++ {
				kernels.SgemmPacked(nb, 1, s.v[xi*B*cin:], cin, packed[xi], 0, s.m[xi*B*cout:], cout)
			}
			for j := 0; j < nb; j++ {
				n, z, y, x := t.at(i0 + j)
				off := (((n*g.od+z)*g.oh+y)*g.ow + x) * cout
				if z+2 <= g.od && y+2 <= g.oh && x+2 <= g.ow {
					kernels.WinoOut(dst[off:], osx, osy, osz, s.m[j*cout:], B*cout, cout, bias, acc, s.tmp)
					continue
				}
				// a tile past the volume's end (odd sizes): transform into
				// the stage, then store the voxels inside
				st := s.stage[:8*cout]
				kernels.WinoOut(st, cout, 2*cout, 4*cout, s.m[j*cout:], B*cout, cout, bias, false, s.tmp)
				for a := 0; a < 2 && z+a < g.od; a++ {
					for b := 0; b < 2 && y+b < g.oh; b++ {
						for c := 0; c < 2 && x+c < g.ow; c++ {
							d := dst[off+a*osz+b*osy+c*osx : off+a*osz+b*osy+c*osx+cout]
							sv := st[((a*2+b)*2+c)*cout:]
							if acc {
								for k := range d {
									d[k] += sv[k]
								}
							} else {
								copy(d, sv)
							}
						}
					}
				}
			}
		}
	})
}

// winoWeightGrad adds the weight gradient of the Winograd-path conv of src
// with output gradient gy to gw ([3,3,3,g.c,g.co]).
func (g *convGeom) winoWeightGrad(src, gy, gw []float32) {
	cin, cout := g.c, g.co
	t := g.winoTiling(cin, cout)
	osx, osy, osz := cout, g.ow*cout, g.oh*g.ow*cout
	workers := tensor.Chunks(t.blocks, 1)
	parts := make([][]float32, workers)
	func() {
		defer sgemmSerial(workers)()
		tensor.Parallel(t.blocks, 1, func(w, lo, hi int) {
			s := newWinoScratch(t, cin, cout)
			defer s.free()
			part := getBuf(64 * cin * cout)
			parts[w] = part
			B := t.block
			for blk := lo; blk < hi; blk++ {
				i0 := blk * B
				nb := min(B, t.total-i0)
				for j := 0; j < nb; j++ {
					n, z, y, x := t.at(i0 + j)
					g.winoInputTile(s, src, cin, n, z, y, x, s.v[j*cin:], B*cin)
					off := (((n*g.od+z)*g.oh+y)*g.ow + x) * cout
					if z+2 <= g.od && y+2 <= g.oh && x+2 <= g.ow {
						kernels.WinoGrad(s.m[j*cout:], B*cout, gy[off:], osx, osy, osz, cout, s.tmp)
						continue
					}
					st := s.stage[:8*cout]
					clear(st)
					for a := 0; a < 2 && z+a < g.od; a++ {
						for b := 0; b < 2 && y+b < g.oh; b++ {
							for c := 0; c < 2 && x+c < g.ow; c++ {
								o := off + a*osz + b*osy + c*osx
								copy(st[((a*2+b)*2+c)*cout:], gy[o:o+cout])
							}
						}
					}
					kernels.WinoGrad(s.m[j*cout:], B*cout, st, cout, 2*cout, 4*cout, cout, s.tmp)
				}
				for xi := 0; xi < 64; xi++ {
					kernels.Sgemm(true, false, cin, cout, nb, 1, s.v[xi*B*cin:], cin,
						s.m[xi*B*cout:], cout, 1, part[xi*cin*cout:(xi+1)*cin*cout], cout)
				}
			}
		})
	}()
	du := parts[0]
	for _, p := range parts[1:] {
		if p == nil {
			continue
		}
		tensor.Parallel(len(du), 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				du[i] += p[i]
			}
		})
		putBuf(p)
	}
	winoWeightsAdjoint(du, cin*cout, gw)
	putBuf(du)
}

// winoWeights writes u[ξ·P + p] = (G⊗G⊗G w)[ξ] for each of the P = Cin·Cout
// kernels, w[k·P + p] (k = 9·kz + 3·ky + kx), on the kernels' transform.
func winoWeights(w []float32, P int, u []float32) {
	tensor.Parallel(P, 1024, func(_, lo, hi int) {
		tmp := getBufDirty(1024)
		kernels.WinoKernel(u[lo:], P, w[lo:], P, hi-lo, tmp)
		putBuf(tmp)
	})
}

// winoWeightsAdjoint adds Gᵀ⊗Gᵀ⊗Gᵀ du to gw: the adjoint of winoWeights.
func winoWeightsAdjoint(du []float32, P int, gw []float32) {
	tensor.Parallel(P, 1024, func(_, lo, hi int) {
		tmp := getBufDirty(1024)
		kernels.WinoKernelAdjoint(gw[lo:], P, du[lo:], P, hi-lo, tmp)
		putBuf(tmp)
	})
}

package dataset

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/volume"
)

// CaseGeometry records how a native volume was mapped onto the prepared S³
// grid, so that a prediction on that grid can be put back into native space
// (RestoreMask) and overlay the input exactly.
//
// Convention: the crop box is [CropLo, CropHi) in native voxel indices. Along
// each axis a with box extent n = CropHi-CropLo and prepared extent
// R = Shape[a] (S in the cube mode), prepared voxel o (0 ≤ o < R) has its
// centre at native index
//
//	i(o) = CropLo + (o + 0.5)·n/R − 0.5
//
// (voxel centres of the box and of the prepared grid cover the same span,
// as in "align_corners=False" resizing). So the prepared grid's spacing is
// Spacing·n/R and its affine is Affine·T with T the index map above. In the
// spacing mode R = max(1, round(n·Spacing/target)) per axis.
type CaseGeometry struct {
	// Dims, Spacing and Affine describe the native 3-D grid.
	Dims    [3]int        `json:"dims"`
	Spacing [3]float64    `json:"spacing"`
	Affine  [4][4]float64 `json:"affine"`
	// CropLo and CropHi bound the foreground box, [lo, hi) in voxels.
	CropLo [3]int `json:"crop_lo"`
	CropHi [3]int `json:"crop_hi"`
	// Size is the edge S of the prepared cube (0 in the spacing mode).
	Size int `json:"size"`
	// Shape is the prepared grid's dims: S, S, S in the cube mode, the
	// resampled crop box in the spacing mode. Manifests written before it
	// existed have zeros here; PreparedDims reads them as S³.
	Shape [3]int `json:"shape"`
	// PreparedSpacing and PreparedAffine describe the prepared grid in the
	// native world coordinates.
	PreparedSpacing [3]float64    `json:"prepared_spacing"`
	PreparedAffine  [4][4]float64 `json:"prepared_affine"`
	// Offset and Scale are the normalisation applied after resampling:
	// out = (v − Offset)/Scale inside the foreground (0 outside for MRI).
	Offset float64 `json:"norm_offset"`
	Scale  float64 `json:"norm_scale"`
	// Norm holds each channel's (offset, scale) when there are several
	// channels (Offset and Scale are channel 0's).
	Norm [][2]float64 `json:"norm,omitempty"`
}

// PreparedDims returns the dims of the prepared grid: Shape, or S³ for a
// geometry from before Shape existed.
func (g CaseGeometry) PreparedDims() [3]int {
	if g.Shape == [3]int{} {
		return [3]int{g.Size, g.Size, g.Size}
	}
	return g.Shape
}

// preparedVoxels is the number of voxels of the prepared grid.
func (g CaseGeometry) preparedVoxels() int {
	d := g.PreparedDims()
	return d[0] * d[1] * d[2]
}

// newGeometry fills the grid fields of a CaseGeometry for a crop box
// resampled to shape (size is the cube edge, 0 in the spacing mode).
func newGeometry(v *volume.Volume, lo, hi, shape [3]int, size int) CaseGeometry {
	g := CaseGeometry{
		Dims:    [3]int{v.Dims[0], v.Dims[1], v.Dims[2]},
		Spacing: v.Spacing,
		Affine:  v.Affine,
		CropLo:  lo,
		CropHi:  hi,
		Size:    size,
		Shape:   shape,
	}
	// T maps prepared index o to native index: diag(n/R) o + (lo + 0.5 n/R − 0.5).
	var t [4][4]float64
	for a := 0; a < 3; a++ {
		f := float64(hi[a]-lo[a]) / float64(shape[a])
		t[a][a] = f
		t[a][3] = float64(lo[a]) + 0.5*f - 0.5
		g.PreparedSpacing[a] = v.Spacing[a] * f
	}
	t[3][3] = 1
	for r := 0; r < 4; r++ {
		for c := 0; c < 4; c++ {
			s := 0.0
			for k := 0; k < 4; k++ {
				s += v.Affine[r][k] * t[k][c]
			}
			g.PreparedAffine[r][c] = s
		}
	}
	return g
}

// foregroundBox returns the bounding box [lo, hi) of voxels where fg is true
// in a volume of dims d. ok is false when no voxel is foreground.
func foregroundBox(d [3]int, fg func(i int) bool) (lo, hi [3]int, ok bool) {
	lo = d
	i := 0
	for z := 0; z < d[2]; z++ {
		for y := 0; y < d[1]; y++ {
			for x := 0; x < d[0]; x++ {
				if fg(i) {
					p := [3]int{x, y, z}
					for a := 0; a < 3; a++ {
						lo[a] = min(lo[a], p[a])
						hi[a] = max(hi[a], p[a]+1)
					}
				}
				i++
			}
		}
	}
	return lo, hi, hi[0] > 0
}

// axisMap precomputes, for one axis, the two native indices and the weight
// of the second for each of the S prepared positions (linear interpolation,
// clamped at the box edges), and the nearest native index.
type axisMap struct {
	i0, i1, near []int
	w            []float32
}

func newAxisMap(lo, hi, size int) axisMap {
	m := axisMap{i0: make([]int, size), i1: make([]int, size), near: make([]int, size), w: make([]float32, size)}
	n := float64(hi - lo)
	for o := 0; o < size; o++ {
		c := float64(lo) + (float64(o)+0.5)*n/float64(size) - 0.5
		c = math.Max(float64(lo), math.Min(float64(hi-1), c))
		f := math.Floor(c)
		m.i0[o] = int(f)
		m.i1[o] = min(int(f)+1, hi-1)
		m.w[o] = float32(c - f)
		// Nearest: the native voxel whose extent contains the prepared
		// voxel's centre, floor(lo + (o+0.5)·n/S).
		m.near[o] = min(lo+int(math.Floor((float64(o)+0.5)*n/float64(size))), hi-1)
	}
	return m
}

// resampleLinear resamples the box [lo,hi) of a native 3-D array of dims d
// to size³ by trilinear interpolation (x fastest).
func resampleLinear(src []float32, d [3]int, lo, hi [3]int, size int) []float32 {
	return resampleLinearTo(src, d, lo, hi, [3]int{size, size, size})
}

// resampleLinearTo resamples the box [lo,hi) of a native 3-D array of dims
// d to shape (x fastest) by trilinear interpolation; each axis has its own
// index map, so a cube shape gives exactly resampleLinear's result.
func resampleLinearTo(src []float32, d [3]int, lo, hi, shape [3]int) []float32 {
	mx, my, mz := newAxisMap(lo[0], hi[0], shape[0]), newAxisMap(lo[1], hi[1], shape[1]), newAxisMap(lo[2], hi[2], shape[2])
	sx, sy, sz := shape[0], shape[1], shape[2]
	out := make([]float32, sx*sy*sz)
	sxy := d[0] * d[1]
	// Interpolate along x then y then z per output voxel; the table
	// lookups keep this at 8 loads and 7 lerps per voxel.
	for z := 0; z < sz; z++ {
		z0, z1, wz := mz.i0[z]*sxy, mz.i1[z]*sxy, mz.w[z]
		for y := 0; y < sy; y++ {
			y0, y1, wy := my.i0[y]*d[0], my.i1[y]*d[0], my.w[y]
			r00, r01, r10, r11 := z0+y0, z0+y1, z1+y0, z1+y1
			row := out[(z*sy+y)*sx:][:sx]
			for x := range row {
				x0, x1, wx := mx.i0[x], mx.i1[x], mx.w[x]
				a := src[r00+x0] + wx*(src[r00+x1]-src[r00+x0])
				b := src[r01+x0] + wx*(src[r01+x1]-src[r01+x0])
				c := src[r10+x0] + wx*(src[r10+x1]-src[r10+x0])
				e := src[r11+x0] + wx*(src[r11+x1]-src[r11+x0])
				ab := a + wy*(b-a)
				ce := c + wy*(e-c)
				row[x] = ab + wz*(ce-ab)
			}
		}
	}
	return out
}

// resampleNearest resamples the box of a native array to size³ by nearest
// neighbour, mapping each picked value through f.
func resampleNearest[T any](src []float32, d [3]int, lo, hi [3]int, size int, f func(float32) T) []T {
	return resampleNearestTo(src, d, lo, hi, [3]int{size, size, size}, f)
}

// resampleNearestTo resamples the box of a native array to shape by
// nearest neighbour, mapping each picked value through f.
func resampleNearestTo[T any](src []float32, d [3]int, lo, hi, shape [3]int, f func(float32) T) []T {
	mx, my, mz := newAxisMap(lo[0], hi[0], shape[0]), newAxisMap(lo[1], hi[1], shape[1]), newAxisMap(lo[2], hi[2], shape[2])
	sx, sy, sz := shape[0], shape[1], shape[2]
	out := make([]T, sx*sy*sz)
	for z := 0; z < sz; z++ {
		for y := 0; y < sy; y++ {
			base := (mz.near[z]*d[1] + my.near[y]) * d[0]
			row := out[(z*sy+y)*sx:][:sx]
			for x := range row {
				row[x] = f(src[base+mx.near[x]])
			}
		}
	}
	return out
}

// MaxPreparedAxis and MaxPreparedVoxels bound the prepared grid of one case
// in the spacing mode (per axis, and in all); a larger grid is an input
// error naming the case (a target spacing far finer than the data's).
const (
	MaxPreparedAxis   = 1024
	MaxPreparedVoxels = 1 << 28
)

// spacingShape returns the prepared dims of the box [lo, hi) of a native
// grid with spacing native resampled to spacing target:
// R_a = max(1, round(n_a·native_a/target_a)).
func spacingShape(native [3]float64, lo, hi [3]int, target [3]float64) ([3]int, error) {
	if err := checkSpacing(target); err != nil {
		return [3]int{}, fmt.Errorf("target %w", err)
	}
	if err := checkSpacing(native); err != nil {
		return [3]int{}, fmt.Errorf("native %w", err)
	}
	var r [3]int
	total := 1.0
	for a := 0; a < 3; a++ {
		f := math.Max(1, math.Round(float64(hi[a]-lo[a])*native[a]/target[a]))
		if f > MaxPreparedAxis {
			return r, fmt.Errorf("the crop box of %d×%d×%d voxels at %.4g×%.4g×%.4g mm resampled to %g×%g×%g mm would be %.0f voxels along axis %d (at most %d)",
				hi[0]-lo[0], hi[1]-lo[1], hi[2]-lo[2], native[0], native[1], native[2], target[0], target[1], target[2], f, a, MaxPreparedAxis)
		}
		r[a] = int(f)
		total *= f
	}
	if total > MaxPreparedVoxels {
		return r, fmt.Errorf("the crop box resampled to %g×%g×%g mm would be %d×%d×%d = %.0f voxels (at most %d)",
			target[0], target[1], target[2], r[0], r[1], r[2], total, MaxPreparedVoxels)
	}
	return r, nil
}

// RestoreMask maps a prepared-grid mask or label map (PreparedDims, S³ in
// the cube mode, x fastest) back onto the native grid described by g: every
// native voxel inside the crop box takes the value of the prepared voxel
// containing its centre, o = floor((i − lo + 0.5)·R/n) per axis (nearest
// neighbour, the inverse of the map in CaseGeometry); voxels outside the
// box are 0. The result is a uint8 volume with the native dims, spacing and
// affine, so it overlays the input exactly; label values are kept.
//
// It panics if len(mask) is not the prepared grid's voxel count (a
// programmer error).
func RestoreMask(mask []uint8, g CaseGeometry) *volume.Volume {
	if len(mask) != g.preparedVoxels() {
		panic("dataset.RestoreMask: mask length does not match the prepared grid")
	}
	v := g.nativeVolume(1, "uint8")
	g.restore(func(dst []float32, src int) { dst[0] = float32(mask[src]) }, v.Data, 1)
	return v
}

// RestoreProbabilities maps K prepared-grid probability maps back onto
// the native grid like RestoreMask (nearest neighbour, 0 outside the crop
// box) and returns one float32 X×Y×Z×K volume.
func RestoreProbabilities(probs [][]float32, g CaseGeometry) *volume.Volume {
	k := len(probs)
	v := g.nativeVolume(k, "float32")
	n := g.Dims[0] * g.Dims[1] * g.Dims[2]
	for r, p := range probs {
		if len(p) != g.preparedVoxels() {
			panic("dataset.RestoreProbabilities: map length does not match the prepared grid")
		}
		g.restore(func(dst []float32, src int) { dst[0] = p[src] }, v.Data[r*n:(r+1)*n], 1)
	}
	return v
}

func (g CaseGeometry) nativeVolume(k int, dt string) *volume.Volume {
	d := g.Dims
	return &volume.Volume{
		Dims:     [4]int{d[0], d[1], d[2], k},
		Data:     make([]float32, d[0]*d[1]*d[2]*k),
		Spacing:  g.Spacing,
		Affine:   g.Affine,
		Datatype: dt,
		Format:   "nifti1",
	}
}

// restore calls set for every native voxel of the crop box with its slot
// in dst (a native 3-D array) and the index of its prepared voxel.
func (g CaseGeometry) restore(set func(dst []float32, src int), dst []float32, _ int) {
	sh := g.PreparedDims()
	d := g.Dims
	var idx [3][]int
	for a := 0; a < 3; a++ {
		n, s := g.CropHi[a]-g.CropLo[a], sh[a]
		idx[a] = make([]int, n)
		for k := 0; k < n; k++ {
			o := int(math.Floor((float64(k) + 0.5) * float64(s) / float64(n)))
			idx[a][k] = min(max(o, 0), s-1)
		}
	}
	for z := g.CropLo[2]; z < g.CropHi[2]; z++ {
		oz := idx[2][z-g.CropLo[2]]
		for y := g.CropLo[1]; y < g.CropHi[1]; y++ {
			oy := idx[1][y-g.CropLo[1]]
			row := (oz*sh[1] + oy) * sh[0]
			base := (z*d[1] + y) * d[0]
			for x := g.CropLo[0]; x < g.CropHi[0]; x++ {
				set(dst[base+x:], row+idx[0][x-g.CropLo[0]])
			}
		}
	}
}

// bodyBox returns the foreground box of a CT volume: in every axial slice,
// the largest 4-connected region of voxels above ctBodyHU (the patient; the
// table, tubes and blankets form smaller separate regions), united over
// slices. Working slice by slice keeps memory at one slice of labels even
// for 512×512×1000 volumes.
func bodyBox(data []float32, d [3]int) (lo, hi [3]int, ok bool) {
	lo = d
	nxy := d[0] * d[1]
	seen := make([]bool, nxy)
	queue := make([]int32, 0, 1024)
	for z := 0; z < d[2]; z++ {
		sl := data[z*nxy : (z+1)*nxy]
		clear(seen)
		best := 0
		var bLo, bHi [2]int
		for s := range sl {
			if seen[s] || sl[s] <= ctBodyHU {
				continue
			}
			// Flood fill from s.
			queue = append(queue[:0], int32(s))
			seen[s] = true
			cLo, cHi := [2]int{d[0], d[1]}, [2]int{}
			for k := 0; k < len(queue); k++ {
				i := int(queue[k])
				x, y := i%d[0], i/d[0]
				cLo = [2]int{min(cLo[0], x), min(cLo[1], y)}
				cHi = [2]int{max(cHi[0], x+1), max(cHi[1], y+1)}
				for _, nb := range [4][3]int{{-1, 0, x}, {1, 0, d[0] - 1 - x}, {0, -1, y}, {0, 1, d[1] - 1 - y}} {
					if nb[2] == 0 {
						continue // at the slice edge
					}
					j := i + nb[0] + nb[1]*d[0]
					if !seen[j] && sl[j] > ctBodyHU {
						seen[j] = true
						queue = append(queue, int32(j))
					}
				}
			}
			if len(queue) > best {
				best, bLo, bHi = len(queue), cLo, cHi
			}
		}
		if best == 0 {
			continue
		}
		ok = true
		lo = [3]int{min(lo[0], bLo[0]), min(lo[1], bLo[1]), min(lo[2], z)}
		hi = [3]int{max(hi[0], bHi[0]), max(hi[1], bHi[1]), max(hi[2], z+1)}
	}
	return lo, hi, ok
}

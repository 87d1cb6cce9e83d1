package augment

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Patch augmentation: the on-the-fly augmentation of patch training (and,
// with `fess train --augment`, of cube training). A patch is cut from a
// case through an affine map of its sampling grid, so flips, rotation and
// scaling cost one resampling of the source volume and no second
// interpolation; the intensity operations then act on the cut image.
//
// Layout: volumes and patches are channel-major, x fastest (index
// x + X·(y + Y·z) within a channel), dims given as [X, Y, Z] — the layout of
// dataset.Prepared.LoadCase. Image channels are float32, mask regions 0/1
// uint8, one block per region.
//
// Everything random is drawn by DrawPatch from the *rand.Rand the caller
// passes, always the same number of draws in the same order whatever is
// enabled, so a patch is a pure function of the generator's state.

// PatchOptions are the probabilities and ranges of patch augmentation.
// A probability of 0 disables an operation.
type PatchOptions struct {
	// FlipP is the probability of a mirror along each axis, drawn per axis.
	FlipP float64
	// RotP is the probability that a patch is rotated; a rotated patch
	// turns about each of the x, y and z axes (in that order: R = Rz·Ry·Rx)
	// by an angle ~ U(−RotMaxDeg, RotMaxDeg) degrees, about the patch centre.
	RotP, RotMaxDeg float64
	// ZoomP is the probability that a patch is scaled, by one factor
	// z ~ U(ZoomLo, ZoomHi) for all axes. z > 1 samples a region z times the
	// patch's extent (the content appears smaller), z < 1 zooms in, as in
	// batchgenerators.
	ZoomP, ZoomLo, ZoomHi float64
	// ScaleP is the probability, per image channel, of a multiplicative
	// intensity change x' = a·x with a ~ U(ScaleLo, ScaleHi).
	ScaleP, ScaleLo, ScaleHi float64
	// ShiftP is the probability, per image channel, of an additive
	// intensity change x' = x + b with b ~ U(ShiftLo, ShiftHi) (in the
	// prepared, z-scored intensity units).
	ShiftP, ShiftLo, ShiftHi float64
	// GammaP is the probability, per image channel, of a gamma change: the
	// patch's channel is min-max normalised to [0, 1], raised to γ, and
	// mapped back to its original min and max. With probability 1/2 γ is
	// drawn from U(GammaLo, 1), else from U(1, GammaHi) (batchgenerators'
	// rule, so γ < 1 and γ > 1 are equally likely).
	GammaP, GammaLo, GammaHi float64
}

// DefaultPatch returns the patch-training defaults, modelled on nnU-Net's
// (v2, 3-D): mirror each axis p = 0.5; rotation p = 0.2; scaling p = 0.2;
// multiplicative intensity U(0.75, 1.25) p = 0.15; gamma U(0.7, 1.5)
// p = 0.3. Deviations: rotations are at most ±15° per axis (nnU-Net ±30°)
// and scaling is U(0.85, 1.25) (nnU-Net U(0.7, 1.4)), gentler for the small
// data sets and patches a CPU trains on; an additive shift U(−0.1, 0.1)
// p = 0.15 is added (nnU-Net has none); gamma does not restore the patch's
// mean and standard deviation afterwards, and nnU-Net's inverted gamma,
// noise, blur, contrast and low-resolution simulation are not implemented.
func DefaultPatch() PatchOptions {
	return PatchOptions{
		FlipP: 0.5,
		RotP:  0.2, RotMaxDeg: 15,
		ZoomP: 0.2, ZoomLo: 0.85, ZoomHi: 1.25,
		ScaleP: 0.15, ScaleLo: 0.75, ScaleHi: 1.25,
		ShiftP: 0.15, ShiftLo: -0.1, ShiftHi: 0.1,
		GammaP: 0.3, GammaLo: 0.7, GammaHi: 1.5,
	}
}

// NoPatchAugment returns options that change nothing (every probability 0):
// DrawPatch then gives the identity.
func NoPatchAugment() PatchOptions {
	o := DefaultPatch()
	o.FlipP, o.RotP, o.ZoomP, o.ScaleP, o.ShiftP, o.GammaP = 0, 0, 0, 0, 0, 0
	return o
}

// Validate checks that probabilities lie in [0, 1] and ranges are ordered
// and positive where they must be.
func (o PatchOptions) Validate() error {
	for _, p := range []float64{o.FlipP, o.RotP, o.ZoomP, o.ScaleP, o.ShiftP, o.GammaP} {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("augment: probability %v outside [0, 1]", p)
		}
	}
	if o.RotMaxDeg < 0 || o.RotMaxDeg > 180 {
		return fmt.Errorf("augment: rotation limit %v° outside [0, 180]", o.RotMaxDeg)
	}
	if !(o.ZoomLo > 0 && o.ZoomLo <= o.ZoomHi) || !(o.ScaleLo <= o.ScaleHi) || !(o.ShiftLo <= o.ShiftHi) ||
		!(o.GammaLo > 0 && o.GammaLo <= 1 && o.GammaHi >= 1) {
		return fmt.Errorf("augment: bad ranges %+v", o)
	}
	return nil
}

// Spatial is a patch's geometric transform: source = centre + Zoom·R·F·u,
// with u the output voxel's offset from the patch centre, F the mirrors
// and R = Rz·Ry·Rx.
type Spatial struct {
	Flip [3]bool    // mirror along x, y, z
	Rot  [3]float64 // angles about x, y, z, in radians
	Zoom float64    // 1: none (0 is read as 1)
}

// Intensity is one image channel's intensity change: x' = Scale·x + Shift,
// then gamma Gamma on the min-max normalised channel (1: none).
type Intensity struct {
	Scale, Shift float32
	Gamma        float64
}

// PatchParams is one draw of patch augmentation.
type PatchParams struct {
	Spatial   Spatial
	Intensity []Intensity // one per image channel
}

// DrawPatch draws the parameters of one patch of c image channels, in this
// order (each decision one rng.Float64, each value one more, all drawn
// whether or not the operation applies): the x, y, z flips; the rotation
// decision and its three angles; the scaling decision and factor; then per
// channel the multiplicative decision and factor, the shift decision and
// offset, and the gamma decision, side (below or above 1) and value.
func DrawPatch(rng *rand.Rand, opt PatchOptions, c int) PatchParams {
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	var p PatchParams
	for i := range p.Spatial.Flip {
		p.Spatial.Flip[i] = rng.Float64() < opt.FlipP
	}
	rot := rng.Float64() < opt.RotP
	lim := opt.RotMaxDeg * math.Pi / 180
	for i := range p.Spatial.Rot {
		a := u(-lim, lim)
		if rot {
			p.Spatial.Rot[i] = a
		}
	}
	zoom := rng.Float64() < opt.ZoomP
	p.Spatial.Zoom = 1
	if z := u(opt.ZoomLo, opt.ZoomHi); zoom {
		p.Spatial.Zoom = z
	}
	p.Intensity = make([]Intensity, c)
	for ch := range p.Intensity {
		in := Intensity{Scale: 1, Gamma: 1}
		if on, a := rng.Float64() < opt.ScaleP, u(opt.ScaleLo, opt.ScaleHi); on {
			in.Scale = float32(a)
		}
		if on, b := rng.Float64() < opt.ShiftP, u(opt.ShiftLo, opt.ShiftHi); on {
			in.Shift = float32(b)
		}
		on, low, g := rng.Float64() < opt.GammaP, rng.Float64() < 0.5, rng.Float64()
		if on {
			if low {
				in.Gamma = opt.GammaLo + (1-opt.GammaLo)*g
			} else {
				in.Gamma = 1 + (opt.GammaHi-1)*g
			}
		}
		p.Intensity[ch] = in
	}
	return p
}

// matrix returns Zoom·R·F as rows.
func (s Spatial) matrix() [3][3]float64 {
	cx, sx := math.Cos(s.Rot[0]), math.Sin(s.Rot[0])
	cy, sy := math.Cos(s.Rot[1]), math.Sin(s.Rot[1])
	cz, sz := math.Cos(s.Rot[2]), math.Sin(s.Rot[2])
	rx := [3][3]float64{{1, 0, 0}, {0, cx, -sx}, {0, sx, cx}}
	ry := [3][3]float64{{cy, 0, sy}, {0, 1, 0}, {-sy, 0, cy}}
	rz := [3][3]float64{{cz, -sz, 0}, {sz, cz, 0}, {0, 0, 1}}
	mul := func(a, b [3][3]float64) [3][3]float64 {
		var c [3][3]float64
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				for k := 0; k < 3; k++ {
					c[i][j] += a[i][k] * b[k][j]
				}
			}
		}
		return c
	}
	m := mul(rz, mul(ry, rx))
	z := s.Zoom
	if z == 0 {
		z = 1
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			m[i][j] *= z
			if s.Flip[j] {
				m[i][j] = -m[i][j]
			}
		}
	}
	return m
}

// signedPermutation reports whether m has exactly one ±1 per row and
// column and zeros elsewhere (flips only, no rotation or scaling).
func signedPermutation(m [3][3]float64) bool {
	for i := 0; i < 3; i++ {
		n := 0
		for j := 0; j < 3; j++ {
			switch m[i][j] {
			case 0:
			case 1, -1:
				n++
			default:
				return false
			}
		}
		if n != 1 {
			return false
		}
	}
	return true
}

// CutPatch samples a patch of dims patch ([X, Y, Z]) from the volume img
// (c channels of dims, x fastest) and mask (k regions; nil: none) through
// the transform sp, centred at the source coordinate centre (in voxels;
// the patch's centre voxel offset (patch−1)/2 lands there, so a patch whose
// first voxel is at integer position s has centre s + (patch−1)/2). The
// image is sampled trilinearly, the mask by nearest neighbour, and
// whatever lies outside the volume is 0 in both (zero padding). When sp is
// flips only and the patch sits on the integer grid, voxels are copied
// exactly.
func CutPatch(img []float32, mask []uint8, dims [3]int, centre [3]float64, patch [3]int, sp Spatial) (pimg []float32, pmask []uint8) {
	return cutPatch(img, mask, dims, centre, patch, sp, false)
}

func cutPatch(img []float32, mask []uint8, dims [3]int, centre [3]float64, patch [3]int, sp Spatial, forceGeneral bool) (pimg []float32, pmask []uint8) {
	vox := dims[0] * dims[1] * dims[2]
	pvox := patch[0] * patch[1] * patch[2]
	if vox <= 0 || pvox <= 0 || len(img)%vox != 0 || (mask != nil && len(mask)%vox != 0) {
		panic(fmt.Sprintf("augment: image %d and mask %d values for dims %v, patch %v", len(img), len(mask), dims, patch))
	}
	c := len(img) / vox
	k := len(mask) / vox
	pimg = make([]float32, c*pvox)
	if mask != nil {
		pmask = make([]uint8, k*pvox)
	}
	m := sp.matrix()
	var half [3]float64
	for a := 0; a < 3; a++ {
		half[a] = float64(patch[a]-1) / 2
	}
	// origin: the source coordinate of output voxel (0,0,0).
	var origin [3]float64
	for i := 0; i < 3; i++ {
		origin[i] = centre[i] - (m[i][0]*half[0] + m[i][1]*half[1] + m[i][2]*half[2])
	}
	integral := true
	for i := 0; i < 3; i++ {
		integral = integral && origin[i] == math.Trunc(origin[i]) && math.Abs(origin[i]) < 1<<30
	}
	if !forceGeneral && integral && signedPermutation(m) {
		cutExact(img, mask, dims, patch, m, origin, c, k, pimg, pmask)
		return pimg, pmask
	}
	X, Y, Z := dims[0], dims[1], dims[2]
	XY := X * Y
	o := 0
	for z := 0; z < patch[2]; z++ {
		for y := 0; y < patch[1]; y++ {
			fz, fy := float64(z), float64(y)
			bx := origin[0] + m[0][1]*fy + m[0][2]*fz
			by := origin[1] + m[1][1]*fy + m[1][2]*fz
			bz := origin[2] + m[2][1]*fy + m[2][2]*fz
			for x := 0; x < patch[0]; x, o = x+1, o+1 {
				fx := float64(x)
				sx, sy, sz := bx+m[0][0]*fx, by+m[1][0]*fx, bz+m[2][0]*fx
				// Trilinear image.
				x0, y0, z0 := math.Floor(sx), math.Floor(sy), math.Floor(sz)
				wx, wy, wz := sx-x0, sy-y0, sz-z0
				ix, iy, iz := int(x0), int(y0), int(z0)
				if ix >= -1 && ix < X && iy >= -1 && iy < Y && iz >= -1 && iz < Z {
					for dz := 0; dz < 2; dz++ {
						zz := iz + dz
						if zz < 0 || zz >= Z {
							continue
						}
						w3 := wz
						if dz == 0 {
							w3 = 1 - wz
						}
						for dy := 0; dy < 2; dy++ {
							yy := iy + dy
							if yy < 0 || yy >= Y {
								continue
							}
							w2 := wy
							if dy == 0 {
								w2 = 1 - wy
							}
							for dx := 0; dx < 2; dx++ {
								xx := ix + dx
								if xx < 0 || xx >= X {
									continue
								}
								w1 := wx
								if dx == 0 {
									w1 = 1 - wx
								}
								w := float32(w1 * w2 * w3)
								if w == 0 {
									continue
								}
								s := xx + X*yy + XY*zz
								for ch := 0; ch < c; ch++ {
									pimg[ch*pvox+o] += w * img[ch*vox+s]
								}
							}
						}
					}
				}
				// Nearest-neighbour mask.
				if k > 0 {
					nx, ny, nz := int(math.Floor(sx+0.5)), int(math.Floor(sy+0.5)), int(math.Floor(sz+0.5))
					if nx >= 0 && nx < X && ny >= 0 && ny < Y && nz >= 0 && nz < Z {
						s := nx + X*ny + XY*nz
						for r := 0; r < k; r++ {
							pmask[r*pvox+o] = mask[r*vox+s]
						}
					}
				}
			}
		}
	}
	return pimg, pmask
}

// cutExact copies voxels for a signed-permutation map on the integer grid.
func cutExact(img []float32, mask []uint8, dims, patch [3]int, m [3][3]float64, origin [3]float64, c, k int, pimg []float32, pmask []uint8) {
	vox := dims[0] * dims[1] * dims[2]
	pvox := patch[0] * patch[1] * patch[2]
	var mi [3][3]int
	var oi [3]int
	for i := 0; i < 3; i++ {
		oi[i] = int(origin[i])
		for j := 0; j < 3; j++ {
			mi[i][j] = int(m[i][j])
		}
	}
	o := 0
	for z := 0; z < patch[2]; z++ {
		for y := 0; y < patch[1]; y++ {
			for x := 0; x < patch[0]; x, o = x+1, o+1 {
				var s [3]int
				for i := 0; i < 3; i++ {
					s[i] = oi[i] + mi[i][0]*x + mi[i][1]*y + mi[i][2]*z
				}
				if s[0] < 0 || s[0] >= dims[0] || s[1] < 0 || s[1] >= dims[1] || s[2] < 0 || s[2] >= dims[2] {
					continue
				}
				si := s[0] + dims[0]*(s[1]+dims[1]*s[2])
				for ch := 0; ch < c; ch++ {
					pimg[ch*pvox+o] = img[ch*vox+si]
				}
				for r := 0; r < k; r++ {
					pmask[r*pvox+o] = mask[r*vox+si]
				}
			}
		}
	}
}

// ApplyIntensity applies each channel's intensity change to img (c
// channel blocks, in place): v = Scale·x + Shift, then, when Gamma ≠ 1,
// lo + (hi − lo)·((v − lo)/(hi − lo))^Gamma with lo, hi the channel's
// minimum and maximum over the patch (a constant channel is left as it
// is).
func ApplyIntensity(img []float32, in []Intensity) {
	if len(in) == 0 {
		return
	}
	n := len(img) / len(in)
	for ch, p := range in {
		v := img[ch*n : (ch+1)*n]
		if p.Scale != 1 || p.Shift != 0 {
			for i := range v {
				v[i] = p.Scale*v[i] + p.Shift
			}
		}
		if p.Gamma == 1 || p.Gamma == 0 || len(v) == 0 {
			continue
		}
		lo, hi := v[0], v[0]
		for _, x := range v {
			lo, hi = min(lo, x), max(hi, x)
		}
		r := float64(hi) - float64(lo)
		if !(r > 0) {
			continue
		}
		for i, x := range v {
			t := (float64(x) - float64(lo)) / r
			v[i] = float32(float64(lo) + r*math.Pow(t, p.Gamma))
		}
	}
}

// Cut is CutPatch followed by ApplyIntensity: one augmented patch.
func Cut(img []float32, mask []uint8, dims [3]int, centre [3]float64, patch [3]int, p PatchParams) ([]float32, []uint8) {
	pi, pm := CutPatch(img, mask, dims, centre, patch, p.Spatial)
	ApplyIntensity(pi, p.Intensity)
	return pi, pm
}

package augment

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testVolume is a 2-channel image and 2-region mask on dims, with distinct
// values at every voxel and blob-shaped regions.
func testVolume(dims [3]int) ([]float32, []uint8) {
	vox := dims[0] * dims[1] * dims[2]
	img := make([]float32, 2*vox)
	mask := make([]uint8, 2*vox)
	for z := 0; z < dims[2]; z++ {
		for y := 0; y < dims[1]; y++ {
			for x := 0; x < dims[0]; x++ {
				i := x + dims[0]*(y+dims[1]*z)
				img[i] = float32(x) + 10*float32(y) + 100*float32(z)
				img[vox+i] = float32(math.Sin(float64(i)))
				cx, cy, cz := float64(x)-float64(dims[0])/2, float64(y)-float64(dims[1])/2, float64(z)-float64(dims[2])/2
				if cx*cx+cy*cy+cz*cz < 9 {
					mask[i] = 1
				}
				if x > dims[0]/2 && y < dims[1]/2 {
					mask[vox+i] = 1
				}
			}
		}
	}
	return img, mask
}

func at(v []float32, dims [3]int, ch, x, y, z int) float32 {
	return v[ch*dims[0]*dims[1]*dims[2]+x+dims[0]*(y+dims[1]*z)]
}

// centreOf is the centre of a patch whose first voxel is at start.
func centreOf(start, patch [3]int) [3]float64 {
	var c [3]float64
	for a := range c {
		c[a] = float64(start[a]) + float64(patch[a]-1)/2
	}
	return c
}

// TestCutPatchIdentityAndPadding: no transform copies the window exactly,
// and what lies outside the volume is 0 in image and mask.
func TestCutPatchIdentityAndPadding(t *testing.T) {
	dims := [3]int{9, 8, 7}
	img, mask := testVolume(dims)
	patch := [3]int{4, 6, 8}
	start := [3]int{-2, 3, 1} // sticks out on x (low side) and z (high side)
	for _, general := range []bool{false, true} {
		pi, pm := cutPatch(img, mask, dims, centreOf(start, patch), patch, Spatial{}, general)
		pv := patch[0] * patch[1] * patch[2]
		for ch := 0; ch < 2; ch++ {
			for z := 0; z < patch[2]; z++ {
				for y := 0; y < patch[1]; y++ {
					for x := 0; x < patch[0]; x++ {
						sx, sy, sz := start[0]+x, start[1]+y, start[2]+z
						o := ch*pv + x + patch[0]*(y+patch[1]*z)
						in := sx >= 0 && sx < dims[0] && sy >= 0 && sy < dims[1] && sz >= 0 && sz < dims[2]
						var wi float32
						var wm uint8
						if in {
							wi = at(img, dims, ch, sx, sy, sz)
							wm = mask[ch*dims[0]*dims[1]*dims[2]+sx+dims[0]*(sy+dims[1]*sz)]
						}
						if math.Float32bits(pi[o]) != math.Float32bits(wi) || pm[o] != wm {
							t.Fatalf("general %v ch %d (%d,%d,%d): got %v/%d, want %v/%d", general, ch, x, y, z, pi[o], pm[o], wi, wm)
						}
					}
				}
			}
		}
	}
	// Without a mask no mask comes back.
	if _, pm := CutPatch(img, nil, dims, centreOf(start, patch), patch, Spatial{}); pm != nil {
		t.Fatal("nil mask gave a mask")
	}
}

// TestCutPatchFlipInvolution: a flipped patch is the unflipped one
// mirrored, and mirroring again gives the original back.
func TestCutPatchFlipInvolution(t *testing.T) {
	dims := [3]int{8, 8, 8}
	img, mask := testVolume(dims)
	patch := [3]int{6, 4, 5}
	c := centreOf([3]int{1, 2, 3}, patch)
	plain, plainM := CutPatch(img, mask, dims, c, patch, Spatial{})
	mirror := func(v []float32, axis int) []float32 {
		out := make([]float32, len(v))
		pv := patch[0] * patch[1] * patch[2]
		for ch := 0; ch < len(v)/pv; ch++ {
			for z := 0; z < patch[2]; z++ {
				for y := 0; y < patch[1]; y++ {
					for x := 0; x < patch[0]; x++ {
						s := [3]int{x, y, z}
						s[axis] = patch[axis] - 1 - s[axis]
						out[ch*pv+x+patch[0]*(y+patch[1]*z)] = v[ch*pv+s[0]+patch[0]*(s[1]+patch[1]*s[2])]
					}
				}
			}
		}
		return out
	}
	for axis := 0; axis < 3; axis++ {
		var sp Spatial
		sp.Flip[axis] = true
		for _, general := range []bool{false, true} {
			f, fm := cutPatch(img, mask, dims, c, patch, sp, general)
			if !slices.Equal(f, mirror(plain, axis)) {
				t.Fatalf("axis %d (general %v): flipped patch is not the mirrored patch", axis, general)
			}
			fmf := make([]float32, len(fm))
			for i, v := range fm {
				fmf[i] = float32(v)
			}
			pmf := make([]float32, len(plainM))
			for i, v := range plainM {
				pmf[i] = float32(v)
			}
			if !slices.Equal(fmf, mirror(pmf, axis)) {
				t.Fatalf("axis %d: flipped mask is not the mirrored mask", axis)
			}
			if !slices.Equal(mirror(f, axis), plain) {
				t.Fatalf("axis %d: mirroring twice is not the identity", axis)
			}
		}
	}
}

// TestCutPatchRotationZeroZoomOne: rotation by 0 and scaling by 1 are the
// identity bit for bit, through either sampling path.
func TestCutPatchRotationZeroZoomOne(t *testing.T) {
	dims := [3]int{10, 9, 8}
	img, mask := testVolume(dims)
	patch := [3]int{6, 6, 6}
	c := centreOf([3]int{2, 1, 1}, patch)
	want, wantM := cutPatch(img, mask, dims, c, patch, Spatial{}, true)
	for _, sp := range []Spatial{{Rot: [3]float64{0, 0, 0}}, {Zoom: 1}, {Rot: [3]float64{0, 0, 0}, Zoom: 1}} {
		for _, general := range []bool{false, true} {
			got, gotM := cutPatch(img, mask, dims, c, patch, sp, general)
			if !slices.Equal(got, want) || !slices.Equal(gotM, wantM) {
				t.Fatalf("%+v (general %v) is not the identity", sp, general)
			}
		}
	}
}

// TestCutPatchRotation90: a quarter turn about z maps (x, y) to (−y, x)
// about the centre, up to rounding of cos(π/2).
func TestCutPatchRotation90(t *testing.T) {
	dims := [3]int{7, 7, 5}
	img, mask := testVolume(dims)
	patch := [3]int{7, 7, 5}
	c := centreOf([3]int{0, 0, 0}, patch) // (3, 3, 2)
	got, gotM := CutPatch(img, mask, dims, c, patch, Spatial{Rot: [3]float64{0, 0, math.Pi / 2}})
	for z := 0; z < 5; z++ {
		for y := 0; y < 7; y++ {
			for x := 0; x < 7; x++ {
				// source = c + Rz·u: u = (x−3, y−3) → (−(y−3), x−3)
				sx, sy := 3-(y-3), 3+(x-3)
				o := x + 7*(y+7*z)
				if w := at(img, dims, 0, sx, sy, z); math.Abs(float64(got[o]-w)) > 1e-3 {
					t.Fatalf("(%d,%d,%d): %v, want %v", x, y, z, got[o], w)
				}
				if w := mask[sx+7*(sy+7*z)]; gotM[o] != w {
					t.Fatalf("mask (%d,%d,%d): %d, want %d", x, y, z, gotM[o], w)
				}
			}
		}
	}
}

// TestCutPatchZoomAndLabels: scaling by 2 samples every other voxel, and
// under arbitrary rotations and zooms labels stay 0/1 and the image
// stays within the volume's range (trilinear is a convex combination, or
// 0 outside).
func TestCutPatchZoomAndLabels(t *testing.T) {
	dims := [3]int{12, 12, 12}
	img, mask := testVolume(dims)
	patch := [3]int{5, 5, 5}
	c := [3]float64{6, 6, 6}
	got, _ := CutPatch(img, mask, dims, c, patch, Spatial{Zoom: 2})
	for z := 0; z < 5; z++ {
		for y := 0; y < 5; y++ {
			for x := 0; x < 5; x++ {
				w := at(img, dims, 0, 6+2*(x-2), 6+2*(y-2), 6+2*(z-2))
				if g := got[x+5*(y+5*z)]; math.Abs(float64(g-w)) > 1e-3 {
					t.Fatalf("zoom 2 at (%d,%d,%d): %v, want %v", x, y, z, g, w)
				}
			}
		}
	}
	lo, hi := float32(0), float32(0)
	for _, v := range img {
		lo, hi = min(lo, v), max(hi, v)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	opt := DefaultPatch()
	opt.RotP, opt.ZoomP = 1, 1
	for i := 0; i < 20; i++ {
		p := DrawPatch(rng, opt, 2)
		pi, pm := CutPatch(img, mask, dims, [3]float64{5.5, 6, 6.3}, [3]int{8, 6, 4}, p.Spatial)
		for _, v := range pm {
			if v > 1 {
				t.Fatalf("label %d", v)
			}
		}
		for _, v := range pi {
			if v < lo-1e-3 || v > hi+1e-3 || math.IsNaN(float64(v)) {
				t.Fatalf("image value %v outside [%v, %v]", v, lo, hi)
			}
		}
	}
}

// TestDrawPatchDeterministic: the same generator state gives the same
// augmented patch bit for bit, and the options' probabilities and ranges
// hold.
func TestDrawPatchDeterministic(t *testing.T) {
	dims := [3]int{12, 10, 9}
	img, mask := testVolume(dims)
	opt := DefaultPatch()
	opt.RotP, opt.ZoomP, opt.GammaP = 1, 1, 1
	cut := func(seed uint64) ([]float32, []uint8) {
		rng := rand.New(rand.NewPCG(seed, 99))
		return Cut(img, mask, dims, [3]float64{6, 5, 4}, [3]int{8, 8, 4}, DrawPatch(rng, opt, 2))
	}
	a, am := cut(7)
	b, bm := cut(7)
	if !slices.Equal(am, bm) {
		t.Fatal("same seed, different masks")
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("same seed, different image at %d", i)
		}
	}
	if c, _ := cut(8); slices.Equal(a, c) {
		t.Fatal("another seed gave the same patch")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	d := DefaultPatch()
	const n = 4000
	var flips [3]int
	var rots, zooms, scales, shifts, gammas int
	for i := 0; i < n; i++ {
		p := DrawPatch(rng, d, 1)
		for a, f := range p.Spatial.Flip {
			if f {
				flips[a]++
			}
		}
		if p.Spatial.Rot != [3]float64{} {
			rots++
		}
		for _, r := range p.Spatial.Rot {
			if math.Abs(r) > 15*math.Pi/180 {
				t.Fatalf("angle %v", r)
			}
		}
		if p.Spatial.Zoom != 1 {
			zooms++
			if p.Spatial.Zoom < 0.85 || p.Spatial.Zoom > 1.25 {
				t.Fatalf("zoom %v", p.Spatial.Zoom)
			}
		}
		in := p.Intensity[0]
		if in.Scale != 1 {
			scales++
			if in.Scale < 0.75 || in.Scale > 1.25 {
				t.Fatalf("scale %v", in.Scale)
			}
		}
		if in.Shift != 0 {
			shifts++
		}
		if in.Gamma != 1 {
			gammas++
			if in.Gamma < 0.7 || in.Gamma > 1.5 {
				t.Fatalf("gamma %v", in.Gamma)
			}
		}
	}
	near := func(name string, got int, p float64) {
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(got)-n*p) > 5*sd {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, n, n*p)
		}
	}
	for a := range flips {
		near("flip", flips[a], 0.5)
	}
	near("rotation", rots, 0.2)
	near("zoom", zooms, 0.2)
	near("scale", scales, 0.15)
	near("shift", shifts, 0.15)
	near("gamma", gammas, 0.3)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if p := DrawPatch(rand.New(rand.NewPCG(1, 1)), NoPatchAugment(), 3); p.Spatial != (Spatial{Zoom: 1}) ||
		!slices.Equal(p.Intensity, []Intensity{{1, 0, 1}, {1, 0, 1}, {1, 0, 1}}) {
		t.Fatalf("NoPatchAugment drew %+v", p)
	}
}

// TestApplyIntensity: scale and shift are affine, gamma keeps the
// channel's minimum and maximum and is monotone, gamma 1 changes nothing.
func TestApplyIntensity(t *testing.T) {
	v := []float32{-1, 0, 1, 3, 10, 20, 30, 40}
	w := slices.Clone(v)
	ApplyIntensity(w, []Intensity{{Scale: 2, Shift: 1, Gamma: 1}, {Scale: 1, Gamma: 1}})
	for i := 0; i < 4; i++ {
		if w[i] != 2*v[i]+1 {
			t.Fatalf("scale/shift: %v", w)
		}
	}
	if !slices.Equal(w[4:], v[4:]) {
		t.Fatal("identity channel changed")
	}
	g := []float32{0, 1, 2, 4}
	ApplyIntensity(g, []Intensity{{Scale: 1, Gamma: 2}})
	if g[0] != 0 || g[3] != 4 || math.Abs(float64(g[2])-1) > 1e-6 || math.Abs(float64(g[1])-0.25) > 1e-6 {
		t.Fatalf("gamma 2 of [0 1 2 4] = %v, want [0 0.25 1 4]", g)
	}
	c := []float32{5, 5, 5}
	ApplyIntensity(c, []Intensity{{Scale: 1, Gamma: 0.7}})
	if !slices.Equal(c, []float32{5, 5, 5}) {
		t.Fatalf("constant channel: %v", c)
	}
}

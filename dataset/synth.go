package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/fess-seg/fess/volume"
)

// SynthCase is one synthetic case: its images by modality, its label map
// and, for brains, a description of each lesion (for tests and reports).
type SynthCase struct {
	ID      string
	Images  map[string]*volume.Volume // "flair", "t1", "t1ce", "t2" or "ct"
	Label   *volume.Volume            // uint8 label map
	Lesions []Lesion

	tissue []uint8 // brain phantoms: the tissue class of each voxel (tests)
}

// Lesion describes one synthetic tumour: the centre of its whole-tumour
// region in voxels, its size in voxels (labels 1, 2 and 4 together) and the
// standard deviations of its voxel coordinates along its principal axes,
// largest first (a ball of radius R has R/√5 on every axis).
type Lesion struct {
	Centre [3]float64
	Voxels int
	Axes   [3]float64
}

// symEigen3 returns the eigenvalues of a symmetric 3×3 matrix, largest
// first (the trigonometric closed form).
func symEigen3(a [3][3]float64) [3]float64 {
	p1 := a[0][1]*a[0][1] + a[0][2]*a[0][2] + a[1][2]*a[1][2]
	q := (a[0][0] + a[1][1] + a[2][2]) / 3
	if p1 < 1e-300 {
		e := [3]float64{a[0][0], a[1][1], a[2][2]}
		if e[0] < e[1] {
			e[0], e[1] = e[1], e[0]
		}
		if e[1] < e[2] {
			e[1], e[2] = e[2], e[1]
		}
		if e[0] < e[1] {
			e[0], e[1] = e[1], e[0]
		}
		return e
	}
	p2 := (a[0][0]-q)*(a[0][0]-q) + (a[1][1]-q)*(a[1][1]-q) + (a[2][2]-q)*(a[2][2]-q) + 2*p1
	p := math.Sqrt(p2 / 6)
	var b [3][3]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			b[i][j] = a[i][j] / p
			if i == j {
				b[i][j] -= q / p
			}
		}
	}
	r := (b[0][0]*(b[1][1]*b[2][2]-b[1][2]*b[2][1]) - b[0][1]*(b[1][0]*b[2][2]-b[1][2]*b[2][0]) +
		b[0][2]*(b[1][0]*b[2][1]-b[1][1]*b[2][0])) / 2
	phi := math.Acos(max(-1, min(1, r))) / 3
	e0 := q + 2*p*math.Cos(phi)
	e2 := q + 2*p*math.Cos(phi+2*math.Pi/3)
	return [3]float64{e0, 3*q - e0 - e2, e2}
}

// newRand returns the generator for case i of a synthetic data set: PCG
// seeded by (seed, i), so every case can be made alone and in any order.
func newRand(seed int64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(i)*0x9E3779B97F4A7C15+1))
}

// noiseField is smooth random "value noise": uniform values in [−1, 1] on a
// coarse lattice of cells³ cells spanning the volume, interpolated with a
// smoothstep-weighted trilinear blend. It gives textures and bias fields.
type noiseField struct {
	n    int
	vals []float64
	sc   [3]float64
}

func newNoiseField(r *rand.Rand, d [3]int, cells int) *noiseField {
	n := cells + 2
	f := &noiseField{n: n, vals: make([]float64, n*n*n)}
	for i := range f.vals {
		f.vals[i] = 2*r.Float64() - 1
	}
	for a := 0; a < 3; a++ {
		f.sc[a] = float64(cells) / float64(max(d[a], 1))
	}
	return f
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// at returns the field at voxel (x, y, z).
func (f *noiseField) at(x, y, z int) float64 {
	p := [3]float64{float64(x) * f.sc[0], float64(y) * f.sc[1], float64(z) * f.sc[2]}
	var i [3]int
	var w [3]float64
	for a := 0; a < 3; a++ {
		fl := math.Floor(p[a])
		i[a] = min(int(fl), f.n-2)
		w[a] = smooth(p[a] - fl)
	}
	v := func(a, b, c int) float64 { return f.vals[(i[2]+c)*f.n*f.n+(i[1]+b)*f.n+i[0]+a] }
	lerp := func(a, b, t float64) float64 { return a + t*(b-a) }
	x0 := lerp(lerp(v(0, 0, 0), v(1, 0, 0), w[0]), lerp(v(0, 1, 0), v(1, 1, 0), w[0]), w[1])
	x1 := lerp(lerp(v(0, 0, 1), v(1, 0, 1), w[0]), lerp(v(0, 1, 1), v(1, 1, 1), w[0]), w[1])
	return lerp(x0, x1, w[2])
}

// blob is a randomly rotated ellipsoid whose radius is perturbed by a few
// angular harmonics, r(u) = 1 + Σ a_k cos(f_k u·d_k + φ_k) for the unit
// direction u, so shapes range from ellipsoids to lobulated masses.
// level(p) < 1 inside; level is the ellipsoidal distance over r(u).
type blob struct {
	c     [3]float64
	rot   [3][3]float64 // rows: the ellipsoid's axes
	r     [3]float64
	harm  [][5]float64 // d(3), frequency, phase; amplitude in amp
	amp   []float64
	reach float64 // bounding radius (voxels)
}

func randomRotation(r *rand.Rand) [3][3]float64 {
	// Gram–Schmidt on random Gaussian vectors gives a uniform rotation.
	var m [3][3]float64
	for i := 0; i < 3; i++ {
		for {
			for j := 0; j < 3; j++ {
				m[i][j] = r.NormFloat64()
			}
			for k := 0; k < i; k++ {
				d := m[i][0]*m[k][0] + m[i][1]*m[k][1] + m[i][2]*m[k][2]
				for j := 0; j < 3; j++ {
					m[i][j] -= d * m[k][j]
				}
			}
			n := math.Sqrt(m[i][0]*m[i][0] + m[i][1]*m[i][1] + m[i][2]*m[i][2])
			if n > 1e-3 {
				for j := 0; j < 3; j++ {
					m[i][j] /= n
				}
				break
			}
		}
	}
	return m
}

func newBlob(r *rand.Rand, c, radii [3]float64, bumpiness float64, harmonics int) *blob {
	b := &blob{c: c, rot: randomRotation(r), r: radii}
	total := 0.0
	for k := 0; k < harmonics; k++ {
		var h [5]float64
		d := randomRotation(r)[0]
		copy(h[:3], d[:])
		h[3] = 1 + 2*r.Float64()
		h[4] = 2 * math.Pi * r.Float64()
		a := bumpiness * (0.5 + 0.5*r.Float64()) / float64(harmonics)
		b.harm = append(b.harm, h)
		b.amp = append(b.amp, a)
		total += a
	}
	b.reach = max(radii[0], radii[1], radii[2])*(1+total) + 1
	return b
}

// level returns the normalised distance of p from the blob's centre, < 1
// inside; +Inf for points beyond its bounding sphere.
func (b *blob) level(p [3]float64) float64 {
	d := [3]float64{p[0] - b.c[0], p[1] - b.c[1], p[2] - b.c[2]}
	dd := d[0]*d[0] + d[1]*d[1] + d[2]*d[2]
	if dd > b.reach*b.reach {
		return math.Inf(1)
	}
	var e float64
	for a := 0; a < 3; a++ {
		q := (b.rot[a][0]*d[0] + b.rot[a][1]*d[1] + b.rot[a][2]*d[2]) / b.r[a]
		e += q * q
	}
	e = math.Sqrt(e)
	if len(b.harm) == 0 || dd == 0 {
		return e
	}
	n := math.Sqrt(dd)
	rad := 1.0
	for k, h := range b.harm {
		u := (h[0]*d[0] + h[1]*d[1] + h[2]*d[2]) / n
		rad += b.amp[k] * math.Cos(h[3]*math.Pi*u+h[4])
	}
	return e / rad
}

// ricianNoise returns |v + n₁ + i·n₂| with n₁, n₂ ~ N(0, σ²): magnitude MR
// noise, which is Rician and biased upward in dark regions.
func ricianNoise(r *rand.Rand, v, sigma float64) float64 {
	a, b := v+sigma*r.NormFloat64(), sigma*r.NormFloat64()
	return math.Sqrt(a*a + b*b)
}

// Brain tissue classes of the phantom.
const (
	tBackground = iota
	tScalp
	tSkull
	tCSF
	tGM
	tWM
	tEdema
	tNecrosis
	tEnhancing
	tWMH // non-lesion white-matter hyperintensity (not labelled)
	tPeriv
	nTissues
)

// brainModalities lists the MRI channels in BraTS file order.
var brainModalities = []string{"flair", "t1", "t1ce", "t2"}

// brainIntensity holds the mean signal of each tissue per modality, in
// arbitrary scanner units, with the contrasts of glioma MRI:
//
//   - FLAIR suppresses CSF; edema is bright, and so is the whole core
//     (necrosis and enhancing rim are drawn from the edema's own intensity
//     distribution, see SynthBrain), so FLAIR shows the whole tumour but not
//     its parts;
//   - T1 shows the tumour mildly dark (edema and rim a little below white
//     matter, necrosis dark);
//   - T1ce is T1 with the enhancing rim bright (the brightest tissue inside
//     the skull) and necrosis dark: it alone separates the enhancing tumour
//     and, with it, the tumour core;
//   - T2 is bright for CSF, edema and (fluid) necrosis.
//
// FLAIR also puts the scalp, the white-matter hyperintensities and the
// periventricular halo in the range of edema, so no global FLAIR threshold
// separates the whole tumour either.
var brainIntensity = map[string][nTissues]float64{
	//        bg scalp skull csf  gm   wm   edema nec  enh  wmh  periv
	"flair": {0, 470, 50, 70, 360, 290, 520, 520, 520, 520, 470},
	"t1":    {0, 650, 60, 120, 380, 500, 400, 200, 410, 420, 430},
	"t1ce":  {0, 660, 70, 130, 390, 510, 410, 200, 820, 430, 440},
	"t2":    {0, 380, 50, 950, 520, 380, 760, 900, 620, 680, 600},
}

// synthBrainDims returns the grid of a brain phantom of edge S: S along x,
// 9S/8 along y (anterior–posterior), 7S/8 along z, like BraTS's 240×240×155
// is wider than it is tall.
func synthBrainDims(size int) [3]int {
	return [3]int{size, (size*9 + 4) / 8, (size*7 + 4) / 8}
}

// SynthBrain makes case i of a synthetic BraTS-like data set (seed, edge
// size). The phantom is an ellipsoidal head (scalp, skull, CSF, cortex with a
// noise-perturbed boundary, white matter, two lateral ventricles with a
// FLAIR-bright periventricular halo, deep grey nuclei, 2–8 small white-matter
// hyperintensities), with 1–3 tumours, each a lobulated edema region (label
// 2) around a core; every core has an enhancing rim (4), most around a
// necrotic centre (1), a few solid. Sizes, shapes, orientations and
// positions are random. The contrasts (see brainIntensity) make FLAIR and
// T2 show the whole tumour, T1ce the enhancing rim and the necrosis, so the
// tumour core and enhancing tumour need more than FLAIR. Each modality gets
// a smooth tissue texture, a smooth multiplicative bias field and Rician
// noise; the images are int16 with
// exactly 0 outside the head, the label uint8. Voxels are isotropic
// (160/S mm, so the head is about head-sized) and the affine is BraTS's
// (x and y flipped: LPS voxel order in RAS world).
func SynthBrain(seed int64, i, size int) *SynthCase {
	r := newRand(seed, i)
	d := synthBrainDims(size)
	nvox := d[0] * d[1] * d[2]
	sp := 160.0 / float64(size)
	cen := [3]float64{float64(d[0]-1) / 2, float64(d[1]-1) / 2, float64(d[2]-1) / 2}
	jit := func(s float64) float64 { return s * (2*r.Float64() - 1) }
	head := newBlob(r, [3]float64{cen[0] + jit(1.5), cen[1] + jit(2), cen[2] + jit(1.5)},
		[3]float64{0.42 * float64(d[0]) * (1 + jit(0.05)), 0.43 * float64(d[1]) * (1 + jit(0.05)), 0.43 * float64(d[2]) * (1 + jit(0.05))}, 0, 0)
	head.rot = [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	head.reach = math.Inf(1)
	shapeNoise := newNoiseField(r, d, 4)
	cortexNoise := newNoiseField(r, d, 7)
	brainR := 0.80 * min(head.r[0], head.r[1], head.r[2])

	// Ventricles: two lateral ellipsoids, elongated front to back.
	var vents, nuclei []*blob
	vgap := 0.13 * head.r[0] * (1 + jit(0.2))
	for _, s := range []float64{-1, 1} {
		vc := [3]float64{head.c[0] + s*vgap, head.c[1] + jit(1.5), head.c[2] + 0.08*head.r[2] + jit(1)}
		v := newBlob(r, vc, [3]float64{0.07 * head.r[0] * (1 + jit(0.3)), 0.30 * head.r[1] * (1 + jit(0.15)), 0.12 * head.r[2] * (1 + jit(0.3))}, 0.15, 2)
		v.rot = [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
		vents = append(vents, v)
		nc := [3]float64{head.c[0] + s*(vgap+0.18*head.r[0]), head.c[1] + 0.05*head.r[1], head.c[2] - 0.12*head.r[2]}
		nuclei = append(nuclei, newBlob(r, nc, [3]float64{0.10 * head.r[0], 0.14 * head.r[1], 0.10 * head.r[2]}, 0.2, 2))
	}
	// Non-lesion white-matter hyperintensities.
	var wmh []*blob
	for k, n := 0, 2+r.IntN(7); k < n; k++ {
		c := randomInBrain(r, head, 0.55)
		rad := brainR * (0.04 + 0.06*r.Float64())
		wmh = append(wmh, newBlob(r, c, [3]float64{rad * (0.7 + 0.6*r.Float64()), rad, rad * (0.7 + 0.6*r.Float64())}, 0.3, 2))
	}
	// Tumours: an edema blob around a core blob.
	type tumour struct {
		edema, core *blob
		necFrac     float64 // core level below which the core is necrotic (0: none)
	}
	counts := []int{1, 1, 1, 2, 2, 3}
	var tumours []tumour
	for k, n := 0, counts[r.IntN(len(counts))]; k < n; k++ {
		c := randomInBrain(r, head, 0.55)
		re := brainR * (0.28 + 0.30*r.Float64())
		edema := newBlob(r, c, [3]float64{re * (0.7 + 0.5*r.Float64()), re * (0.7 + 0.5*r.Float64()), re * (0.7 + 0.5*r.Float64())}, 0.25*r.Float64()+0.1, 3)
		rc := re * (0.45 + 0.30*r.Float64())
		cc := [3]float64{c[0] + jit(0.15*re), c[1] + jit(0.15*re), c[2] + jit(0.15*re)}
		core := newBlob(r, cc, [3]float64{rc * (0.8 + 0.4*r.Float64()), rc * (0.8 + 0.4*r.Float64()), rc * (0.8 + 0.4*r.Float64())}, 0.25*r.Float64(), 3)
		// Every core enhances at its rim; most have a necrotic centre, a
		// few are solid enhancing masses.
		t := tumour{edema: edema, core: core}
		if r.Float64() < 0.85 {
			t.necFrac = 0.45 + 0.3*r.Float64()
		}
		tumours = append(tumours, t)
	}

	tissue := make([]uint8, nvox)
	label := make([]uint8, nvox)
	edemaLevel := make([]float32, nvox) // 0 at the tumour centre, 1 at the edema border
	owner := make([]int8, nvox)         // the tumour that labelled the voxel
	lesionVox := make([]int, len(tumours))
	lesionSum := make([][3]float64, len(tumours))
	lesionSq := make([][3][3]float64, len(tumours))
	idx := 0
	for z := 0; z < d[2]; z++ {
		for y := 0; y < d[1]; y++ {
			for x := 0; x < d[0]; x++ {
				p := [3]float64{float64(x), float64(y), float64(z)}
				rho := head.level(p) * (1 + 0.03*shapeNoise.at(x, y, z))
				t := uint8(tBackground)
				switch {
				case rho > 1:
				case rho > 0.93:
					t = tScalp
				case rho > 0.87:
					t = tSkull
				case rho > 0.83:
					t = tCSF
				case rho > 0.68+0.08*cortexNoise.at(x, y, z):
					t = tGM
				default:
					t = tWM
				}
				if t == tWM || t == tGM {
					for _, n := range nuclei {
						if n.level(p) < 1 {
							t = tGM
						}
					}
					for _, v := range vents {
						if l := v.level(p); l < 1 {
							t = tCSF
						} else if l < 1.35 && t == tWM {
							t = tPeriv
						}
					}
					if t == tWM {
						for _, w := range wmh {
							if w.level(p) < 1 {
								t = tWMH
							}
						}
					}
					for k, tu := range tumours {
						lc := tu.core.level(p)
						le := tu.edema.level(p)
						var lab uint8
						switch {
						case lc < 1 && lc >= tu.necFrac:
							t, lab = tEnhancing, 4
						case lc < 1:
							t, lab = tNecrosis, 1
						case le < 1:
							if label[idx] == 0 {
								t, lab = tEdema, 2
							}
						}
						if lab != 0 {
							if label[idx] == 0 {
								lesionVox[k]++
								lesionSum[k][0] += p[0]
								lesionSum[k][1] += p[1]
								lesionSum[k][2] += p[2]
								for a := 0; a < 3; a++ {
									for b := 0; b < 3; b++ {
										lesionSq[k][a][b] += p[a] * p[b]
									}
								}
							}
							label[idx], owner[idx] = lab, int8(k)
							edemaLevel[idx] = float32(math.Min(le, 1))
						}
					}
				}
				tissue[idx] = t
				idx++
			}
		}
	}

	// The edema levels of each tumour, sorted: on FLAIR its core draws its
	// levels from them, so core and edema share one intensity distribution.
	levels := make([][]float32, len(tumours))
	var allLevels []float32
	for k, t := range tissue {
		if t == tEdema {
			levels[owner[k]] = append(levels[owner[k]], edemaLevel[k])
			allLevels = append(allLevels, edemaLevel[k])
		}
	}
	if len(allLevels) == 0 {
		allLevels = []float32{0.5}
	}
	for k := range levels {
		if len(levels[k]) < 20 {
			levels[k] = allLevels
		}
		slices.Sort(levels[k])
	}

	sc := &SynthCase{ID: synthBrainID(i), Images: map[string]*volume.Volume{}, tissue: tissue}
	affine := [4][4]float64{{-sp, 0, 0, sp * cen[0]}, {0, -sp, 0, sp * cen[1]}, {0, 0, sp, -sp * cen[2]}, {0, 0, 0, 1}}
	newVol := func(dt string) *volume.Volume {
		return &volume.Volume{Dims: [4]int{d[0], d[1], d[2], 1}, Data: make([]float32, nvox),
			Spacing: [3]float64{sp, sp, sp}, Affine: affine, Datatype: dt, Format: "nifti1"}
	}
	for _, mod := range brainModalities {
		base := brainIntensity[mod]
		gain := 1 + jit(0.1)
		bias := newNoiseField(r, d, 2)
		texture := newNoiseField(r, d, 10)
		lesionTex := newNoiseField(r, d, 6)
		coreTex := newNoiseField(r, d, max(size/4, 4))
		sigma := 0.06 * base[tWM] * (0.8 + 0.4*r.Float64())
		v := newVol("int16")
		idx := 0
		for z := 0; z < d[2]; z++ {
			for y := 0; y < d[1]; y++ {
				for x := 0; x < d[0]; x++ {
					t := tissue[idx]
					if t != tBackground {
						m := base[t] * (1 + 0.05*texture.at(x, y, z))
						if t == tEdema {
							// Edema fades towards its border and varies
							// inside, overlapping grey matter and the scalp.
							m = base[tWM] + (base[tEdema]-base[tWM])*(1-0.6*float64(edemaLevel[idx])*float64(edemaLevel[idx]))
							m *= 1 + 0.12*lesionTex.at(x, y, z)
						}
						if t == tEnhancing || t == tNecrosis {
							if mod == "flair" {
								// On FLAIR the core looks like edema: the
								// edema's centre-to-border ramp at a level
								// that wanders over the core, a quantile
								// (from a fine noise field) of its own
								// tumour's edema levels.
								u := max(0, min(1, 0.5+1.2*coreTex.at(x, y, z)))
								lv := levels[owner[idx]]
								q := float64(lv[int(u*float64(len(lv)-1))])
								m = base[tWM] + (base[tEdema]-base[tWM])*(1-0.6*q*q)
								m *= 1 + 0.12*lesionTex.at(x, y, z)
							} else {
								m *= 1 + 0.1*lesionTex.at(x, y, z)
							}
						}
						m *= gain * math.Exp(0.18*bias.at(x, y, z))
						val := math.Round(ricianNoise(r, m, sigma))
						v.Data[idx] = float32(max(1, min(val, 32767)))
					}
					idx++
				}
			}
		}
		sc.Images[mod] = v
	}
	lab := newVol("uint8")
	for k, l := range label {
		lab.Data[k] = float32(l)
	}
	sc.Label = lab
	for k := range tumours {
		if lesionVox[k] == 0 {
			continue
		}
		n := float64(lesionVox[k])
		l := Lesion{Centre: [3]float64{lesionSum[k][0] / n, lesionSum[k][1] / n, lesionSum[k][2] / n}, Voxels: lesionVox[k]}
		var cov [3][3]float64
		for a := 0; a < 3; a++ {
			for b := 0; b < 3; b++ {
				cov[a][b] = lesionSq[k][a][b]/n - l.Centre[a]*l.Centre[b]
			}
		}
		for a, e := range symEigen3(cov) {
			l.Axes[a] = math.Sqrt(max(e, 0))
		}
		sc.Lesions = append(sc.Lesions, l)
	}
	return sc
}

// randomInBrain draws a point whose normalised head distance is below rmax.
func randomInBrain(r *rand.Rand, head *blob, rmax float64) [3]float64 {
	for {
		u := [3]float64{2*r.Float64() - 1, 2*r.Float64() - 1, 2*r.Float64() - 1}
		if u[0]*u[0]+u[1]*u[1]+u[2]*u[2] <= 1 {
			return [3]float64{head.c[0] + rmax*u[0]*head.r[0], head.c[1] + rmax*u[1]*head.r[1], head.c[2] + rmax*u[2]*head.r[2]}
		}
	}
}

func synthBrainID(i int) string { return fmt.Sprintf("BraTS17_Synth_%03d", i) }

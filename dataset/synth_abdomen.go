package dataset

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/volume"
)

// AbdomenCT-1K organ labels.
const (
	LabelLiver    = 1
	LabelKidney   = 2
	LabelSpleen   = 3
	LabelPancreas = 4
)

// synthAbdomenDims returns the grid of an abdomen phantom of edge S: S×S
// axial slices and 5S/8 slices.
func synthAbdomenDims(size int) [3]int { return [3]int{size, size, max((size*5+4)/8, 4)} }

// SynthAbdomen makes case i of a synthetic AbdomenCT-1K-like data set. The
// phantom, in Hounsfield units, is an elliptic body (skin and subcutaneous
// fat about −100 HU, a muscle wall about 50 HU) on a patient table, in air
// (−1000 HU); inside: visceral fat, bowel loops (soft tissue about 30 HU with
// gas pockets), the spine (cortical ring about 700 HU, cancellous 250 HU), the
// aorta (about 180 HU, contrast) and the vena cava, and four labelled organs
// with random position, size, orientation and lobulation: liver (1, about
// 60 HU), kidneys (2, cortex about 160 HU over a 100 HU medulla), spleen (3,
// about 50 HU) and pancreas (4, about 45 HU, a chain of small blobs).
// Organ contrasts overlap muscle, bowel and vessels so no HU window alone
// finds the organs. Gaussian noise of 10–20 HU and a smooth texture are
// added. Images are int16 HU; in-plane spacing is 0.8·512/S mm (a 512² CT
// resampled to S²) and slices cover 250 mm.
func SynthAbdomen(seed int64, i, size int) *SynthCase {
	r := newRand(seed, i)
	d := synthAbdomenDims(size)
	nvox := d[0] * d[1] * d[2]
	spXY := 0.8 * 512 / float64(size)
	spZ := 250.0 / float64(d[2])
	jit := func(s float64) float64 { return s * (2*r.Float64() - 1) }
	// Body frame: centre and semi-axes in voxels (x: left-right, y:
	// anterior-posterior, index growing towards the back).
	cx, cy := float64(d[0]-1)/2+jit(1.5), float64(d[1]-1)/2-0.03*float64(d[1])+jit(1.5)
	ax, ay := 0.43*float64(d[0])*(1+jit(0.06)), 0.31*float64(d[1])*(1+jit(0.08))
	az := float64(d[2]) / 2
	fatT := 0.06 + 0.06*r.Float64() // subcutaneous fat thickness (fraction)
	body := func(u, v float64) float64 { return math.Sqrt(u*u + v*v) }
	at := func(u, v, w float64) [3]float64 { return [3]float64{cx + u*ax, cy + v*ay, az + w*az} }
	rad := func(u, v, w float64) [3]float64 { return [3]float64{u * ax, v * ay, w * az} }
	// Organs. x index grows towards the patient's right (affine flips x),
	// so the liver sits at u > 0.
	type organ struct {
		b     *blob
		label uint8
		hu    float64
	}
	var organs []organ
	add := func(label uint8, hu float64, c, rr [3]float64, bump float64) {
		organs = append(organs, organ{newBlob(r, c, [3]float64{rr[0] * (1 + jit(0.15)), rr[1] * (1 + jit(0.15)), rr[2] * (1 + jit(0.15))}, bump, 3), label, hu})
	}
	for _, s := range []float64{-1, 1} {
		add(LabelKidney, 160, at(s*(0.36+jit(0.05)), 0.45+jit(0.06), -0.05+jit(0.15)), rad(0.12, 0.16, 0.28), 0.1)
	}
	add(LabelSpleen, 50+jit(8), at(-0.55+jit(0.06), 0.28+jit(0.08), 0.35+jit(0.15)), rad(0.15, 0.22, 0.25), 0.25)
	add(LabelLiver, 60+jit(10), at(0.42+jit(0.06), -0.05+jit(0.08), 0.35+jit(0.12)), rad(0.40, 0.50, 0.45), 0.3)
	pu, pv, pw := -0.38+jit(0.05), 0.18+jit(0.05), 0.05+jit(0.15)
	for k := 0; k < 4; k++ {
		add(LabelPancreas, 45+jit(5), at(pu+0.15*float64(k), pv+jit(0.03), pw+jit(0.04)), rad(0.08, 0.06, 0.07), 0.2)
	}
	// Bowel loops and gas pockets in the anterior and lower abdomen.
	var bowel, gas []*blob
	for k, n := 0, 6+r.IntN(6); k < n; k++ {
		c := at(jit(0.6), -0.35+jit(0.35), -0.35+jit(0.55))
		bowel = append(bowel, newBlob(r, c, rad(0.10+0.1*r.Float64(), 0.10+0.1*r.Float64(), 0.15+0.2*r.Float64()), 0.3, 3))
		if r.Float64() < 0.6 {
			gas = append(gas, newBlob(r, c, rad(0.04, 0.04, 0.06), 0.3, 2))
		}
	}
	spine := [2]float64{cx + jit(1), cy + 0.72*ay}
	spineR := 0.13 * ay
	aorta := [2]float64{spine[0] - 0.10*ax, spine[1] - 1.7*spineR}
	ivc := [2]float64{spine[0] + 0.14*ax, spine[1] - 1.5*spineR}
	vesselR := 0.045 * ax
	tableY := cy + ay + 2 + r.Float64()*2
	texture := newNoiseField(r, d, 8)
	sigma := 10 + 10*r.Float64()

	img := make([]float32, nvox)
	lab := make([]uint8, nvox)
	idx := 0
	for z := 0; z < d[2]; z++ {
		for y := 0; y < d[1]; y++ {
			for x := 0; x < d[0]; x++ {
				p := [3]float64{float64(x), float64(y), float64(z)}
				u, v := (p[0]-cx)/ax, (p[1]-cy)/ay
				rb := body(u, v)
				hu := -1000.0
				var l uint8
				switch {
				case rb > 1:
					if p[1] > tableY && p[1] < tableY+2 && math.Abs(u) < 1.1 {
						hu = 100 // patient table
					}
				case rb > 1-fatT:
					hu = -100
				case rb > 1-fatT-0.05:
					hu = 50 // abdominal wall muscle
				default:
					hu = -90 // visceral fat
					for _, b := range bowel {
						if b.level(p) < 1 {
							hu = 30
						}
					}
					for _, g := range gas {
						if g.level(p) < 1 {
							hu = -850
						}
					}
					if ds := math.Hypot(p[0]-spine[0], p[1]-spine[1]); ds < spineR {
						hu = 250
						if ds > 0.75*spineR {
							hu = 700
						}
					} else if ds < 1.8*spineR && p[1] > spine[1] {
						hu = 50 // paraspinal muscle
					}
					if math.Hypot(p[0]-aorta[0], p[1]-aorta[1]) < vesselR {
						hu = 180
					} else if math.Hypot(p[0]-ivc[0], p[1]-ivc[1]) < 1.1*vesselR {
						hu = 120
					}
					for _, o := range organs {
						if lv := o.b.level(p); lv < 1 {
							hu, l = o.hu, o.label
							if o.label == LabelKidney && lv < 0.6 {
								hu = 100 // medulla
							}
							break
						}
					}
				}
				if hu > -900 {
					hu += 6 * texture.at(x, y, z)
				}
				hu += sigma * r.NormFloat64()
				img[idx] = float32(math.Round(max(-1024, min(hu, 3071))))
				lab[idx] = l
				idx++
			}
		}
	}
	affine := [4][4]float64{{-spXY, 0, 0, spXY * float64(d[0]) / 2}, {0, -spXY, 0, spXY * float64(d[1]) / 2},
		{0, 0, spZ, -spZ * float64(d[2])}, {0, 0, 0, 1}}
	newVol := func(dt string, data []float32) *volume.Volume {
		return &volume.Volume{Dims: [4]int{d[0], d[1], d[2], 1}, Data: data,
			Spacing: [3]float64{spXY, spXY, spZ}, Affine: affine, Datatype: dt, Format: "nifti1"}
	}
	labF := make([]float32, nvox)
	for k, v := range lab {
		labF[k] = float32(v)
	}
	return &SynthCase{
		ID:     fmt.Sprintf("Case_%05d", i+1),
		Images: map[string]*volume.Volume{"ct": newVol("int16", img)},
		Label:  newVol("uint8", labF),
	}
}

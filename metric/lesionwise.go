package metric

import (
	"fmt"
	"math"
	"strings"
)

// LesionMissHD95 is the HD95 (mm) that the BraTS 2023 lesion-wise scores
// assign to a missed lesion and to a false-positive component: the scorers'
// stand-in for an infinite distance.
const LesionMissHD95 = 374

// LesionOptions are the two parameters of the BraTS 2023 lesion-wise metrics.
type LesionOptions struct {
	// Dilation is the number of dilations of the truth with the 18-connected
	// 3×3×3 element (the cube without its 8 corners), used both to merge
	// nearby truth components into one lesion and to find the predicted
	// components that belong to a lesion. 0 means no dilation: components
	// are never merged and a prediction must overlap the lesion itself.
	Dilation int
	// MinVolumeMM3 is the volume threshold: truth lesions of volume (voxel
	// count × voxel volume) ≤ MinVolumeMM3 mm³ are left out of the scores.
	MinVolumeMM3 float64
}

// LesionOptionsFor returns the options of a BraTS 2023/2024 sub-challenge,
// named by its prefix, case-insensitive: "GLI" (adult glioma), "SSA"
// (sub-Saharan Africa) and "PED" (paediatric) dilate 3 times and keep lesions
// over 50 mm³; "MEN" (meningioma) dilates once and keeps lesions over 50 mm³;
// "MET" (metastases) dilates once and keeps lesions over 2 mm³. "" means GLI.
// An unknown name is an error.
func LesionOptionsFor(challenge string) (LesionOptions, error) {
	switch strings.ToUpper(strings.TrimSpace(challenge)) {
	case "", "GLI", "SSA", "PED":
		return LesionOptions{Dilation: 3, MinVolumeMM3: 50}, nil
	case "MEN":
		return LesionOptions{Dilation: 1, MinVolumeMM3: 50}, nil
	case "MET":
		return LesionOptions{Dilation: 1, MinVolumeMM3: 2}, nil
	}
	return LesionOptions{}, fmt.Errorf("metric: unknown BraTS sub-challenge %q (want GLI, SSA, PED, MEN or MET)", challenge)
}

// LesionResult holds the lesion-wise scores of one case and one region.
type LesionResult struct {
	// Dice is the lesion-wise Dice: Σ lesion Dice / (Lesions + FP).
	Dice float64
	// HD95 is the lesion-wise HD95 in mm:
	// (Σ lesion HD95 + LesionMissHD95·FP) / (Lesions + FP).
	HD95 float64
	// TP counts the kept truth lesions with at least one matched predicted
	// component, FN those with none (TP + FN = Lesions), and FP the
	// predicted components matched by no kept lesion.
	TP, FN, FP int
	// Lesions is the number of kept truth lesions (over the volume
	// threshold).
	Lesions int
}

// LesionWise computes the BraTS 2023 lesion-wise Dice and HD95 (the ranking
// metrics of the BraTS 2023 and 2024 segmentation challenges) of the binary
// masks pred and truth (dims and spacing as in Compute; nonzero is
// foreground), for one region of one case:
//
//  1. The truth is dilated opt.Dilation times with the 18-connected element.
//     Each 26-connected component of the dilated truth defines one lesion:
//     the truth voxels inside it. So truth components closer than about
//     2·Dilation voxels are merged into one lesion (the 26-connected truth
//     components themselves need not be labelled: each lies inside one
//     component of its dilation).
//  2. The prediction is split into its 26-connected components.
//  3. Each lesion is dilated opt.Dilation times on its own; the predicted
//     components with a voxel in that dilated lesion are its matches. The
//     lesion Dice and HD95 are those of the lesion against the union of its
//     matches (HD95 as in Compute: the larger directed 95th percentile of
//     surface-voxel distances); a lesion with no match scores Dice 0 and HD95
//     LesionMissHD95.
//  4. Lesions of volume ≤ opt.MinVolumeMM3 mm³ are left out. Predicted
//     components matched by no kept lesion (including those that only touch
//     left-out lesions) are false positives, each scoring Dice 0 and HD95
//     LesionMissHD95.
//  5. Dice and HD95 are the means over kept lesions and false positives; with
//     neither (0/0) Dice is 1 and HD95 is 0.
//
// Dilation is clipped at the image border (outside is background), as
// scipy.ndimage.binary_dilation does.
//
// Two differences from the published BraTS 2023 scorer
// (github.com/rachitsaluja/BraTS-2023-Metrics) are known. That scorer
// collects the matches of every lesion, small ones included, before it
// counts false positives, so a component that touches only a left-out lesion
// is neither scored nor a false positive there; here it is a false positive.
// And it computes HD95 with DeepMind's surface-distance package, which
// weights each surface element by its area, so its lesion HD95 can differ
// slightly from this voxel-based one.
//
// Beyond two bounding-box scans of the image, the work is done in the
// bounding box of pred ∪ truth grown by Dilation voxels, and each lesion's
// dilation in the lesion's own bounding box grown by Dilation voxels.
// LesionWise fails if the slice lengths do not match dims, the spacing is not
// positive and finite, or an option is negative or NaN.
func LesionWise(pred, truth []uint8, dims [3]int, spacing [3]float64, opt LesionOptions) (LesionResult, error) {
	if err := checkGeometry(len(pred), len(truth), dims, spacing); err != nil {
		return LesionResult{}, err
	}
	if opt.Dilation < 0 || !(opt.MinVolumeMM3 >= 0) {
		return LesionResult{}, fmt.Errorf("metric: lesion options %+v: dilation and volume threshold must be ≥ 0", opt)
	}
	d := opt.Dilation
	loP, hiP, okP := boundingBox(pred, dims)
	loT, hiT, okT := boundingBox(truth, dims)
	if !okP && !okT {
		return LesionResult{Dice: 1, HD95: 0}, nil
	}
	// The work box: pred ∪ truth grown by d, clipped to the image. It holds
	// every dilated truth voxel and every predicted voxel.
	var lo, bx [3]int
	for i := range 3 {
		l, h := dims[i], -1
		if okP {
			l, h = min(l, loP[i]), max(h, hiP[i])
		}
		if okT {
			l, h = min(l, loT[i]-d), max(h, hiT[i]+d)
		}
		l, h = max(l, 0), min(h, dims[i]-1)
		lo[i], bx[i] = l, h-l+1
	}
	n := bx[0] * bx[1] * bx[2]
	t := cropMask(truth, dims, lo, bx)
	p := cropMask(pred, dims, lo, bx)
	lab := make([]int32, n) // scratch for labelling, then the lesion labels
	predLab := make([]int32, n)
	nPred := label26(p, bx, predLab)

	nLes := 0
	if okT {
		dil := make([]uint8, n)
		dilate18(t, bx, d, dil, make([]uint8, n))
		nLes = label26(dil, bx, lab)
		for i := range lab {
			if t[i] == 0 {
				lab[i] = 0 // a lesion is its truth voxels only
			}
		}
	}

	// Sizes and bounding boxes of the lesions and predicted components.
	lesStats := componentStats(lab, bx, nLes)
	predStats := componentStats(predLab, bx, nPred)

	voxelMM3 := spacing[0] * spacing[1] * spacing[2]
	stamp := make([]int32, nPred+1) // stamp[c] = last lesion that matched c
	matchedByKept := make([]bool, nPred+1)
	var res LesionResult
	var sumDice, sumHD float64
	var matched []int32
	for k := int32(1); int(k) <= nLes; k++ {
		ls := lesStats[k]
		if float64(ls.size)*voxelMM3 <= opt.MinVolumeMM3 {
			continue
		}
		res.Lesions++
		// The lesion dilated d times, in its bounding box grown by d
		// (clipped to the work box, whose clipped sides are image borders).
		var slo, sbx [3]int
		for i := range 3 {
			l, h := max(ls.lo[i]-d, 0), min(ls.hi[i]+d, bx[i]-1)
			slo[i], sbx[i] = l, h-l+1
		}
		sub := make([]uint8, sbx[0]*sbx[1]*sbx[2])
		forBox(slo, sbx, bx, func(j, i int) {
			if lab[i] == k {
				sub[j] = 1
			}
		})
		subDil := make([]uint8, len(sub))
		dilate18(sub, sbx, d, subDil, make([]uint8, len(sub)))
		matched = matched[:0]
		forBox(slo, sbx, bx, func(j, i int) {
			if c := predLab[i]; subDil[j] != 0 && c != 0 && stamp[c] != k {
				stamp[c] = k
				matched = append(matched, c)
			}
		})
		if len(matched) == 0 {
			res.FN++
			sumHD += LesionMissHD95
			continue
		}
		res.TP++
		// Dice against the union of the matches, and the joint box of the
		// lesion and the matches for HD95.
		jlo, jhi := ls.lo, ls.hi
		unionSize := 0
		for _, c := range matched {
			matchedByKept[c] = true
			cs := predStats[c]
			unionSize += cs.size
			for i := range 3 {
				jlo[i], jhi[i] = min(jlo[i], cs.lo[i]), max(jhi[i], cs.hi[i])
			}
		}
		inter := 0
		forBox(ls.lo, [3]int{ls.hi[0] - ls.lo[0] + 1, ls.hi[1] - ls.lo[1] + 1, ls.hi[2] - ls.lo[2] + 1}, bx, func(_, i int) {
			if lab[i] == k && predLab[i] != 0 && stamp[predLab[i]] == k {
				inter++
			}
		})
		sumDice += float64(2*inter) / float64(ls.size+unionSize)
		jbx := [3]int{jhi[0] - jlo[0] + 1, jhi[1] - jlo[1] + 1, jhi[2] - jlo[2] + 1}
		lesMask := make([]uint8, jbx[0]*jbx[1]*jbx[2])
		unionMask := make([]uint8, len(lesMask))
		forBox(jlo, jbx, bx, func(j, i int) {
			if lab[i] == k {
				lesMask[j] = 1
			}
			if c := predLab[i]; c != 0 && stamp[c] == k {
				unionMask[j] = 1
			}
		})
		dist, err := SurfaceDistances(unionMask, lesMask, jbx, spacing)
		if err != nil {
			return LesionResult{}, err
		}
		sumHD += math.Max(Percentile(dist.PredToTruth, 95), Percentile(dist.TruthToPred, 95))
	}
	for c := 1; c <= nPred; c++ {
		if !matchedByKept[c] {
			res.FP++
		}
	}
	den := res.Lesions + res.FP
	if den == 0 {
		res.Dice, res.HD95 = 1, 0
		return res, nil
	}
	res.Dice = sumDice / float64(den)
	res.HD95 = (sumHD + LesionMissHD95*float64(res.FP)) / float64(den)
	return res, nil
}

// cropMask returns the box of m at lo of size bx as a 0/1 mask.
func cropMask(m []uint8, dims, lo, bx [3]int) []uint8 {
	out := make([]uint8, bx[0]*bx[1]*bx[2])
	forBox(lo, bx, dims, func(j, i int) {
		if m[i] != 0 {
			out[j] = 1
		}
	})
	return out
}

// forBox calls f(j, i) for every voxel of the box at lo of size bx inside a
// volume of size dims: j is the voxel's index in the box, i in the volume,
// both x fastest, in increasing order.
func forBox(lo, bx, dims [3]int, f func(j, i int)) {
	j := 0
	for z := range bx[2] {
		for y := range bx[1] {
			i := lo[0] + dims[0]*((lo[1]+y)+dims[1]*(lo[2]+z))
			for range bx[0] {
				f(j, i)
				j++
				i++
			}
		}
	}
}

// compStats is the voxel count and inclusive bounding box of a component.
type compStats struct {
	size   int
	lo, hi [3]int
}

// componentStats returns the stats of components 1..n of a label volume of
// size dims (index 0 unused).
func componentStats(lab []int32, dims [3]int, n int) []compStats {
	st := make([]compStats, n+1)
	for c := range st {
		st[c].lo = dims
		st[c].hi = [3]int{-1, -1, -1}
	}
	i := 0
	for z := range dims[2] {
		for y := range dims[1] {
			for x := range dims[0] {
				if c := lab[i]; c != 0 {
					s := &st[c]
					s.size++
					s.lo = [3]int{min(s.lo[0], x), min(s.lo[1], y), min(s.lo[2], z)}
					s.hi = [3]int{max(s.hi[0], x), max(s.hi[1], y), max(s.hi[2], z)}
				}
				i++
			}
		}
	}
	return st
}

// Connected-component labelling and binary dilation are written here: no Go
// library works on this package's flat x-fastest []uint8 volumes.

// prevNeighbours26 are the 13 neighbours of a voxel (in 26-connectivity)
// that precede it in index order (x fastest).
var prevNeighbours26 = func() [][3]int {
	var off [][3]int
	for dz := -1; dz <= 0; dz++ {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				if dz == 0 && (dy > 0 || dy == 0 && dx >= 0) {
					continue
				}
				off = append(off, [3]int{dx, dy, dz})
			}
		}
	}
	return off
}()

// neighbours18 are the offsets of the 18-connected 3×3×3 element without its
// centre: the cube minus its 8 corners (scipy's
// generate_binary_structure(3, 2)).
var neighbours18 = func() [][3]int {
	var off [][3]int
	for dz := -1; dz <= 1; dz++ {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				if a := dx*dx + dy*dy + dz*dz; a >= 1 && a <= 2 {
					off = append(off, [3]int{dx, dy, dz})
				}
			}
		}
	}
	return off
}()

// label26 writes into lab the 26-connected components of the nonzero voxels
// of m, a volume of size dims (x fastest): 0 for background, 1..n for the
// components, numbered in the index order of their first voxel. It returns n.
// It is the classic two-pass algorithm: provisional labels from the already
// visited neighbours, merged with a union-find, then resolved.
func label26(m []uint8, dims [3]int, lab []int32) int {
	nx, ny, nz := dims[0], dims[1], dims[2]
	parent := []int32{0} // parent[l] of provisional label l; 0 unused
	find := func(l int32) int32 {
		for parent[l] != l {
			parent[l] = parent[parent[l]]
			l = parent[l]
		}
		return l
	}
	offs := make([]int, len(prevNeighbours26))
	for k, o := range prevNeighbours26 {
		offs[k] = o[0] + nx*(o[1]+ny*o[2])
	}
	i := 0
	for z := range nz {
		for y := range ny {
			for x := range nx {
				if m[i] == 0 {
					lab[i] = 0
					i++
					continue
				}
				var l int32
				for k, o := range prevNeighbours26 {
					xx, yy, zz := x+o[0], y+o[1], z+o[2]
					if xx < 0 || xx >= nx || yy < 0 || yy >= ny || zz < 0 {
						continue
					}
					nl := lab[i+offs[k]]
					if nl == 0 {
						continue
					}
					if l == 0 {
						l = find(nl)
						continue
					}
					if r := find(nl); r != l {
						// Keep the smaller root: roots are then
						// the first provisional label of a set.
						if r < l {
							parent[l] = r
							l = r
						} else {
							parent[r] = l
						}
					}
				}
				if l == 0 {
					l = int32(len(parent))
					parent = append(parent, l)
				}
				lab[i] = l
				i++
			}
		}
	}
	// Resolve: final labels in order of first appearance.
	final := make([]int32, len(parent))
	n := int32(0)
	for i, l := range lab {
		if l == 0 {
			continue
		}
		r := find(l)
		if final[r] == 0 {
			n++
			final[r] = n
		}
		lab[i] = final[r]
	}
	return int(n)
}

// dilate18 writes into dst the nonzero voxels of m (as 0/1) dilated iters
// times by the 18-connected element, within a volume of size dims: voxels
// outside it are background and are never set (scipy's binary_dilation with
// border_value 0). scratch has len(m) bytes. iters = 0 copies m.
func dilate18(m []uint8, dims [3]int, iters int, dst, scratch []uint8) {
	nx, ny, nz := dims[0], dims[1], dims[2]
	for i, v := range m {
		dst[i] = min(v, 1)
	}
	cur, next := dst, scratch
	offs := make([]int, len(neighbours18))
	for k, o := range neighbours18 {
		offs[k] = o[0] + nx*(o[1]+ny*o[2])
	}
	for range iters {
		copy(next, cur)
		i := 0
		for z := range nz {
			for y := range ny {
				for x := range nx {
					if cur[i] != 0 {
						interior := x > 0 && x < nx-1 && y > 0 && y < ny-1 && z > 0 && z < nz-1
						for k, o := range neighbours18 {
							if interior {
								next[i+offs[k]] = 1
								continue
							}
							xx, yy, zz := x+o[0], y+o[1], z+o[2]
							if xx >= 0 && xx < nx && yy >= 0 && yy < ny && zz >= 0 && zz < nz {
								next[i+offs[k]] = 1
							}
						}
					}
					i++
				}
			}
		}
		cur, next = next, cur
	}
	if &cur[0] != &dst[0] {
		copy(dst, cur)
	}
}

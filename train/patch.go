package train

import (
	"math/rand/v2"

	"github.com/fess-seg/fess/augment"
	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/infer"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// Patch training (Config.Patch; docs/method.md, "Patch training").
//
// Each optimiser step draws Batch patches of Patch[0]×Patch[1]×Patch[2]
// voxels (x, y, z). For sample b of global step s (0-based, the step about
// to be taken) every random choice comes from one PCG generator seeded by
// (run seed, s, b) (sampleRNG), in this order:
//
//  1. the case, uniform over the training cases (rng.IntN);
//  2. foreground or not: rng.Float64() < ForegroundP (0.33, nnU-Net's
//     oversample_foreground_percent), decided per sample with the
//     generator (as nnU-Net v2's probabilistic oversampling; nnU-Net's
//     default instead forces the last third of each batch, which with
//     batch 1 or 2 would mean never or always every other sample);
//  3. the position: for a foreground patch a region among those present in
//     the case (rng.IntN) and one of its voxels (rng.IntN over the
//     region's foreground voxels, at most maxForeground of them kept at a
//     regular stride), the patch placed so that the voxel is its centre
//     voxel (start = voxel − patch/2); a case with no foreground, and
//     every other patch, takes a uniform start (rng.IntN per axis, x, y,
//     z). Starts range over [0, n − p] along an axis of n ≥ p voxels and
//     over [n − p, 0] when n < p (the patch then covers the whole axis),
//     and a foreground start is clamped into that range, as nnU-Net does;
//  4. with augmentation, augment.DrawPatch's parameters (flips, rotation,
//     scaling about the patch centre, per-channel intensity scale, shift
//     and gamma; augment.DefaultPatch).
//
// The patch is then cut through the drawn transform (augment.Cut): the
// image trilinearly, the mask by nearest neighbour, and anything outside
// the case is image 0 and mask 0. Because the generator depends on the
// step and sample only, a run resumed from a checkpoint draws the same
// patches.

// ForegroundP is the fraction of patches centred on a foreground voxel.
const ForegroundP = 0.33

// maxForeground bounds the foreground voxels kept per case and region.
const maxForeground = 1 << 16

// sampleRNG is the generator of sample i of global step step (0-based):
// PCG(seed ⊕ 0x9a7c4e5 ⊕ i·φ, step), with φ the odd constant 0x9E37…, so
// distinct samples of a step (and distinct steps) get distinct streams.
func sampleRNG(seed uint64, step int64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9a7c4e5^(uint64(i)*0x9E3779B97F4A7C15), uint64(step)))
}

// foreground returns, per region of the K-region mask (vox voxels per
// region), the flat indices of its foreground voxels; more than
// maxForeground are thinned to a regular stride.
func foreground(mask []uint8, vox int) [][]int32 {
	k := 0
	if vox > 0 {
		k = len(mask) / vox
	}
	out := make([][]int32, k)
	for r := 0; r < k; r++ {
		m := mask[r*vox : (r+1)*vox]
		n := 0
		for _, v := range m {
			if v != 0 {
				n++
			}
		}
		stride := (n + maxForeground - 1) / maxForeground
		idx := make([]int32, 0, min(n, maxForeground))
		j := 0
		for i, v := range m {
			if v != 0 {
				if j%max(stride, 1) == 0 {
					idx = append(idx, int32(i))
				}
				j++
			}
		}
		out[r] = idx
	}
	return out
}

// startRange is the range of patch starts along an axis of n voxels for
// a patch of p.
func startRange(n, p int) (lo, hi int) { return min(0, n-p), max(0, n-p) }

// patchStart draws the start of one patch in a case of dims with the
// given foreground lists, steps 2 and 3 of the draw order above.
func patchStart(rng *rand.Rand, dims, patch [3]int, fg [][]int32) [3]int {
	var start [3]int
	if rng.Float64() < ForegroundP {
		var present []int
		for r, l := range fg {
			if len(l) > 0 {
				present = append(present, r)
			}
		}
		if len(present) > 0 {
			l := fg[present[rng.IntN(len(present))]]
			v := int(l[rng.IntN(len(l))])
			vx := [3]int{v % dims[0], (v / dims[0]) % dims[1], v / (dims[0] * dims[1])}
			for a := 0; a < 3; a++ {
				lo, hi := startRange(dims[a], patch[a])
				start[a] = min(max(vx[a]-patch[a]/2, lo), hi)
			}
			return start
		}
	}
	for a := 0; a < 3; a++ {
		lo, hi := startRange(dims[a], patch[a])
		start[a] = lo + rng.IntN(hi-lo+1)
	}
	return start
}

// patchCentre is the source coordinate of the centre of a patch starting
// at start (augment.CutPatch's convention).
func patchCentre(start, patch [3]int) [3]float64 {
	var c [3]float64
	for a := range c {
		c[a] = float64(start[a]) + float64(patch[a]-1)/2
	}
	return c
}

// augmentOptions returns the augmentation of this run's training samples.
func (t *Trainer) augmentOptions() augment.PatchOptions {
	if t.Cfg.Augmenting() {
		return augment.DefaultPatch()
	}
	return augment.NoPatchAugment()
}

// drawPatch draws and cuts sample i of step step: the case index, the
// patch's image (C channel blocks) and mask (K region blocks), x fastest.
func (t *Trainer) drawPatch(step int64, i int) (int, []float32, []uint8) {
	rng := sampleRNG(t.Cfg.Seed, step, i)
	ci := rng.IntN(len(t.train))
	s := t.train[ci]
	start := patchStart(rng, s.Dims, t.Cfg.Patch, t.fg[ci])
	p := augment.DrawPatch(rng, t.augmentOptions(), len(t.task.Channels))
	img, mask := augment.Cut(s.Img, s.Mask, s.Dims, patchCentre(start, t.Cfg.Patch), t.Cfg.Patch, p)
	return ci, img, mask
}

// patchBatch is the batch of global step step (0-based): x [B,Pz,Py,Px,C]
// and y [B,Pz,Py,Px,K'] as batch builds them.
func (t *Trainer) patchBatch(step int64) (*tensor.Tensor, *tensor.Tensor) {
	P := t.Cfg.Patch
	vox := P[0] * P[1] * P[2]
	c, k := len(t.task.Channels), t.task.OutChannels()
	n := t.Cfg.Batch
	x := tensor.New(n, P[2], P[1], P[0], c)
	y := tensor.New(n, P[2], P[1], P[0], k)
	for b := 0; b < n; b++ {
		_, img, mask := t.drawPatch(step, b)
		interleave(x.Data[b*vox*c:(b+1)*vox*c], img, c)
		targetChannels(y.Data[b*vox*k:(b+1)*vox*k], mask, vox, t.task.Softmax)
	}
	return x, y
}

// augmentCube returns sample s augmented as a whole cube (cube training
// with Augment): augment.DrawPatch from sampleRNG(seed, step, i) and
// augment.Cut over the cube itself (centred, the cube's own dims), so
// rotation and scaling zero-pad what they bring in from outside.
func (t *Trainer) augmentCube(s Sample, step int64, i int) ([]float32, []uint8) {
	rng := sampleRNG(t.Cfg.Seed, step, i)
	p := augment.DrawPatch(rng, t.augmentOptions(), len(t.task.Channels))
	return augment.Cut(s.Img, s.Mask, s.Dims, patchCentre([3]int{}, s.Dims), s.Dims, p)
}

// loadCases reads the named cases (LoadCase: either data mode).
func loadCases(p *dataset.Prepared, ids []string) ([]Sample, error) {
	out := make([]Sample, 0, len(ids))
	for _, id := range ids {
		img, mask, dims, err := p.LoadCase(id)
		if err != nil {
			return nil, err
		}
		out = append(out, Sample{ID: id, Img: img, Mask: mask, Dims: dims})
	}
	return out, nil
}

// splitIDs returns the case IDs of a manifest split, the first limit of
// them when limit > 0.
func splitIDs(p *dataset.Prepared, split string, limit int) []string {
	var ids []string
	for _, c := range p.Split(split) {
		ids = append(ids, c.ID)
	}
	if limit > 0 && limit < len(ids) {
		ids = ids[:limit]
	}
	return ids
}

// foldIDs returns fold k's train (the first limit when limit > 0) and val
// case IDs.
func foldIDs(p *dataset.Prepared, k, limit int) (train, val []string, err error) {
	folds, err := p.Folds()
	if err != nil {
		return nil, nil, err
	}
	if k < 0 || k >= len(folds) {
		return nil, nil, errs.Usage("train: --fold %d: the data set has %d folds (0 to %d)", k, len(folds), len(folds)-1)
	}
	train, val = folds[k].Train, folds[k].Val
	if limit > 0 && limit < len(train) {
		train = train[:limit]
	}
	return train, val, nil
}

// validatePatch is validate for patch training: each validation case, its
// full prepared volume, is predicted by sliding window
// (infer.Probabilities with the training patch and overlap 0.5), and the
// per-case, per-region Dice and soft Dice loss are averaged as validate
// does.
func (t *Trainer) validatePatch() (dice, loss float64, err error) {
	return t.validatePatchModel(t.Model)
}

// validatePatchModel is validatePatch for the model m.
func (t *Trainer) validatePatchModel(m *model.UNet3D) (dice, loss float64, err error) {
	k := t.task.OutChannels()
	first := 0
	if t.task.Softmax {
		first = 1
	}
	for _, s := range t.val {
		probs, err := infer.Probabilities(m, s.Img, s.Dims, infer.Options{Patch: t.Cfg.Patch, Overlap: 0.5})
		if err != nil {
			return 0, 0, err
		}
		vox := s.Dims[0] * s.Dims[1] * s.Dims[2]
		masks := make([][]float32, 0, k-first)
		for r := first; r < k; r++ {
			masks = append(masks, probs[r*vox:(r+1)*vox])
		}
		cd, cl := caseScores(masks, s.Mask, vox)
		dice += cd
		loss += cl
	}
	n := float64(len(t.val))
	return dice / n, loss / n, nil
}

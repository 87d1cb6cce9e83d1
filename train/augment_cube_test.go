package train

import (
	"reflect"
	"slices"
	"testing"

	"github.com/fess-seg/fess/augment"
)

// TestCubeAugmentSharedPath: cube training with Augment augments every
// cube with exactly what patch training uses (augment.DrawPatch with the
// same options from the same per-sample generator, then augment.Cut),
// reproducibly per seed and differently for another seed or step; masks
// stay 0/1 and aligned with the image (a rotated or scaled image of the
// mask itself matches the nearest-neighbour mask).
func TestCubeAugmentSharedPath(t *testing.T) {
	cfg := tinyConfig(tinyData(t), "dice")
	on := true
	cfg.Augment = &on
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pcfg := patchConfig(cfg.Data, "dice")
	if !reflect.DeepEqual(tr.augmentOptions(), augment.DefaultPatch()) || !pcfg.Defaults().Augmenting() {
		t.Fatal("cube and patch training augment with different options")
	}
	s := tr.train[0]
	dims := s.Dims
	spatial, rotated := 0, false
	for step := int64(0); step < 40; step++ {
		img, mask := tr.augmentCube(s, step, 1)
		// The same draw, made by hand with the functions patch training calls.
		p := augment.DrawPatch(sampleRNG(cfg.Seed, step, 1), augment.DefaultPatch(), 1)
		wi, wm := augment.Cut(s.Img, s.Mask, dims, patchCentre([3]int{}, dims), dims, p)
		if !slices.Equal(img, wi) || !slices.Equal(mask, wm) {
			t.Fatalf("step %d: the cube is not augment.Cut of augment.DrawPatch's draw", step)
		}
		for _, m := range mask {
			if m > 1 {
				t.Fatalf("step %d: mask value %d", step, m)
			}
		}
		// Alignment: the same spatial transform of the mask as an image.
		asImg := make([]float32, len(s.Mask))
		for i, m := range s.Mask {
			asImg[i] = float32(m)
		}
		id := augment.PatchParams{Spatial: p.Spatial, Intensity: []augment.Intensity{{Scale: 1, Gamma: 1}}}
		ti, tm := augment.Cut(asImg, s.Mask, dims, patchCentre([3]int{}, dims), dims, id)
		if !slices.Equal(tm, mask) {
			t.Fatalf("step %d: the mask depends on the intensity draw", step)
		}
		for i, v := range ti {
			if (v > 0.99 && tm[i] != 1) || (v < 0.01 && tm[i] != 0) {
				t.Fatalf("step %d voxel %d: image of the mask %v, mask %d (misaligned)", step, i, v, tm[i])
			}
		}
		if p.Spatial != (augment.Spatial{Zoom: 1}) {
			spatial++
		}
		rotated = rotated || p.Spatial.Rot != [3]float64{} || p.Spatial.Zoom != 1
	}
	if spatial == 0 || !rotated {
		t.Fatalf("40 draws: %d spatial transforms, rotation or scaling %v", spatial, rotated)
	}
	// Per seed: the same seed gives the same batch, another seed and
	// another step differ.
	x1, y1 := tr.batch(tr.train, []int{0, 1}, 7)
	x2, y2 := tr.batch(tr.train, []int{0, 1}, 7)
	x3, _ := tr.batch(tr.train, []int{0, 1}, 8)
	if !slices.Equal(x1.Data, x2.Data) || !slices.Equal(y1.Data, y2.Data) || slices.Equal(x1.Data, x3.Data) {
		t.Fatal("cube augmentation not a function of (seed, step)")
	}
	tr.Cfg.Seed++
	x4, _ := tr.batch(tr.train, []int{0, 1}, 7)
	if slices.Equal(x1.Data, x4.Data) {
		t.Fatal("another seed gives the same augmented batch")
	}
}

// Package augment makes random, seeded variants of training volumes.
//
// Augment, Draw and Apply make the views that the contrastive baselines
// (SimCLR, InfoNCE; docs/method.md) compare: flips along each spatial axis,
// applied identically to the mask, and an intensity jitter of the image.
// DrawPatch, CutPatch and Cut (patch.go) are the on-the-fly augmentation of
// patch training: a patch cut through an affine map (flips, rotation,
// scaling: one trilinear resampling of the image, nearest neighbour for
// the mask, zero padding outside the volume) and then intensity scale,
// shift and gamma per channel.
//
// Every draw comes from the *rand.Rand the caller passes, in a fixed order,
// so a view is a pure function of the generator's state: seed it from the
// run's seed and a counter (rand.New(rand.NewPCG(seed, counter))) and a
// resumed run sees the same views.
package augment

import (
	"fmt"
	"math/rand/v2"
)

// Options sets the augmentation's ranges.
type Options struct {
	FlipP            float64 // probability of a flip along each axis (0.5)
	ScaleLo, ScaleHi float64 // intensity scale a ~ U(ScaleLo, ScaleHi) (0.9, 1.1)
	ShiftLo, ShiftHi float64 // intensity shift b ~ U(ShiftLo, ShiftHi) (−0.1, 0.1)
}

// Default returns flips with p = 0.5, scale U(0.9, 1.1), shift U(−0.1, 0.1).
func Default() Options {
	return Options{FlipP: 0.5, ScaleLo: 0.9, ScaleHi: 1.1, ShiftLo: -0.1, ShiftHi: 0.1}
}

// Params is one draw of the augmentation.
type Params struct {
	Flip         [3]bool // flip along D, H, W
	Scale, Shift float32 // x' = Scale·x + Shift
}

// Draw takes one set of parameters from rng, in this order: the three flip
// decisions (D, H, W; each rng.Float64() < FlipP), the scale, the shift.
func Draw(rng *rand.Rand, opt Options) Params {
	var p Params
	for i := range p.Flip {
		p.Flip[i] = rng.Float64() < opt.FlipP
	}
	p.Scale = float32(opt.ScaleLo + (opt.ScaleHi-opt.ScaleLo)*rng.Float64())
	p.Shift = float32(opt.ShiftLo + (opt.ShiftHi-opt.ShiftLo)*rng.Float64())
	return p
}

// Augment returns a view of one single-channel sample x of dims [D,H,W]
// (row-major, W fastest: the layout of one [1,D,H,W,1] volume) and of its
// mask y (nil: image only): the flips drawn from rng applied to both, then
// x' = a·x + b applied to the image only. The inputs are not modified.
func Augment(x, y []float32, dims [3]int, rng *rand.Rand, opt Options) (xv, yv []float32) {
	return Apply(x, y, dims, Draw(rng, opt))
}

// Apply applies given parameters (see Augment).
func Apply(x, y []float32, dims [3]int, p Params) (xv, yv []float32) {
	n := dims[0] * dims[1] * dims[2]
	if len(x) != n || (y != nil && len(y) != n) {
		panic(fmt.Sprintf("augment: image %d and mask %d values for dims %v", len(x), len(y), dims))
	}
	xv = make([]float32, n)
	if y != nil {
		yv = make([]float32, n)
	}
	d, h, w := dims[0], dims[1], dims[2]
	src := func(i, n int, f bool) int {
		if f {
			return n - 1 - i
		}
		return i
	}
	for k := 0; k < d; k++ {
		sk := src(k, d, p.Flip[0])
		for j := 0; j < h; j++ {
			sj := src(j, h, p.Flip[1])
			for i := 0; i < w; i++ {
				o := (k*h+j)*w + i
				s := (sk*h+sj)*w + src(i, w, p.Flip[2])
				xv[o] = p.Scale*x[s] + p.Shift
				if y != nil {
					yv[o] = y[s]
				}
			}
		}
	}
	return xv, yv
}

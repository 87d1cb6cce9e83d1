package augment

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func ramp(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)
	}
	return x
}

// TestApplyFlipsAndJitter checks each flip on a ramp volume (value = flat
// index) and the jitter applying to the image only.
func TestApplyFlipsAndJitter(t *testing.T) {
	dims := [3]int{2, 3, 4}
	x := ramp(24)
	y := ramp(24)
	at := func(v []float32, k, j, i int) float32 { return v[(k*3+j)*4+i] }
	for axis := 0; axis < 3; axis++ {
		p := Params{Scale: 2, Shift: 0.5}
		p.Flip[axis] = true
		xv, yv := Apply(x, y, dims, p)
		for k := 0; k < 2; k++ {
			for j := 0; j < 3; j++ {
				for i := 0; i < 4; i++ {
					sk, sj, si := k, j, i
					switch axis {
					case 0:
						sk = 1 - k
					case 1:
						sj = 2 - j
					case 2:
						si = 3 - i
					}
					if got, want := at(yv, k, j, i), at(y, sk, sj, si); got != want {
						t.Fatalf("axis %d: mask at (%d,%d,%d) = %v, want %v", axis, k, j, i, got, want)
					}
					if got, want := at(xv, k, j, i), 2*at(x, sk, sj, si)+0.5; got != want {
						t.Fatalf("axis %d: image at (%d,%d,%d) = %v, want %v", axis, k, j, i, got, want)
					}
				}
			}
		}
	}
	if !slices.Equal(x, ramp(24)) || !slices.Equal(y, ramp(24)) {
		t.Error("inputs modified")
	}
	if xv, yv := Apply(x, nil, dims, Params{Scale: 1}); yv != nil || !slices.Equal(xv, x) {
		t.Error("identity parameters changed the image, or a nil mask gave a mask")
	}
}

// TestAugmentDeterministicAndDistributed checks that equal generator states
// give equal views, and that flip rates and jitter ranges match the options.
func TestAugmentDeterministicAndDistributed(t *testing.T) {
	dims := [3]int{4, 4, 4}
	x := ramp(64)
	a, _ := Augment(x, nil, dims, rand.New(rand.NewPCG(42, 7)), Default())
	b, _ := Augment(x, nil, dims, rand.New(rand.NewPCG(42, 7)), Default())
	if !slices.Equal(a, b) {
		t.Fatal("same seed and counter gave different views")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var flips [3]int
	const n = 4000
	for i := 0; i < n; i++ {
		p := Draw(rng, Default())
		for j, f := range p.Flip {
			if f {
				flips[j]++
			}
		}
		if p.Scale < 0.9 || p.Scale > 1.1 || p.Shift < -0.1 || p.Shift > 0.1 {
			t.Fatalf("draw %d out of range: %+v", i, p)
		}
	}
	for j, c := range flips {
		// binomial(4000, 0.5): sd ≈ 32, so ±160 is 5 sd
		if c < n/2-160 || c > n/2+160 {
			t.Errorf("axis %d flipped %d of %d times", j, c, n)
		}
	}
}

package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// catCase runs Conv3DCat(a, b) and Conv3D(Concat(a, b)) on fresh copies of
// the same inputs and returns the outputs and gradients of both (a, b, w,
// bias in that order), seeded with the same output gradient; preA gives
// a a gradient before the backward (an earlier reader's), gradB=false
// makes b a constant.
func catCase(t *testing.T, mk func() *Tape, seed uint64, n, s, ca, cb, co int, preA, gradB bool) (fused, ref [5][]float32) {
	t.Helper()
	for k, useCat := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(seed, 3))
		a := randVar(rng, -1, 1, n, s, s+1, s+2, ca)
		b := randVar(rng, -1, 1, n, s, s+1, s+2, cb)
		b.RequiresGrad = gradB
		if !gradB {
			b.Grad = nil
		}
		w := randVar(rng, -0.5, 0.5, 3, 3, 3, ca+cb, co)
		bias := randVar(rng, -1, 1, co)
		gy := make([]float32, n*s*(s+1)*(s+2)*co)
		for i := range gy {
			gy[i] = float32(rng.Float64()*2 - 1)
		}
		pre := make([]float32, len(a.Value.Data))
		for i := range pre {
			pre[i] = float32(rng.Float64())
		}
		tp := mk()
		// a and b come from an op on the tape (their gradients are then
		// the tape's, as in the network)
		a2, b2 := tp.Scale(a, 1), b
		if gradB {
			b2 = tp.Scale(b, 1)
		}
		var y *Var
		if useCat {
			y = tp.Conv3DCat(a2, b2, w, bias, Same3D(1))
		} else {
			y = tp.Conv3D(tp.Concat(4, a2, b2), w, bias, Same3D(1))
		}
		if preA {
			// an earlier gradient of a2 (a second reader, whose backward
			// ran first)
			a2.grad()
			copy(a2.Grad.Data, pre)
		}
		copy(y.grad(), gy)
		tp.BackwardFrom()
		out := [5][]float32{append([]float32(nil), y.Value.Data...), append([]float32(nil), a.Grad.Data...), nil,
			append([]float32(nil), w.Grad.Data...), append([]float32(nil), bias.Grad.Data...)}
		if gradB {
			out[2] = append([]float32(nil), b.Grad.Data...)
		}
		if k == 0 {
			fused = out
		} else {
			ref = out
		}
	}
	return
}

// TestConv3DCatMatchesConcat: Conv3DCat gives Conv3D(Concat(a, b))'s
// output and gradients bit for bit, on the fused path (F(2,3) and F(4,3),
// both schedules, one and two threads, a gradient already present on a,
// b without a gradient) and on the fallback (channel counts not multiples
// of 8, volumes too small for the Winograd path), on plain and arena tapes.
func TestConv3DCatMatchesConcat(t *testing.T) {
	defer func(th, wb, wm int) {
		tensor.SetThreads(th)
		winoWholeBytes, winoWholeMaxBytes = wb, wm
	}(tensor.Threads(), winoWholeBytes, winoWholeMaxBytes)
	tapes := map[string]func() *Tape{"plain": NewTape, "arena": NewArenaTape}
	cases := []struct {
		name               string
		m                  int // forced Winograd tile; 0: the default thresholds
		n, s, ca, cb, co   int
		wantFused, blocked bool
	}{
		{"F2", 2, 1, 6, 8, 16, 8, true, false},
		{"F4", 4, 2, 5, 16, 8, 16, true, false},
		{"F4 blocked", 4, 1, 9, 8, 8, 24, true, true},
		{"F2 blocked", 2, 2, 7, 16, 16, 8, true, true},
		{"odd channels", 2, 1, 6, 5, 11, 8, false, false},
		{"too small", 0, 1, 2, 8, 8, 8, false, false},
	}
	for _, c := range cases {
		for tn, mk := range tapes {
			for _, th := range []int{1, 2} {
				for _, v := range []struct{ preA, gradB bool }{{false, true}, {true, true}, {false, false}} {
					name := fmt.Sprintf("%s/%s/t%d/pre%v/gradB%v", c.name, tn, th, v.preA, v.gradB)
					t.Run(name, func(t *testing.T) {
						restore := func() {}
						if c.m > 0 {
							restore = forceWinograd(c.m)
						}
						defer restore()
						tensor.SetThreads(th)
						winoWholeBytes, winoWholeMaxBytes = 1<<30, 256<<20
						if c.blocked {
							winoWholeBytes, winoWholeMaxBytes = 0, 0
						}
						xs := []int{c.n, c.s, c.s + 1, c.s + 2, c.ca + c.cb}
						g := newConvGeom("test", xs, [3]int{3, 3, 3}, c.co, Same3D(1))
						if fused := g.winograd() && c.ca%8 == 0 && c.cb%8 == 0; fused != c.wantFused {
							t.Fatalf("fused path %v, want %v", fused, c.wantFused)
						}
						f, r := catCase(t, mk, 7, c.n, c.s, c.ca, c.cb, c.co, v.preA, v.gradB)
						for i, nm := range []string{"output", "a's gradient", "b's gradient", "w's gradient", "bias gradient"} {
							if len(f[i]) != len(r[i]) {
								t.Fatalf("%s: %d values, want %d", nm, len(f[i]), len(r[i]))
							}
							for j := range f[i] {
								if math.Float32bits(f[i][j]) != math.Float32bits(r[i][j]) {
									t.Fatalf("%s[%d] = %v, Conv3D(Concat) %v", nm, j, f[i][j], r[i][j])
								}
							}
						}
					})
				}
			}
		}
	}
}

// TestConv3DCatBF16: in bfloat16 precision the fused path (each part's
// transform writing its bfloat16 pairs) gives Conv3D(Concat)'s bits too.
func TestConv3DCatBF16(t *testing.T) {
	if !kernels.HasBF16() {
		t.Skip("this CPU has no AVX-512-BF16: no bf16 precision here")
	}
	if err := kernels.SetPrecision(kernels.BF16); err != nil {
		t.Fatal(err)
	}
	defer kernels.SetPrecision(kernels.FP32)
	for _, m := range []int{2, 4} {
		restore := forceWinograd(m)
		f, r := catCase(t, NewTape, 11, 1, 6, 8, 16, 8, false, true)
		restore()
		for i := range f {
			for j := range f[i] {
				if math.Float32bits(f[i][j]) != math.Float32bits(r[i][j]) {
					t.Fatalf("F(%d,3) result %d [%d] = %v, Conv3D(Concat) %v", m, i, j, f[i][j], r[i][j])
				}
			}
		}
	}
}

// TestConv3DCatReleasedInputs: on an arena tape, a and b released after
// the forward (as the network does) are recomputed for the backward, with
// the same gradients as when they are kept.
func TestConv3DCatReleasedInputs(t *testing.T) {
	defer forceWinograd(4)()
	run := func(release bool) [3][]float32 {
		rng := rand.New(rand.NewPCG(5, 5))
		x := randVar(rng, -1, 1, 1, 5, 6, 7, 8)
		x2 := randVar(rng, -1, 1, 1, 5, 6, 7, 8)
		w := randVar(rng, -0.5, 0.5, 3, 3, 3, 16, 8)
		gamma, beta := randVar(rng, 0.5, 1.5, 8), randVar(rng, -1, 1, 8)
		st, st2 := NewBNState(8, 0.1, 1e-5), NewBNState(8, 0.1, 1e-5)
		tp := NewArenaTape()
		u := tp.BatchNorm(x, gamma, beta, st, true)        // its backward reads no output
		sk := tp.BatchNormReLU(x2, gamma, beta, st2, true) // its backward reads its output
		y := tp.Conv3DCat(u, sk, w, nil, Same3D(1))
		if release {
			tp.Release(u)
			tp.Recompute(sk, sk)
			if u.Value.Data != nil || sk.Value.Data != nil {
				t.Fatal("the inputs were not released")
			}
		}
		l := tp.Sum(tp.Mul(y, y), nil)
		tp.Backward(l)
		return [3][]float32{append([]float32(nil), x.Grad.Data...), append([]float32(nil), x2.Grad.Data...), append([]float32(nil), w.Grad.Data...)}
	}
	kept, rel := run(false), run(true)
	for i := range kept {
		for j := range kept[i] {
			if math.Float32bits(kept[i][j]) != math.Float32bits(rel[i][j]) {
				t.Fatalf("gradient %d [%d]: released %v, kept %v", i, j, rel[i][j], kept[i][j])
			}
		}
	}
}

// TestGradConv3DCat checks Conv3DCat's gradients (both inputs, weights,
// bias) against central finite differences on the fused path.
func TestGradConv3DCat(t *testing.T) {
	for _, m := range []int{2, 4} {
		restore := forceWinograd(m)
		rng := rand.New(rand.NewPCG(9, uint64(m)))
		a := randVar(rng, -1, 1, 1, 3, 4, 5, 8)
		b := randVar(rng, -1, 1, 1, 3, 4, 5, 8)
		w := randVar(rng, -0.5, 0.5, 3, 3, 3, 16, 8)
		bias := randVar(rng, -1, 1, 8)
		gradCheck(t, fmt.Sprintf("Conv3DCat F(%d,3)", m), []*Var{a, b, w, bias},
			func(tp *Tape) *Var { return tp.Conv3DCat(a, b, w, bias, Same3D(1)) }, 1e-2, 2e-3, 1e-2)
		restore()
	}
}

// TestUp2MatchesColAdjoint: the direct up-sampling conv (up2) gives
// colAdjoint's output bit for bit, with and without bias, on channel
// counts that fill the micro-kernel's panels and ones that do not, one
// and two threads.
func TestUp2MatchesColAdjoint(t *testing.T) {
	defer func(th int) { tensor.SetThreads(th); useUp2 = true }(tensor.Threads())
	for i, c := range []struct{ n, d, h, w, ci, co int }{
		{1, 2, 3, 16, 16, 8}, {2, 3, 2, 16, 32, 16}, {1, 2, 2, 20, 12, 5}, {1, 1, 2, 32, 64, 32},
	} {
		for _, th := range []int{1, 2} {
			tensor.SetThreads(th)
			rng := rand.New(rand.NewPCG(uint64(i), 31))
			x := randVar(rng, -1, 1, c.n, c.d, c.h, c.w, c.ci)
			w := randVar(rng, -1, 1, 2, 2, 2, c.co, c.ci)
			b := randVar(rng, -1, 1, c.co)
			var outs [2][]float32
			for k, on := range []bool{true, false} {
				useUp2 = on
				y := NewTape().ConvTranspose3D(x, w, b, ConvSpec{Stride: [3]int{2, 2, 2}})
				outs[k] = y.Value.Data
			}
			for j := range outs[0] {
				if math.Float32bits(outs[0][j]) != math.Float32bits(outs[1][j]) {
					t.Fatalf("case %d threads %d: [%d] up2 %v, colAdjoint %v", i, th, j, outs[0][j], outs[1][j])
				}
			}
		}
	}
	useUp2 = true
	g := convGeom{n: 1, c: 8, co: 8, k: [3]int{2, 2, 2}, s: [3]int{2, 2, 2}, od: 2, oh: 2, ow: 16, d: 4, h: 4, w: 32}
	if !g.up2Direct() {
		t.Fatal("the test geometry does not take up2")
	}
}

// TestWeightCache: a conv's forward reuses its weights' cached kernel
// transform while they are unchanged, with the uncached result's bits,
// and transforms them again once one weight changes in place (and in each
// precision separately).
func TestWeightCache(t *testing.T) {
	defer forceWinograd(4)()
	defer func() { useUCache = true }()
	FlushWeightCache()
	rng := rand.New(rand.NewPCG(3, 4))
	x := randVar(rng, -1, 1, 1, 6, 7, 8, 8)
	w := randVar(rng, -0.5, 0.5, 3, 3, 3, 8, 16)
	fwd := func(cache bool) []float32 {
		useUCache = cache
		return NewTape().Conv3D(x, w, nil, Same3D(1)).Value.Data
	}
	same := func(what string, a, b []float32) {
		t.Helper()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s: [%d] %v, uncached %v", what, i, a[i], b[i])
			}
		}
	}
	hits := func() int { uCache.Lock(); defer uCache.Unlock(); return uCache.hits }
	ref := fwd(false)
	h0 := hits()
	same("first call", fwd(true), ref)
	same("second call", fwd(true), ref)
	if hits() != h0+1 {
		t.Fatalf("%d cache hits over two calls, want 1", hits()-h0)
	}
	w.Value.Data[5] += 0.25 // in place, as an optimiser step does
	ref2 := fwd(false)
	h1 := hits()
	same("after the weights changed", fwd(true), ref2)
	if hits() != h1 {
		t.Fatal("a changed weight was served from the cache")
	}
	if kernels.HasBF16() {
		if err := kernels.SetPrecision(kernels.BF16); err != nil {
			t.Fatal(err)
		}
		refB := fwd(false)
		h2 := hits()
		same("bf16", fwd(true), refB)
		if hits() != h2 {
			t.Fatal("the float32 transform was served in bf16 precision")
		}
		kernels.SetPrecision(kernels.FP32)
	}
	FlushWeightCache()
}

package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// TestConvWinogradMatchesIm2col compares the Winograd path (forward, weight,
// bias and input gradient) with the one-GEMM im2col path on odd shapes:
// odd and even sizes along each axis (tiles past the volume's end), volumes
// smaller than one input tile, batch items, channel counts that are not
// multiples of 8 (the transforms' Go tail), tiny block budgets (many blocks,
// a short last block), and one and two threads. It also checks that a rerun
// gives the same bits and that one and two threads agree on the forward
// pass and the input gradient (the blocked weight gradient sums per-worker
// partials, so it may differ in the last bits between thread counts, as on
// the other paths). Both schedules, whole and blocked, and both tile sizes,
// F(2,3) and F(4,3), are run.
func TestConvWinogradMatchesIm2col(t *testing.T) {
	type tc struct {
		n, d, h, w, ci, co int
		budget             int
	}
	cases := []tc{
		{1, 8, 8, 8, 8, 8, 1 << 20},
		{2, 7, 6, 5, 5, 4, 1 << 20},
		{1, 9, 8, 7, 16, 24, 20000},
		{3, 3, 2, 3, 4, 9, 1 << 20},
		{1, 2, 2, 2, 8, 8, 1 << 20},
		{1, 1, 5, 6, 12, 4, 1 << 20},
		{2, 6, 6, 6, 13, 17, 9000},
		{1, 10, 9, 11, 32, 16, 1 << 20},
		{1, 5, 4, 6, 40, 33, 1 << 20},
	}
	defer func(wm int) { winoWholeMaxBytes = wm }(winoWholeMaxBytes)
	defer func(m, m4, b, wb, th int, w4 bool) {
		winoMinTiles, winoMinTiles4, winoBlockBytes, winoWholeBytes = m, m4, b, wb
		tensor.SetThreads(th)
		useWinograd, useZSplit, useWino4 = true, true, w4
	}(winoMinTiles, winoMinTiles4, winoBlockBytes, winoWholeBytes, tensor.Threads(), useWino4)
	winoMinTiles, winoMinTiles4 = 1, 1
	for i, c := range cases {
		for _, run := range []struct {
			sched string
			tile  int
		}{{"whole", 2}, {"blocked", 2}, {"whole", 4}, {"blocked", 4}} {
			sched := run.sched
			useWino4 = run.tile == 4
			t.Run(fmt.Sprint(i, sched, run.tile), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(i), 11))
				x := randVar(rng, -1, 1, c.n, c.d, c.h, c.w, c.ci)
				w := randVar(rng, -1, 1, 3, 3, 3, c.ci, c.co)
				b := randVar(rng, -1, 1, c.co)
				gy := make([]float32, c.n*c.d*c.h*c.w*c.co)
				for j := range gy {
					gy[j] = float32(rng.Float64()*2 - 1)
				}
				spec := Same3D(1)
				winoBlockBytes, winoWholeBytes = c.budget, 1<<30
				winoWholeMaxBytes = 256 << 20
				if sched == "blocked" {
					winoWholeBytes, winoWholeMaxBytes = 0, 0
				}
				tensor.SetThreads(2)
				useWinograd, useZSplit = false, false
				g := newConvGeom("test", x.Value.Shape, [3]int{3, 3, 3}, c.co, spec)
				y0, gw0, gb0, gx0 := convAll(x, w, b, spec, gy)
				useWinograd = true
				if !g.winograd() {
					t.Fatal("the Winograd path does not apply")
				}
				if p := g.winoPlan(c.ci, c.co); p.whole != (sched == "whole") || p.m != run.tile {
					t.Fatalf("plan %+v, want the %s schedule with %d³ tiles", p, sched, run.tile)
				}
				y1, gw1, gb1, gx1 := convAll(x, w, b, spec, gy)
				for _, p := range []struct {
					name string
					a, b []float32
				}{{"y", y1, y0}, {"dW", gw1, gw0}, {"db", gb1, gb0}, {"dX", gx1, gx0}} {
					if d := maxRelDiff(p.a, p.b); d > 1e-5 {
						t.Errorf("%s: Winograd vs im2col max relative difference %.3g", p.name, d)
					}
				}
				y2, gw2, _, gx2 := convAll(x, w, b, spec, gy)
				tensor.SetThreads(1)
				y3, _, _, gx3 := convAll(x, w, b, spec, gy)
				for _, p := range []struct {
					name string
					a, b []float32
				}{{"y rerun", y2, y1}, {"dW rerun", gw2, gw1}, {"dX rerun", gx2, gx1},
					{"y 1 vs 2 threads", y3, y1}, {"dX 1 vs 2 threads", gx3, gx1}} {
					for j := range p.a {
						if p.a[j] != p.b[j] {
							t.Fatalf("%s: not bit-identical at %d (%v vs %v)", p.name, j, p.a[j], p.b[j])
						}
					}
				}
			})
		}
	}
}

// TestWinogradWeightTransformAdjoint checks winoWeightsAdjoint against
// winoWeights: <G w, u> = <w, Gᵀ u> for random w and u.
func TestWinogradWeightTransformAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const P = 7
	for _, m := range []int{2, 4} {
		np := (m + 2) * (m + 2) * (m + 2)
		w := make([]float32, 27*P)
		u := make([]float32, np*P)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		for i := range u {
			u[i] = float32(rng.NormFloat64())
		}
		gw := make([]float32, np*P)
		winoWeights(m, w, P, gw, P)
		wt := make([]float32, 27*P)
		winoWeightsAdjoint(m, u, P, P, wt)
		lhs, rhs := 0.0, 0.0
		for i := range gw {
			lhs += float64(gw[i]) * float64(u[i])
		}
		for i := range w {
			rhs += float64(w[i]) * float64(wt[i])
		}
		if d := lhs - rhs; d > 1e-4 || d < -1e-4 {
			t.Fatalf("F(%d,3): <G w, u> = %v, <w, Gᵀ u> = %v", m, lhs, rhs)
		}
	}
}

// forceWinograd makes every stride-1, padding-1 3×3×3 conv take the
// Winograd path with tile edge m (2 or 4), whatever its size and channel
// counts, until the returned function restores the thresholds.
func forceWinograd(m int) func() {
	t, t4, c, w4 := winoMinTiles, winoMinTiles4, winoMinC, useWino4
	winoMinTiles, winoMinTiles4, winoMinC, useWino4 = 1, 1, 1, m == 4
	return func() { winoMinTiles, winoMinTiles4, winoMinC, useWino4 = t, t4, c, w4 }
}

// TestGradConvWinograd checks the Winograd path's input, weight and bias
// gradients against central finite differences (odd sizes: tiles past the
// volume's end; channel counts off the 8-lane vectors).
func TestGradConvWinograd(t *testing.T) {
	for _, m := range []int{2, 4} {
		t.Run(fmt.Sprint("F", m), func(t *testing.T) { gradConvWinograd(t, m) })
	}
}

func gradConvWinograd(t *testing.T, m int) {
	defer forceWinograd(m)()
	// The conv is linear in each input, so a central difference has no
	// truncation error at any step: only float32 rounding, which F(4,3)'s
	// larger transform error (a few 1e-6 of the output) turns into noise of
	// a few 1e-3 at h = 1e-2. A larger step divides it.
	h := 1e-2
	if m == 4 {
		h = 0.25
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sh := range [][5]int{{2, 5, 6, 4, 3}, {1, 4, 4, 4, 9}, {1, 9, 6, 5, 2}} {
		x := randVar(rng, -1, 1, sh[0], sh[1], sh[2], sh[3], sh[4])
		w := randVar(rng, -1, 1, 3, 3, 3, sh[4], 2)
		b := randVar(rng, -1, 1, 2)
		g := newConvGeom("test", x.Value.Shape, [3]int{3, 3, 3}, 2, Same3D(1))
		if !g.winograd() || g.winoTile() != m {
			t.Fatalf("the F(%d,3) Winograd path does not apply", m)
		}
		gradCheck(t, fmt.Sprintf("Conv3D Winograd %v", sh), []*Var{x, w, b},
			func(tp *Tape) *Var { return tp.Conv3D(x, w, b, Same3D(1)) }, h, 2e-3, 1e-2)
	}
}

// TestGoldenConv3DWinograd runs the stride-1 PyTorch golden (y, dx, dW, db
// of a 3×3×3, padding-1 conv) on the Winograd path. The tolerance is
// 1e-5 relative plus 2e-6 of the tensor's largest magnitude: the fixture's
// dW reaches 30, and its elements that are small by cancellation carry the
// float32 rounding of the large partial sums. Measured against this
// fixture, both paths stay within a few 1e-7 of that largest magnitude
// (direct: y 2.3e-7, dx 3.1e-7, dW 3.1e-7; Winograd: y 2.5e-7, dx 3.5e-7,
// dW 4.4e-7).
func TestGoldenConv3DWinograd(t *testing.T) {
	for _, m := range []int{2, 4} {
		t.Run(fmt.Sprint("F", m), func(t *testing.T) { goldenConv3DWinograd(t, m) })
	}
}

func goldenConv3DWinograd(t *testing.T, m int) {
	tol := 2e-6
	if m == 4 {
		tol = 1e-5
	}
	defer forceWinograd(m)()
	f := loadOps(t)
	tag := "conv_s1"
	if sp := f.Values[tag+"/stride_pad"]; sp[0] != 1 || sp[1] != 1 {
		t.Fatalf("fixture %s has stride/pad %v, want 1/1", tag, sp)
	}
	x := NewParam("x", f.Get(tag+"/x"))
	w := NewParam("w", f.Get(tag+"/w"))
	b := NewParam("b", f.Get(tag+"/b"))
	spec := ConvSpec{Stride: [3]int{1, 1, 1}, Pad: [3]int{1, 1, 1}}
	if g := newConvGeom("test", x.Value.Shape, [3]int{3, 3, 3}, w.Value.Shape[4], spec); !g.winograd() || g.winoTile() != m {
		t.Fatalf("the F(%d,3) Winograd path does not apply", m)
	}
	tp := NewTape()
	y := tp.Conv3D(x, w, b, spec)
	tp.Backward(tp.Sum(tp.Mul(y, Const(f.Get(tag+"/r"))), nil))
	for _, p := range []struct {
		name string
		got  *tensor.Tensor
	}{{"y", y.Value}, {"gx", x.Grad}, {"gw", w.Grad}, {"gb", b.Grad}} {
		want := f.Get(tag + "/" + p.name)
		scale := 0.0
		for _, v := range want.Data {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		worst := 0.0
		for i, v := range want.Data {
			worst = math.Max(worst, math.Abs(float64(p.got.Data[i])-float64(v)))
		}
		t.Logf("F(%d,3) %s: largest error %.2g of the largest magnitude", m, p.name, worst/scale)
		closeTo(t, tag+"/"+p.name+" (Winograd)", p.got, want, tol*scale, 1e-5)
	}
}

// TestMaxPool2MatchesNaive checks the k = 2 max pool (kernels.MaxPool2Row,
// assembly for 8-channel multiples) against a naive loop on odd sizes
// (dropped trailing voxels), values with ties, forward and backward, on a
// recording tape (arg-max kept) and a no-grad arena (none kept).
func TestMaxPool2MatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, c := range []int{3, 8, 16} {
		n, d, h, w := 2, 5, 6, 7
		x := randVar(rng, -1, 1, n, d, h, w, c)
		for i := range x.Value.Data {
			x.Value.Data[i] = float32(rng.IntN(7) - 3)
		}
		od, oh, ow := d/2, h/2, w/2
		want := make([]float32, n*od*oh*ow*c)
		wantArg := make([]int, len(want))
		for nn := 0; nn < n; nn++ {
			for oz := 0; oz < od; oz++ {
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						for j := 0; j < c; j++ {
							o := (((nn*od+oz)*oh+oy)*ow+ox)*c + j
							best := -1
							for kz := 0; kz < 2; kz++ {
								for ky := 0; ky < 2; ky++ {
									for kx := 0; kx < 2; kx++ {
										i := ((((nn*d+2*oz+kz)*h+2*oy+ky)*w+2*ox+kx)*c + j)
										if best < 0 || x.Value.Data[i] > x.Value.Data[best] {
											best = i
										}
									}
								}
							}
							want[o], wantArg[o] = x.Value.Data[best], best
						}
					}
				}
			}
		}
		x.ZeroGrad()
		tp := NewTape()
		y := tp.MaxPool3D(x, 2)
		gy := make([]float32, len(want))
		for i := range gy {
			gy[i] = float32(i%13) - 6
		}
		y.Grad = tensor.FromSlice(append([]float32(nil), gy...), y.Value.Shape...)
		tp.BackwardFrom()
		wantGx := make([]float32, len(x.Value.Data))
		for o, i := range wantArg {
			wantGx[i] += gy[o]
		}
		ng := NewNoGradArena()
		y2 := ng.MaxPool3D(x, 2)
		for i := range want {
			if y.Value.Data[i] != want[i] || y2.Value.Data[i] != want[i] {
				t.Fatalf("c=%d: output %d = %v (no-grad %v), want %v", c, i, y.Value.Data[i], y2.Value.Data[i], want[i])
			}
		}
		for i := range wantGx {
			if x.Grad.Data[i] != wantGx[i] {
				t.Fatalf("c=%d: dx[%d] = %v, want %v", c, i, x.Grad.Data[i], wantGx[i])
			}
		}
	}
}

// TestWinoPlanWholeWhereKernelsOutweigh pins winoPlan's schedule on the
// reference network's deep levels with F(4,3) at 2 threads: its 8³ and
// 16³ decoder convs (40 tiles, 512→256; 320 tiles, 256→128) take the whole
// schedule although V and M exceed winoWholeBytes; its 32³ one (2560
// tiles, 128→64: V and M past winoWholeMaxBytes) and config b's first
// level stay blocked.
func TestWinoPlanWholeWhereKernelsOutweigh(t *testing.T) {
	defer func(w4 bool, th int) { useWino4 = w4; tensor.SetThreads(th) }(useWino4, tensor.Threads())
	useWino4 = true
	tensor.SetThreads(2)
	for _, c := range []struct {
		n, s, ci, co int
		whole        bool
	}{{5, 8, 512, 256, true}, {5, 16, 256, 128, true}, {5, 32, 128, 64, false}, {1, 64, 16, 16, false}} {
		g := newConvGeom("test", []int{c.n, c.s, c.s, c.s, c.ci}, [3]int{3, 3, 3}, c.co, Same3D(1))
		p := g.winoPlan(c.ci, c.co)
		if p.m != 4 || p.whole != c.whole || p.total*p.np*4*(c.ci+c.co) <= winoWholeBytes {
			t.Errorf("N%d %d³ %d→%d: plan %+v, want whole=%v past winoWholeBytes", c.n, c.s, c.ci, c.co, p, c.whole)
		}
	}
}

// TestWinoPackedWeightsMatchPackB holds the transform-into-packed-layout
// path to transforming all of U and packing it with kernels.PackB, bit for
// bit, on both tiles, channel counts with partial panels and several k
// blocks, at 1 and 2 threads, and with flip (the input gradient's kernels
// gathered from the unflipped ones) to the same on flipKernels' output.
func TestWinoPackedWeightsMatchPackB(t *testing.T) {
	defer tensor.SetThreads(tensor.Threads())
	rng := rand.New(rand.NewPCG(3, 4))
	for _, m := range []int{2, 4} {
		np := (m + 2) * (m + 2) * (m + 2)
		for _, c := range []struct{ ci, co int }{{1, 5}, {3, 8}, {4, 20}, {300, 33}, {7, 64}, {2, 100}} {
			for _, flip := range []bool{false, true} {
				w := randVar(rng, -1, 1, 3, 3, 3, c.ci, c.co).Value.Data
				wu := w // the kernels as the conv uses them, [3,3,3,ci,co]
				if flip {
					// w holds [3,3,3,co,ci] kernels; the conv uses them flipped
					wu = make([]float32, len(w))
					flipKernels(wu, w, [3]int{3, 3, 3}, c.co, c.ci)
				}
				u := make([]float32, np*c.ci*c.co)
				winoWeights(m, wu, c.ci*c.co, u, c.ci*c.co)
				psz := kernels.PackBSize(c.ci, c.co)
				for _, th := range []int{1, 2} {
					tensor.SetThreads(th)
					pu, packed := winoPackedWeights(m, np, w, flip, c.ci, c.co)
					for xi := 0; xi < np; xi++ {
						want := make([]float32, psz)
						kernels.PackB(want, u[xi*c.ci*c.co:], c.co, c.ci, c.co)
						for i, v := range want {
							if got := pu[xi*oddLines(psz)+i]; math.Float32bits(got) != math.Float32bits(v) {
								t.Fatalf("F(%d,3) %d→%d flip=%v, %d threads: point %d float %d = %v, PackB %v", m, c.ci, c.co, flip, th, xi, i, got, v)
							}
						}
					}
					// the GEMM reads the same through both descriptors
					a := randVar(rng, -1, 1, 7, c.ci).Value.Data
					c1, c2 := make([]float32, 7*c.co), make([]float32, 7*c.co)
					kernels.SgemmPacked(7, 1, a, c.ci, packed[np-1], 0, c1, c.co)
					kernels.SgemmPacked(7, 1, a, c.ci, kernels.PackB(make([]float32, psz), u[(np-1)*c.ci*c.co:], c.co, c.ci, c.co), 0, c2, c.co)
					for i := range c1 {
						if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
							t.Fatalf("F(%d,3) %d→%d flip=%v: C[%d] %v, want %v", m, c.ci, c.co, flip, i, c1[i], c2[i])
						}
					}
					putBuf(pu)
				}
			}
		}
	}
}

// TestTransposeBlocked holds the blocked transpose of the input gradient's
// flipped kernels to the definition, on shapes that are and are not
// multiples of its 32×32 blocks.
func TestTransposeBlocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][2]int{{1, 1}, {1, 40}, {33, 1}, {32, 32}, {64, 96}, {37, 70}} {
		r, c := s[0], s[1]
		src := randVar(rng, -1, 1, r, c).Value.Data
		dst := make([]float32, r*c)
		transposeBlocked(dst, src, r, c)
		for a := 0; a < r; a++ {
			for b := 0; b < c; b++ {
				if dst[b*r+a] != src[a*c+b] {
					t.Fatalf("%d×%d: dst[%d][%d] = %v, want %v", r, c, b, a, dst[b*r+a], src[a*c+b])
				}
			}
		}
	}
}

// TestConv1DirectMatchesIm2col holds the first layer's direct path to the
// im2col path it replaces, bit for bit: widths with and without a tail of
// under four voxels, 8 to 32 output channels, with and without a bias, at
// 1 and 2 threads.
func TestConv1DirectMatchesIm2col(t *testing.T) {
	if !kernels.Conv1Native() {
		t.Skip("no assembly first-layer loop on this CPU/build: the im2col path runs")
	}
	defer func(th int) { useConv1 = true; tensor.SetThreads(th) }(tensor.Threads())
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ n, d, h, w, co int }{{2, 5, 6, 7, 8}, {1, 4, 4, 16, 16}, {2, 3, 5, 9, 32}} {
		for _, withBias := range []bool{true, false} {
			for _, th := range []int{1, 2} {
				tensor.SetThreads(th)
				x := randVar(rng, -1, 1, c.n, c.d, c.h, c.w, 1)
				w := randVar(rng, -1, 1, 3, 3, 3, 1, c.co)
				var b *Var
				if withBias {
					b = randVar(rng, -1, 1, c.co)
				}
				useConv1 = true
				g := newConvGeom("test", x.Value.Shape, [3]int{3, 3, 3}, c.co, Same3D(1))
				if !g.conv1() {
					t.Fatalf("%+v: not on the direct path", c)
				}
				got := NewTape().Conv3D(x, w, b, Same3D(1)).Value.Data
				useConv1 = false
				want := NewTape().Conv3D(x, w, b, Same3D(1)).Value.Data
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v bias=%v threads=%d: y[%d] = %v, im2col %v", c, withBias, th, i, got[i], want[i])
					}
				}
			}
		}
	}
}

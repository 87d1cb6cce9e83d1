package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// w4Gens runs f once per assembly generation this CPU has (AVX2 only, and
// AVX-512 where present), restoring the selection afterwards.
func w4Gens(t *testing.T, f func(t *testing.T, gen string)) {
	if !wino4Asm {
		t.Skip("no assembly transforms on this CPU/build")
	}
	old := winoIn512
	defer func() { winoIn512 = old }()
	winoIn512 = false
	t.Run("avx2", func(t *testing.T) { f(t, "avx2") })
	if old {
		winoIn512 = true
		t.Run("avx512", func(t *testing.T) { f(t, "avx512") })
	}
}

// TestWino4AsmMatchesGo holds each assembly transform to its Go version bit
// for bit, on odd strides and channel counts (24 and 40 mix 16- and
// 8-channel chunks; 13 leaves a Go tail), with and without bias and
// accumulation.
func TestWino4AsmMatchesGo(t *testing.T) {
	w4Gens(t, func(t *testing.T, gen string) {
		r := rand.New(rand.NewPCG(4, 3))
		tmp := make([]float32, Wino4Tmp)
		for _, nc := range []int{8, 16, 24, 40, 64, 13} {
			n8 := nc &^ 7
			sx, sy, sz := nc+3, 7*nc+5, 41*nc+1
			ds := nc + 5
			src := randSlice(r, 5*(sx+sy+sz)+nc)
			for _, k := range []int{w4In, w4Grad, w4Kern} {
				nin := [...]int{6, 4, 3}[k]
				x, y := make([]float32, 216*ds), make([]float32, 216*ds)
				ssx, ssy, ssz := sx, sy, sz
				if k == w4Kern {
					ssx, ssy, ssz = sx, 3*sx, 9*sx
				}
				w4ExpandAsm(k, x, ds, src, ssx, ssy, ssz, n8, tmp)
				w4ExpandGo(w4Lines[k], nin, y, ds, src, ssx, ssy, ssz, n8)
				same(t, gen+" expand "+[...]string{"In", "Grad", "Kern"}[k], nc, x, y)
			}
			m := randSlice(r, 216*ds)
			bias := randSlice(r, nc)
			for _, k := range []int{w4Out, w4KernAdj} {
				nout := 4
				ssx, ssy, ssz := sx, sy, sz
				if k == w4KernAdj {
					nout, ssx, ssy, ssz = 3, sx, 3*sx, 9*sx
				}
				for _, bb := range [][]float32{nil, bias} {
					for _, acc := range []bool{false, true} {
						init := randSlice(r, (nout-1)*(ssx+ssy+ssz)+nc)
						x := append([]float32(nil), init...)
						y := append([]float32(nil), init...)
						b := w4Zeros[:]
						if bb != nil {
							b = bb
						}
						w4ReduceAsm(k, x, ssx, ssy, ssz, m, ds, n8, b, acc, tmp)
						w4ReduceGo(w4Lines[k], nout, y, ssx, ssy, ssz, m, ds, n8, bb, acc)
						same(t, gen+" reduce "+[...]string{"Out", "KernAdj"}[k-w4Out], nc, x, y)
					}
				}
			}
		}
	})
}

// corr3 is the valid 3-D correlation of an (m+2)³ tile d (nc channels, x
// fastest, channels last) with 3³ kernels w[k·nc·co + c·co + o], in float64:
// out[((z·m+y)·m+x)·co + o].
func corr3(m, nc, co int, d, w []float32) []float64 {
	n := m + 2
	out := make([]float64, m*m*m*co)
	for z := 0; z < m; z++ {
		for y := 0; y < m; y++ {
			for x := 0; x < m; x++ {
				for o := 0; o < co; o++ {
					var s float64
					for k := 0; k < 27; k++ {
						kz, ky, kx := k/9, k/3%3, k%3
						for c := 0; c < nc; c++ {
							s += float64(d[(((z+kz)*n+y+ky)*n+x+kx)*nc+c]) * float64(w[(k*nc+c)*co+o])
						}
					}
					out[((z*m+y)*m+x)*co+o] = s
				}
			}
		}
	}
	return out
}

// relErr is the largest |got − want| relative to want's largest magnitude.
func relErr(got []float32, want []float64) float64 {
	var scale, maxErr float64
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		maxErr = math.Max(maxErr, math.Abs(float64(got[i])-want[i]))
	}
	return maxErr / scale
}

// wino4Tile computes one F(4,3) output tile through the public entry points:
// V = In(d), U = Kernel(w), M[ξ] = V[ξ]·U[ξ] (float64 sums, rounded), Y =
// Out(M).
func wino4Tile(nc, co int, d, w []float32) []float32 {
	tmp := make([]float32, Wino4Tmp)
	v := make([]float32, 216*nc)
	Wino4In(v, nc, d, nc, 6*nc, 36*nc, nc, tmp)
	p := nc * co
	u := make([]float32, 216*p)
	Wino4Kernel(u, p, w, p, p, tmp)
	mm := make([]float32, 216*co)
	for xi := 0; xi < 216; xi++ {
		for o := 0; o < co; o++ {
			var s float64
			for c := 0; c < nc; c++ {
				s += float64(v[xi*nc+c]) * float64(u[xi*p+c*co+o])
			}
			mm[xi*co+o] = float32(s)
		}
	}
	y := make([]float32, 64*co)
	Wino4Out(y, co, 4*co, 16*co, mm, co, co, nil, false, tmp)
	return y
}

// TestWino4TileIsCorrelation checks the transforms against their
// definition: one tile's Winograd product is the 4×4×4 valid correlation,
// within float32 rounding of the transforms; with 11 channels (8 in
// assembly where it runs, 3 in Go) and, for the dot-product identities,
// the output-gradient and kernel-adjoint transforms: Σ Out(M)·g = Σ M·Grad(g)
// and Σ Kernel(w)·du = Σ w·KernelAdjoint(du).
func TestWino4TileIsCorrelation(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const nc, co = 11, 9
	d := randSlice(r, 216*nc)
	w := randSlice(r, 27*nc*co)
	if e := relErr(wino4Tile(nc, co, d, w), corr3(4, nc, co, d, w)); e > 1e-5 {
		t.Fatalf("F(4,3) tile: largest error %.3g of the largest value", e)
	}
	tmp := make([]float32, Wino4Tmp)
	// Σ Out(M)·g = Σ M·Grad(g): the output-gradient transform is the output
	// transform's adjoint
	m := randSlice(r, 216*nc)
	g := randSlice(r, 64*nc)
	y := make([]float32, 64*nc)
	Wino4Out(y, nc, 4*nc, 16*nc, m, nc, nc, nil, false, tmp)
	q := make([]float32, 216*nc)
	Wino4Grad(q, nc, g, nc, 4*nc, 16*nc, nc, tmp)
	dot := func(a, b []float32) (s, abs float64) {
		for i := range a {
			s += float64(a[i]) * float64(b[i])
			abs += math.Abs(float64(a[i]) * float64(b[i]))
		}
		return
	}
	l, la := dot(y, g)
	rr, _ := dot(m, q)
	if math.Abs(l-rr) > 1e-5*la {
		t.Fatalf("Σ Out(M)·g = %v, Σ M·Grad(g) = %v", l, rr)
	}
	// Σ Kernel(w)·du = Σ w·KernelAdjoint(du), on 13 kernels, with the
	// kernel gradients' and the points' strides different (16 and 19)
	const np, ws, us = 13, 16, 19
	wk := randSlice(r, 27*np)
	du := make([]float32, 216*us)
	for xi := 0; xi < 216; xi++ {
		copy(du[xi*us:], randSlice(r, np))
	}
	u := make([]float32, 216*us)
	Wino4Kernel(u, us, wk, np, np, tmp)
	gw := make([]float32, 27*ws)
	Wino4KernelAdjoint(gw, ws, du, us, np, tmp)
	l, la = dot(u, du)
	gwp := make([]float32, 27*np)
	for k := 0; k < 27; k++ {
		copy(gwp[k*np:(k+1)*np], gw[k*ws:])
		for p := np; p < ws && k*ws+p < len(gw); p++ {
			if gw[k*ws+p] != 0 {
				t.Fatalf("KernelAdjoint wrote past its %d kernels: gw[%d] = %v", np, k*ws+p, gw[k*ws+p])
			}
		}
	}
	rr, _ = dot(wk, gwp)
	if math.Abs(l-rr) > 1e-5*la {
		t.Fatalf("Σ Kernel(w)·du = %v, Σ w·KernelAdjoint(du) = %v", l, rr)
	}
	// KernelAdjoint adds to what gw holds
	gw2 := append([]float32(nil), gw...)
	Wino4KernelAdjoint(gw2, ws, du, us, np, tmp)
	for i := range gw {
		if gw2[i] != gw[i]+gw[i] {
			t.Fatalf("KernelAdjoint does not accumulate: %v then %v", gw[i], gw2[i])
		}
	}
}

// TestWino4Accuracy measures the F(4,3) float32 error on 32-channel tiles
// with kernels scaled as a trained network's (He-like, 1/sqrt(27·C)),
// against the F(2,3) transforms' on the same correlation, and holds it to
// the bound the autodiff package documents: at most 1e-5 of the output's
// largest magnitude.
func TestWino4Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	const nc, co = 32, 4
	var worst float64
	for trial := 0; trial < 8; trial++ {
		d := randSlice(r, 216*nc)
		w := randSlice(r, 27*nc*co)
		for i := range w {
			w[i] *= float32(1 / math.Sqrt(27*nc))
		}
		worst = math.Max(worst, relErr(wino4Tile(nc, co, d, w), corr3(4, nc, co, d, w)))
	}
	t.Logf("F(4,3) float32: largest error %.2g of the output's largest magnitude", worst)
	if worst > 1e-5 {
		t.Fatalf("F(4,3) relative error %.3g > 1e-5", worst)
	}
}

// TestWino4InBF16 holds Wino4InBF16 (its assembly on whole 8-channel
// groups where the CPU has AVX-512VL, its Go remainder) to the float32
// transform rounded by bf16Pair, bit for bit, on odd strides, channel
// counts with and without a remainder, random values, values that hit
// every rounding case, and tiles whose only non-zero voxel (4,4,4) passes
// its bit patterns (ties, subnormals, NaN) through to 125 of the points
// unchanged; the pairs past nc/2 stay untouched.
func TestWino4InBF16(t *testing.T) {
	if !winoInBF16Asm {
		t.Log("no AVX-512VL: the Go version alone")
	}
	w4GensAny(t, func(t *testing.T, gen string) {
		r := rand.New(rand.NewPCG(3, 5))
		tmp := make([]float32, Wino4Tmp)
		for _, nc := range []int{2, 8, 10, 16, 24, 38, 64} {
			for special := 0; special < 3; special++ {
				sx, sy, sz := nc+3, 7*nc+5, 41*nc+1
				ds := nc/2 + 5
				n := 5*(sx+sy+sz) + nc
				var src []float32
				switch special {
				case 0:
					src = randSlice(r, n)
				case 1:
					src = specialValues(r, n)
				case 2:
					src = make([]float32, n)
					copy(src[4*(sx+sy+sz):], specialsOnly(r, nc))
				}
				f := make([]float32, 215*(2*ds)+nc)
				w4ExpandGo(w4LineBT, 6, f, 2*ds, src, sx, sy, sz, nc)
				got := make([]uint32, 215*ds+nc/2)
				for i := range got {
					got[i] = 0xDEADBEEF
				}
				Wino4InBF16(got, ds, src, sx, sy, sz, nc, tmp)
				goOnly := make([]uint32, len(got))
				w4InBF16Go(goOnly, ds, src, sx, sy, sz, 0, nc, tmp)
				for xi := 0; xi < 216; xi++ {
					for q := 0; q < nc/2; q++ {
						want := bf16Pair(f[xi*2*ds+2*q], f[xi*2*ds+2*q+1])
						if got[xi*ds+q] != want || goOnly[xi*ds+q] != want {
							t.Fatalf("%s nc=%d case %d: point %d pair %d = %#08x (Go %#08x), want %#08x", gen, nc, special, xi, q,
								got[xi*ds+q], goOnly[xi*ds+q], want)
						}
					}
					if xi < 215 {
						for q := nc / 2; q < ds; q++ {
							if got[xi*ds+q] != 0xDEADBEEF {
								t.Fatalf("nc=%d: point %d pair %d written past the channels", nc, xi, q)
							}
						}
					}
				}
			}
		}
	})
}

// w4GensAny is w4Gens that also runs (once, Go only) without assembly.
func w4GensAny(t *testing.T, f func(t *testing.T, gen string)) {
	if !wino4Asm {
		f(t, "go")
		return
	}
	w4Gens(t, f)
}

// TestWino4InRows holds the line-table input transforms (float32 and
// bfloat16 pairs; assembly on whole 8-channel groups, Go on the rest) to
// gathering the tile with zeros for the padding lines and calling Wino4In
// and Wino4InBF16, bit for bit, on random tables with padding lines,
// channel counts with and without a remainder, both generations, the
// whole line and x windows (the masked kernels where AVX-512 runs) as
// tiles at a face and in a volume narrower than the tile have them.
func TestWino4InRows(t *testing.T) {
	w4GensAny(t, func(t *testing.T, gen string) {
		r := rand.New(rand.NewPCG(6, 1))
		tmp := make([]float32, Wino4Tmp)
		for _, win := range [][2]int{{0, 6}, {1, 6}, {0, 5}, {0, 4}, {1, 5}, {2, 6}, {0, 1}} {
			lo, hi := win[0], win[1]
			for _, nc := range []int{2, 8, 10, 16, 24, 38, 64} {
				sx := nc + 3
				lineLen := 5*sx + nc
				src := randSlice(r, 40*lineLen)
				zeros := make([]float32, lineLen)
				var off [36]int
				stage := make([]float32, 216*nc)
				for l := range off {
					off[l] = -1
					if r.IntN(3) > 0 {
						off[l] = r.IntN(39) * lineLen
					}
					for x := lo; x < hi; x++ {
						if off[l] >= 0 {
							copy(stage[(l*6+x)*nc:(l*6+x+1)*nc], src[off[l]+(x-lo)*sx:])
						}
					}
				}
				name := fmt.Sprintf("%s [%d,%d) nc=%d", gen, lo, hi, nc)
				ds := nc + 5
				want := make([]float32, 216*ds)
				Wino4In(want, ds, stage, nc, 6*nc, 36*nc, nc, tmp)
				got := make([]float32, 216*ds)
				Wino4InRowsX(got, ds, src, &off, zeros, sx, lo, hi, nc, tmp)
				same(t, name+" Wino4InRowsX", nc, got, want)
				if lo == 0 && hi == 6 {
					clear(got)
					Wino4InRows(got, ds, src, &off, zeros, sx, nc, tmp)
					same(t, name+" Wino4InRows", nc, got, want)
				}
				if nc%2 == 0 {
					pd := nc/2 + 3
					wp := make([]uint32, 216*pd)
					gp := make([]uint32, 216*pd)
					Wino4InBF16(wp, pd, stage, nc, 6*nc, 36*nc, nc, tmp)
					Wino4InRowsXBF16(gp, pd, src, &off, zeros, sx, lo, hi, nc, tmp)
					for i := range wp {
						if wp[i] != gp[i] {
							t.Fatalf("%s Wino4InRowsXBF16: pair %d = %#08x, want %#08x", name, i, gp[i], wp[i])
						}
					}
				}
			}
		}
	})
}

// TestWino4InRowsWindowChecked: a window outside the line is a
// programmer error, reported by name.
func TestWino4InRowsWindowChecked(t *testing.T) {
	tmp := make([]float32, Wino4Tmp)
	src := make([]float32, 64)
	var off [36]int
	for l := range off {
		off[l] = -1
	}
	for _, win := range [][2]int{{-1, 6}, {0, 7}, {3, 3}, {4, 2}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "window") {
					t.Errorf("window %v: recovered %v, want a window error", win, r)
				}
			}()
			Wino4InRowsX(make([]float32, 216*8), 8, src, &off, make([]float32, 64), 8, win[0], win[1], 8, tmp)
		}()
	}
}

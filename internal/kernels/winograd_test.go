package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestWinoTransformsAsmMatchGo checks the assembly transforms against the
// portable ones bit for bit, on odd strides and channel counts (the tail
// channels past a multiple of 8 always run in Go).
func TestWinoTransformsAsmMatchGo(t *testing.T) {
	if !winoAsm {
		t.Skip("no assembly transforms on this CPU/build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	tmp := make([]float32, WinoInTmp)
	for _, nc := range []int{8, 16, 24, 40, 64} {
		sx, sy, sz := nc+3, 5*nc+7, 23*nc+1
		ds := nc + 5
		src := randSlice(r, 3*(sx+sy+sz)+nc)
		// input transform
		a, b := make([]float32, 63*ds+nc), make([]float32, 63*ds+nc)
		winoInAsm(a, ds, src, sx, sy, sz, nc, tmp)
		winoInGo(b, ds, src, sx, sy, sz, nc)
		same(t, "WinoIn", nc, a, b)
		// gradient transform
		winoGradAsm(a, ds, src, sx, sy, sz, nc, tmp)
		winoGradGo(b, ds, src, sx, sy, sz, nc)
		same(t, "WinoGrad", nc, a, b)
		// output transform, with and without bias, set and accumulate
		m := randSlice(r, 63*ds+nc)
		bias := randSlice(r, nc)
		for _, bb := range [][]float32{nil, bias} {
			for _, acc := range []bool{false, true} {
				init := randSlice(r, sx+sy+sz+nc)
				x := append([]float32(nil), init...)
				y := append([]float32(nil), init...)
				winoOutAsm(x, sx, sy, sz, m, ds, nc, bb, acc, tmp)
				winoOutGo(y, sx, sy, sz, m, ds, nc, bb, acc)
				same(t, "WinoOut", nc, x, y)
			}
		}
	}
}

func same(t *testing.T, op string, nc int, a, b []float32) {
	t.Helper()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s nc=%d: element %d asm %v, Go %v", op, nc, i, a[i], b[i])
		}
	}
}

// TestWinoOneTileIsCorrelation checks the three transforms against their
// definition on one tile: the output transform of (G⊗G⊗G w) ⊙ (Bᵀ⊗Bᵀ⊗Bᵀ d)
// is the 2×2×2 valid correlation of d with w, and the gradient identity
// Σ_ξ (A⊗A⊗A g)[ξ]·(Bᵀ⊗Bᵀ⊗Bᵀ d)[ξ]·U[ξ] = Σ_o g[o]·y[o] holds for any U.
// Runs through the public entry points with 11 channels (8 in assembly
// where available, 3 in Go).
func TestWinoOneTileIsCorrelation(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const nc = 11
	d := randSlice(r, 64*nc) // [z][y][x][c]
	w := randSlice(r, 27)    // one kernel shared by the channels
	tmp := make([]float32, WinoInTmp)
	v := make([]float32, 64*nc)
	WinoIn(v, nc, d, nc, 4*nc, 16*nc, nc, tmp)
	// U = G⊗G⊗G w in float64
	G := [4][3]float64{{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}}
	var U [64]float64
	for a := 0; a < 4; a++ {
		for b := 0; b < 4; b++ {
			for c := 0; c < 4; c++ {
				s := 0.0
				for kz := 0; kz < 3; kz++ {
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							s += G[a][kz] * G[b][ky] * G[c][kx] * float64(w[(kz*3+ky)*3+kx])
						}
					}
				}
				U[(a*4+b)*4+c] = s
			}
		}
	}
	m := make([]float32, 64*nc)
	for xi := 0; xi < 64; xi++ {
		for c := 0; c < nc; c++ {
			m[xi*nc+c] = float32(U[xi]) * v[xi*nc+c]
		}
	}
	y := make([]float32, 8*nc)
	WinoOut(y, nc, 2*nc, 4*nc, m, nc, nc, nil, false, tmp)
	for c := 0; c < nc; c++ {
		for oz := 0; oz < 2; oz++ {
			for oy := 0; oy < 2; oy++ {
				for ox := 0; ox < 2; ox++ {
					want := 0.0
					for kz := 0; kz < 3; kz++ {
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								want += float64(w[(kz*3+ky)*3+kx]) * float64(d[(((oz+kz)*4+oy+ky)*4+ox+kx)*nc+c])
							}
						}
					}
					got := float64(y[((oz*2+oy)*2+ox)*nc+c])
					if math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
						t.Fatalf("channel %d output (%d,%d,%d): Winograd %v, direct %v", c, oz, oy, ox, got, want)
					}
				}
			}
		}
	}
	// gradient identity: <g, Aᵀ(U⊙V)> = <A g, U⊙V>
	g := randSlice(r, 8*nc)
	q := make([]float32, 64*nc)
	WinoGrad(q, nc, g, nc, 2*nc, 4*nc, nc, tmp)
	for c := 0; c < nc; c++ {
		lhs, rhs := 0.0, 0.0
		for o := 0; o < 8; o++ {
			lhs += float64(g[o*nc+c]) * float64(y[o*nc+c])
		}
		for xi := 0; xi < 64; xi++ {
			rhs += float64(q[xi*nc+c]) * float64(m[xi*nc+c])
		}
		if math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Fatalf("channel %d: <g, y> = %v but <A g, m> = %v", c, lhs, rhs)
		}
	}
}

// TestSgemmPackedMatchesRef checks the packed-B GEMM against the reference
// on odd shapes: narrow and wide n, several k blocks, partial panels, beta
// 0 (C not read: NaNs in C must not leak) and beta 1.
func TestSgemmPackedMatchesRef(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {13, 8, 9}, {50, 16, 33}, {97, 32, 300}, {12, 40, 513}, {200, 24, 64}, {5, 100, 17}} {
		m, n, k := sz[0], sz[1], sz[2]
		lda, ldb, ldc := k+3, n+1, n+5
		a := randSlice(r, (m-1)*lda+k)
		b := randSlice(r, (k-1)*ldb+n)
		pb := PackB(make([]float32, PackBSize(k, n)), b, ldb, k, n)
		for _, beta := range []float32{0, 1} {
			c0 := randSlice(r, (m-1)*ldc+n)
			c1 := append([]float32(nil), c0...)
			if beta == 0 {
				for i := range c1 {
					c1[i] = float32(math.NaN())
				}
			}
			sgemmRef(false, false, m, n, k, 1.5, a, lda, b, ldb, beta, c0, ldc)
			SgemmPacked(m, 1.5, a, lda, pb, beta, c1, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					x, y := c1[i*ldc+j], c0[i*ldc+j]
					if math.Abs(float64(x-y)) > 1e-4*(1+math.Abs(float64(y))) || x != x {
						t.Fatalf("m=%d n=%d k=%d beta=%v: C[%d][%d] = %v, reference %v", m, n, k, beta, i, j, x, y)
					}
				}
			}
		}
	}
}

// TestWinoKernelTransforms checks the kernel transform and its adjoint:
// assembly against Go bit for bit, G⊗G⊗G against its definition in
// float64, and <G w, u> = <w, Gᵀ u>.
func TestWinoKernelTransforms(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	tmp := make([]float32, 1024)
	G := [4][3]float64{{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}}
	for _, np := range []int{1, 8, 19, 32} {
		ss, ds := np+2, np+5
		w := randSlice(r, 26*ss+np)
		u := make([]float32, 63*ds+np)
		WinoKernel(u, ds, w, ss, np, tmp)
		if winoAsm && np >= 8 {
			n8 := np &^ 7
			u2 := make([]float32, len(u))
			winoKernGo(u2, ds, w, ss, n8)
			for xi := 0; xi < 64; xi++ {
				same(t, "WinoKernel", np, u[xi*ds:xi*ds+n8], u2[xi*ds:xi*ds+n8])
			}
		}
		for p := 0; p < np; p++ {
			for xi := 0; xi < 64; xi++ {
				a, b, c := xi/16, xi/4%4, xi%4
				want := 0.0
				for k := 0; k < 27; k++ {
					want += G[a][k/9] * G[b][k/3%3] * G[c][k%3] * float64(w[k*ss+p])
				}
				if got := float64(u[xi*ds+p]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("np=%d kernel %d point %d: %v, want %v", np, p, xi, got, want)
				}
			}
		}
		du := randSlice(r, 63*ds+np)
		init := randSlice(r, 26*ss+np)
		gw := append([]float32(nil), init...)
		WinoKernelAdjoint(gw, ss, du, ds, np, tmp)
		if winoAsm && np >= 8 {
			n8 := np &^ 7
			gw2 := append([]float32(nil), init...)
			winoKernAdjGo(gw2, ss, du, ds, n8)
			for k := 0; k < 27; k++ {
				same(t, "WinoKernelAdjoint", np, gw[k*ss:k*ss+n8], gw2[k*ss:k*ss+n8])
			}
		}
		for p := 0; p < np; p++ {
			lhs, rhs := 0.0, 0.0
			for xi := 0; xi < 64; xi++ {
				lhs += float64(u[xi*ds+p]) * float64(du[xi*ds+p])
			}
			for k := 0; k < 27; k++ {
				rhs += float64(w[k*ss+p]) * float64(gw[k*ss+p]-init[k*ss+p])
			}
			if math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
				t.Fatalf("np=%d kernel %d: <G w, u> = %v, <w, Gᵀ u> = %v", np, p, lhs, rhs)
			}
		}
	}
}

// TestSgemmTransAPartialPanelInPlace covers the in-place read of a
// transposed A's last, partial panel (m below the kernel's rows; the
// Winograd weight gradient's shape), both where the floats past the panel
// lie inside A's slice (read in place) and where they do not (packed).
func TestSgemmTransAPartialPanelInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, sz := range [][4]int{{8, 8, 100, 8}, {8, 8, 100, 24}, {5, 16, 60, 5}, {5, 16, 60, 40}, {16, 8, 33, 16}, {3, 3, 7, 3}} {
		m, n, k, lda := sz[0], sz[1], sz[2], sz[3]
		for _, extra := range []int{0, 64} {
			a := randSlice(r, (k-1)*lda+m+extra)
			b := randSlice(r, k*n)
			c0 := randSlice(r, m*n)
			c1 := append([]float32(nil), c0...)
			sgemmRef(true, false, m, n, k, 1, a, lda, b, n, 1, c0, n)
			Sgemm(true, false, m, n, k, 1, a, lda, b, n, 1, c1, n)
			for i := range c0 {
				if math.Abs(float64(c0[i]-c1[i])) > 1e-4*(1+math.Abs(float64(c0[i]))) {
					t.Fatalf("m=%d n=%d k=%d lda=%d extra=%d: C[%d] = %v, reference %v", m, n, k, lda, extra, i, c1[i], c0[i])
				}
			}
		}
	}
}

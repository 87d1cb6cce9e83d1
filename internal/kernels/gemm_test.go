package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// fillMat returns a rows×cols matrix with leading dimension ld, values in
// [-1, 1), and the gaps between rows (columns cols..ld-1) set to NaN so that a
// kernel reading outside the matrix shows up in its result.
func fillMat(r *rand.Rand, rows, cols, ld int) []float32 {
	if rows == 0 {
		return nil
	}
	x := make([]float32, (rows-1)*ld+cols)
	for i := range x {
		if i%ld < cols {
			x[i] = 2*r.Float32() - 1
		} else {
			x[i] = float32(math.NaN())
		}
	}
	return x
}

// gemmCase is one Sgemm call's shape.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	alpha, beta    float32
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.lda, tc.ldb, tc.ldc, tc.alpha, tc.beta)
}

// operands builds A, B and C for tc. C's row gaps hold a sentinel that must
// survive; when beta == 0 C is NaN-filled (it must not be read).
func (tc gemmCase) operands(r *rand.Rand) (a, b, c []float32) {
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	a = fillMat(r, ar, ac, tc.lda)
	b = fillMat(r, br, bc, tc.ldb)
	c = fillMat(r, tc.m, tc.n, tc.ldc)
	for i := range c {
		if i%tc.ldc >= tc.n {
			c[i] = 12345
		} else if tc.beta == 0 {
			c[i] = float32(math.NaN())
		}
	}
	return a, b, c
}

// refResult is a case's operands with sgemmRef's answer and a per-element
// tolerance 2·(k+2)·ε·(|alpha|·Σ|a||b| + |beta·c|), the forward error bound of
// a k-term float32 dot product.
type refResult struct {
	tc        gemmCase
	a, b, c   []float32
	want, tol []float32
}

func newRefResult(tc gemmCase, r *rand.Rand) *refResult {
	a, b, c := tc.operands(r)
	want := append([]float32(nil), c...)
	sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, want, tc.ldc)
	tol := make([]float32, len(c))
	const eps = 1.0 / (1 << 23)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			var s float64
			for p := 0; p < tc.k; p++ {
				var av, bv float32
				if tc.transA {
					av = a[p*tc.lda+i]
				} else {
					av = a[i*tc.lda+p]
				}
				if tc.transB {
					bv = b[j*tc.ldb+p]
				} else {
					bv = b[p*tc.ldb+j]
				}
				s += math.Abs(float64(av) * float64(bv))
			}
			bound := math.Abs(float64(tc.alpha)) * s
			if tc.beta != 0 {
				bound += math.Abs(float64(tc.beta) * float64(c[i*tc.ldc+j]))
			}
			tol[i*tc.ldc+j] = float32(2*float64(tc.k+2)*eps*bound + 1e-30)
		}
	}
	return &refResult{tc: tc, a: a, b: b, c: c, want: want, tol: tol}
}

// check runs run(a, b, c) on a copy of C and compares with sgemmRef's answer;
// the gaps between C's rows must be untouched.
func (rr *refResult) check(t *testing.T, name string, run func(a, b, c []float32)) {
	t.Helper()
	tc := rr.tc
	got := append([]float32(nil), rr.c...)
	run(rr.a, rr.b, got)
	for idx := range got {
		i, j := idx/tc.ldc, idx%tc.ldc
		if j >= tc.n {
			if got[idx] != 12345 {
				t.Fatalf("%s %v: wrote C[%d][%d] outside the matrix", name, tc, i, j)
			}
			continue
		}
		if d := math.Abs(float64(got[idx]) - float64(rr.want[idx])); !(d <= float64(rr.tol[idx])) {
			t.Fatalf("%s %v: C[%d][%d] = %g, want %g (|diff| %g > tol %g)", name, tc, i, j, got[idx], rr.want[idx], d, rr.tol[idx])
		}
	}
}

// checkAgainstRef checks one run of tc against sgemmRef.
func checkAgainstRef(t *testing.T, tc gemmCase, r *rand.Rand, name string, run func(a, b, c []float32)) {
	t.Helper()
	newRefResult(tc, r).check(t, name, run)
}

func allKernels() []*microKernel {
	return append([]*microKernel{goWide, goNarrow, goWider}, asmKernels()...)
}

// TestMicroKernels checks each micro-kernel on its own against a direct sum,
// with packed and in-place A, both beta branches, and a padded ldc.
func TestMicroKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kern := range allKernels() {
		mr, nr := kern.mr, kern.nr
		for _, k := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 17, 64, 255} {
			for _, beta := range []float32{0, 1, -0.5} {
				for mode := 0; mode < 3; mode++ {
					// mode 0: packed A; 1: row-major A (lda = k+3); 2: A^T (lda = mr+5).
					var a []float32
					var rs, cs uintptr
					ai := func(i, p int) float32 { return 0 }
					switch mode {
					case 0:
						a = fillMat(r, k+1, mr, mr)
						rs, cs = 4, uintptr(mr)*4
						ai = func(i, p int) float32 { return a[p*mr+i] }
					case 1:
						lda := k + 3
						a = fillMat(r, mr, k+1, lda)
						rs, cs = uintptr(lda)*4, 4
						ai = func(i, p int) float32 { return a[i*lda+p] }
					case 2:
						lda := mr + 5
						a = fillMat(r, k+1, mr, lda)
						rs, cs = 4, uintptr(lda)*4
						ai = func(i, p int) float32 { return a[p*lda+i] }
					}
					b := fillMat(r, k+1, nr, nr)
					ldc := nr + 3
					c := fillMat(r, mr, nr, ldc)
					if beta == 0 {
						for i := range c {
							c[i] = float32(math.NaN())
						}
					}
					c0 := append([]float32(nil), c...)
					alpha := float32(0.75)
					kern.fn(k, unsafe.Pointer(&a[0]), rs, cs, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), uintptr(ldc)*4, 64, 8, alpha, beta, 1, 0, 0)
					for i := 0; i < mr; i++ {
						for j := 0; j < ldc && i*ldc+j < len(c); j++ {
							got := c[i*ldc+j]
							if j >= nr {
								if math.Float32bits(got) != math.Float32bits(c0[i*ldc+j]) {
									t.Fatalf("%s k=%d: wrote outside the tile at (%d,%d)", kern.name, k, i, j)
								}
								continue
							}
							var s, sa float64
							for p := 0; p < k; p++ {
								s += float64(ai(i, p)) * float64(b[p*nr+j])
								sa += math.Abs(float64(ai(i, p)) * float64(b[p*nr+j]))
							}
							want := float64(alpha) * s
							bound := float64(alpha) * sa
							if beta != 0 {
								want += float64(beta) * float64(c0[i*ldc+j])
								bound += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
							}
							tol := 2*float64(k+2)/(1<<23)*bound + 1e-30
							if d := math.Abs(float64(got) - want); !(d <= tol) {
								t.Fatalf("%s k=%d beta=%g mode=%d: C[%d][%d] = %g, want %g", kern.name, k, beta, mode, i, j, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// kernelPairs lists every micro-kernel set the blocked driver can run here.
// Each set runs with and without its dot kernel, so that the narrow
// micro-kernel also meets row-major A.
func kernelPairs() []kernelPair {
	ps := []kernelPair{{wide: goWide, narrow: goNarrow, dot: goDot, name: "go"},
		{wide: goWide, narrow: goNarrow, wider: goWider, name: "go-wider-nodot"}}
	if kernelSet.name != "go" {
		nodot := kernelSet
		nodot.dot, nodot.name = nil, kernelSet.name+"-nodot"
		ps = append(ps, kernelSet, nodot)
	}
	return ps
}

// TestDotKernels checks each dot kernel on its own: every k mod 8, both beta
// branches, padded strides, and A rows ending exactly at the slice's end (a
// read past p = k would fault or show up as NaN).
func TestDotKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, kern := range append([]*dotKernel{goDot}, asmDotKernels()...) {
		for _, k := range []int{0, 1, 3, 7, 8, 9, 15, 16, 27, 100} {
			for _, beta := range []float32{0, 0.5} {
				kpad := (k + 7) &^ 7
				lda := k + 5
				a := make([]float32, lda+k) // row 1 ends at the slice's end
				for i := range a {
					a[i] = 2*r.Float32() - 1
					if i%lda >= k {
						a[i] = float32(math.NaN())
					}
				}
				ldbt := kpad + 8
				bt := make([]float32, 4*ldbt+8)
				for j := 0; j < 4; j++ {
					for p := 0; p < k; p++ {
						bt[j*ldbt+p] = 2*r.Float32() - 1
					}
				}
				ldc := 6
				c := fillMat(r, 2, 4, ldc)
				if beta == 0 {
					for i := range c {
						if i%ldc < 4 {
							c[i] = float32(math.NaN())
						}
					}
				}
				c0 := append([]float32(nil), c...)
				alpha := float32(-1.25)
				ap := unsafe.Pointer(nil)
				if len(a) > 0 {
					ap = unsafe.Pointer(&a[0])
				}
				kern.fn(k, ap, uintptr(lda)*4, unsafe.Pointer(&bt[0]), uintptr(ldbt)*4, unsafe.Pointer(&c[0]), uintptr(ldc)*4, alpha, beta, tailMask(k))
				for i := 0; i < 2; i++ {
					for j := 0; j < ldc && i*ldc+j < len(c); j++ {
						got := c[i*ldc+j]
						if j >= 4 {
							if math.Float32bits(got) != math.Float32bits(c0[i*ldc+j]) {
								t.Fatalf("%s k=%d: wrote outside the tile at (%d,%d)", kern.name, k, i, j)
							}
							continue
						}
						var s, sa float64
						for p := 0; p < k; p++ {
							s += float64(a[i*lda+p]) * float64(bt[j*ldbt+p])
							sa += math.Abs(float64(a[i*lda+p]) * float64(bt[j*ldbt+p]))
						}
						want := float64(alpha) * s
						bound := math.Abs(float64(alpha)) * sa
						if beta != 0 {
							want += float64(beta) * float64(c0[i*ldc+j])
							bound += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
						}
						tol := 2*float64(k+2)/(1<<23)*bound + 1e-30
						if d := math.Abs(float64(got) - want); !(d <= tol) {
							t.Fatalf("%s k=%d beta=%g: C[%d][%d] = %g, want %g", kern.name, k, beta, i, j, got, want)
						}
					}
				}
			}
		}
	}
}

// TestSgemmOddSizes runs the blocked driver on every kernel set, thread count
// and transpose combination, for sizes 1..37 and sizes that straddle the
// tile and cache-block edges, with padded leading dimensions, against sgemmRef.
func TestSgemmOddSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sizes := []int{1, 2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 19, 23, 24, 25, 29, 31, 32, 33, 37}
	var cases []gemmCase
	for trial := 0; trial < 120; trial++ {
		tc := gemmCase{
			transA: trial&1 != 0, transB: trial&2 != 0,
			m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
			alpha: []float32{1, -1.5, 0.25}[trial%3], beta: []float32{0, 1, 0.5, -2}[(trial/3)%4],
		}
		cases = append(cases, tc)
	}
	// Block edges: k across kc (256/512), m across mc, n across nr and panels;
	// narrow n with k >= dotMinK for the dot path.
	for _, s := range [][3]int{{253, 9, 257}, {300, 33, 513}, {37, 8, 600}, {511, 16, 300}, {13, 70, 1030}, {6, 4, 1},
		{101, 4, 67}, {64, 2, 129}, {7, 3, 64}, {33, 1, 100}, {33, 7, 100}} {
		for tr := 0; tr < 4; tr++ {
			cases = append(cases, gemmCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2], alpha: 1, beta: []float32{0, 1}[tr%2]})
		}
	}
	for i := range cases {
		tc := &cases[i]
		pad := func(w int) int { return w + r.IntN(3)*r.IntN(4) }
		if tc.transA {
			tc.lda = pad(tc.m)
		} else {
			tc.lda = pad(tc.k)
		}
		if tc.transB {
			tc.ldb = pad(tc.k)
		} else {
			tc.ldb = pad(tc.n)
		}
		tc.ldc = pad(tc.n)
	}
	refs := make([]*refResult, len(cases))
	for i, tc := range cases {
		refs[i] = newRefResult(tc, r)
	}
	defer func(nc, d int, dt bool, ks int) {
		ncMax, directAPanels, directTransA, kSlice = nc, d, dt, ks
	}(ncMax, directAPanels, directTransA, kSlice)
	for _, kp := range kernelPairs() {
		for _, threads := range []int{1, 2} {
			for _, cfg := range []struct {
				nc, direct int
				directT    bool
				kSlice     int
			}{{4096, 2, false, 1 << 30}, {4096, 0, false, 1 << 30}, {32, 1 << 20, true, 1 << 30}, {4096, 2, true, 9}} {
				ncMax, directAPanels, directTransA, kSlice = cfg.nc, cfg.direct, cfg.directT, cfg.kSlice
				for _, rr := range refs {
					tc := rr.tc
					name := fmt.Sprintf("%s/threads=%d/nc=%d/direct=%d,%v/kslice=%d", kp.name, threads, cfg.nc, cfg.direct, cfg.directT, cfg.kSlice)
					rr.check(t, name, func(a, b, c []float32) {
						sgemmBlocked(kp, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, c, tc.ldc)
					})
				}
			}
		}
	}
}

// TestSgemmPublic checks the exported entry point (whatever kernel the CPU
// selected) including the k == 0 and alpha == 0 shortcuts.
func TestSgemmPublic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []gemmCase{
		{m: 65, n: 8, k: 27, lda: 27, ldb: 8, ldc: 8, alpha: 1, beta: 0},
		{transA: true, m: 27, n: 16, k: 301, lda: 27, ldb: 16, ldc: 16, alpha: 1, beta: 1},
		{transB: true, m: 77, n: 27, k: 16, lda: 16, ldb: 16, ldc: 27, alpha: 1, beta: 0},
		{transA: true, m: 40, n: 16, k: 600, lda: 40, ldb: 16, ldc: 16, alpha: 1, beta: 0}, // B used in place
		{transA: true, m: 30, n: 8, k: 777, lda: 33, ldb: 8, ldc: 9, alpha: 2, beta: 0.5},  // B used in place
		{m: 5, n: 7, k: 0, lda: 1, ldb: 7, ldc: 7, alpha: 1, beta: 0.5},
		{m: 5, n: 7, k: 3, lda: 3, ldb: 7, ldc: 7, alpha: 0, beta: 0},
	} {
		checkAgainstRef(t, tc, r, "Sgemm/"+KernelName(), func(a, b, c []float32) {
			Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, c, tc.ldc)
		})
	}
}

// TestSgemmDeterministic: the same call gives bit-identical results on
// repetition and for 1, 2 and 3 threads.
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []gemmCase{
		{m: 1000, n: 8, k: 216, lda: 216, ldb: 8, ldc: 8, alpha: 1},
		{m: 600, n: 48, k: 700, lda: 700, ldb: 48, ldc: 48, alpha: 1},
		{transA: true, m: 100, n: 16, k: 3000, lda: 100, ldb: 16, ldc: 16, alpha: 1},
		{transB: true, m: 40, n: 300, k: 64, lda: 64, ldb: 64, ldc: 300, alpha: 1},
		{m: 1001, n: 21, k: 300, lda: 300, ldb: 21, ldc: 21, alpha: 0.5, beta: 0.5},
		{transA: true, m: 301, n: 7, k: 700, lda: 301, ldb: 7, ldc: 7, alpha: 1, beta: -1},
		{transA: true, m: 27, n: 8, k: 40000, lda: 27, ldb: 8, ldc: 8, alpha: 1}, // k slices
	} {
		a, b, c := tc.operands(r)
		var first []float32
		for _, threads := range []int{1, 2, 2, 3} {
			got := append([]float32(nil), c...)
			sgemmBlocked(kernelSet, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc)
			if first == nil {
				first = got
				continue
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%v threads=%d: C[%d] = %g differs from the 1-thread %g", tc, threads, i, got[i], first[i])
				}
			}
		}
	}
}

// TestSgemmNoAllocs: once warm, calls do not allocate, on one thread or two,
// on the blocked, dot and k-slice paths. (Buffers live in sync.Pools, which a
// garbage collection may empty, so an occasional refill is allowed: fewer than
// one allocation per call on average.)
func TestSgemmNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, s := range []struct {
		m, n, k int
		transA  bool
	}{{2000, 16, 300, false}, {2000, 64, 300, false}, {27, 8, 40000, true}, {4000, 4, 100, false}} {
		a := make([]float32, s.m*s.k)
		b := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		lda := s.k
		if s.transA {
			lda = s.m
		}
		for _, threads := range []int{1, 2} {
			run := func() {
				sgemmBlocked(kernelSet, threads, s.transA, false, s.m, s.n, s.k, 1, a, lda, b, s.n, 0, c, s.n)
			}
			for range 3 {
				run()
			}
			if n := testing.AllocsPerRun(20, run); n >= 1 {
				t.Errorf("%+v threads=%d: %v allocations per call", s, threads, n)
			}
		}
	}
}

// TestSgemmConcurrentCalls: calls from several goroutines at once (sharing
// the helper goroutines) give the same bits as one at a time.
func TestSgemmConcurrentCalls(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	tcs := []gemmCase{
		{m: 500, n: 16, k: 200, lda: 200, ldb: 16, ldc: 16, alpha: 1},
		{transA: true, m: 27, n: 8, k: 40000, lda: 27, ldb: 8, ldc: 8, alpha: 1},
		{m: 300, n: 3, k: 100, lda: 100, ldb: 3, ldc: 3, alpha: 1},
		{transB: true, m: 200, n: 100, k: 50, lda: 50, ldb: 50, ldc: 100, alpha: 1},
	}
	type run struct {
		tc      gemmCase
		a, b, c []float32
		want    []float32
	}
	var runs []*run
	for _, tc := range tcs {
		a, b, c := tc.operands(r)
		want := append([]float32(nil), c...)
		sgemmBlocked(kernelSet, 2, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, want, tc.ldc)
		runs = append(runs, &run{tc, a, b, c, want})
	}
	errs := make(chan string, 64)
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for rep := 0; rep < 3; rep++ {
				ru := runs[(g+rep)%len(runs)]
				tc := ru.tc
				got := append([]float32(nil), ru.c...)
				sgemmBlocked(kernelSet, 2, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, ru.a, tc.lda, ru.b, tc.ldb, tc.beta, got, tc.ldc)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(ru.want[i]) {
						errs <- fmt.Sprintf("%v: C[%d] differs when run concurrently", tc, i)
						break
					}
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestMicroKernelTiles: one call over several tiles gives the same bits as
// one call per tile, and touches nothing between the tiles' rows.
func TestMicroKernelTiles(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, kern := range allKernels() {
		mr, nr := kern.mr, kern.nr
		for _, k := range []int{1, 9, 70} {
			for _, beta := range []float32{0, 0.5} {
				const tiles = 3
				a := fillMat(r, tiles*k, mr, mr) // tile t's packed panel at t*k*mr
				b := fillMat(r, k, nr, nr)
				ldc := nr + 2
				c := fillMat(r, tiles*(mr+1), ldc, ldc)
				want := append([]float32(nil), c...)
				cStep := (mr + 1) * ldc // leave one untouched row after each tile
				for tt := 0; tt < tiles; tt++ {
					kern.fn(k, unsafe.Pointer(&a[tt*k*mr]), 4, uintptr(mr)*4, unsafe.Pointer(&b[0]),
						unsafe.Pointer(&want[tt*cStep]), uintptr(ldc)*4, 0, 64, 1.5, beta, 1, 0, 0)
				}
				kern.fn(k, unsafe.Pointer(&a[0]), 4, uintptr(mr)*4, unsafe.Pointer(&b[0]),
					unsafe.Pointer(&c[0]), uintptr(ldc)*4, 0, 64, 1.5, beta, tiles, uintptr(k*mr)*4, uintptr(cStep)*4)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s k=%d beta=%g: C[%d] = %g, want %g", kern.name, k, beta, i, c[i], want[i])
					}
				}
			}
		}
	}
}

// TestSgemmOverreadMatchesPacking holds the in-place read of a row-major A's
// partial last panel (directOverread: the rows after it lie inside a) to
// packing that panel, bit for bit, with NaN in the rows past m, on every
// kernel set, 1 and 2 threads, through Sgemm's driver and SgemmPacked.
func TestSgemmOverreadMatchesPacking(t *testing.T) {
	defer func(o bool) { directOverread = o }(directOverread)
	r := rand.New(rand.NewPCG(12, 5))
	for _, kp := range kernelPairs() {
		for _, threads := range []int{1, 2} {
			for _, sz := range [][3]int{{16, 16, 8}, {8, 8, 8}, {13, 16, 32}, {29, 8, 16}, {40, 32, 27}, {7, 24, 64}, {100, 9, 12}} {
				m, n, k := sz[0], sz[1], sz[2]
				lda := k + r.IntN(3)
				a := randSlice(r, (m+24)*lda)
				for i := m * lda; i < len(a); i++ {
					a[i] = float32(math.NaN()) // the rows past m: read, never used
				}
				b := randSlice(r, k*n)
				var got [2][]float32
				for o, on := range []bool{false, true} {
					directOverread = on
					c := make([]float32, m*n)
					sgemmBlocked(kp, threads, false, false, m, n, k, 1, a, lda, b, n, 0, c, n)
					got[o] = c
				}
				for i := range got[0] {
					if math.Float32bits(got[0][i]) != math.Float32bits(got[1][i]) {
						t.Fatalf("%s threads=%d m=%d n=%d k=%d: C[%d] %v in place, %v packed", kp.name, threads, m, n, k, i, got[1][i], got[0][i])
					}
				}
			}
		}
	}
	// SgemmPacked, the Winograd blocks' entry point, on the selected set
	for _, m := range []int{5, 12, 17, 30, 64} {
		k, n := 16, 8
		a := randSlice(r, (m+12)*k)
		for i := m * k; i < len(a); i++ {
			a[i] = float32(math.NaN())
		}
		pb := PackB(make([]float32, PackBSize(k, n)), randSlice(r, k*n), n, k, n)
		var got [2][]float32
		for o, on := range []bool{false, true} {
			directOverread = on
			c := make([]float32, m*n)
			SgemmPacked(m, 1, a, k, pb, 0, c, n)
			got[o] = c
		}
		for i := range got[0] {
			if math.Float32bits(got[0][i]) != math.Float32bits(got[1][i]) {
				t.Fatalf("SgemmPacked m=%d: C[%d] %v in place, %v packed", m, i, got[1][i], got[0][i])
			}
		}
	}
}

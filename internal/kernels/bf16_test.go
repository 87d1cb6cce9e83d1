package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestBF16Round: float32 → bfloat16 rounds to nearest with ties to even, as
// PyTorch does; NaN stays NaN, ±Inf stays ±Inf, overflow goes to ±Inf.
func TestBF16Round(t *testing.T) {
	f := math.Float32frombits
	for _, tc := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3F80},
		{f(0x3F808000), 0x3F80}, // tie, even below: down
		{f(0x3F818000), 0x3F82}, // tie, odd below: up
		{f(0x3F808001), 0x3F81}, // past the tie: up
		{f(0x3F807FFF), 0x3F80}, // short of it: down
		{f(0xBF818000), 0xBF82}, // negative tie: away from zero to even
		{negZero, 0x8000},
		{0, 0},
		{f(0x7F7FFFFF), 0x7F80}, // MaxFloat32 rounds to +Inf
		{f(0xFF7F8000), 0xFF80}, // tie at the top: to −Inf (even)
		{f(0x7F7F7FFF), 0x7F7F}, // largest value that stays finite
		{float32(math.Inf(1)), 0x7F80},
		{float32(math.Inf(-1)), 0xFF80},
		{float32(math.NaN()), 0x7FC0},
		{f(0xFF800001), 0x7FC0}, // signalling NaN whose top bits alone would read as −Inf
		{f(0x7F800001), 0x7FC0},
		{f(0x00018000), 0x0002}, // subnormal tie: to even
		{f(0x00008000), 0x0000},
		{f(0x00000001), 0x0000},
		{3.140625, 0x4049}, // exact in bf16
	} {
		got := bf16FromF32(tc.in)
		if got != tc.want {
			t.Errorf("bf16(%g = %#08x) = %#04x, want %#04x", tc.in, math.Float32bits(tc.in), got, tc.want)
		}
		if g := f32FromBF16(got); tc.in == tc.in && math.IsNaN(float64(g)) {
			t.Errorf("bf16(%g) widened back is NaN", tc.in)
		}
	}
	// Exhaustively over one binade and its neighbours: the result is the
	// nearest bfloat16, ties to the even one.
	for u := uint32(0x3F000000); u < 0x40800000; u += 7 {
		x := f(u)
		got := f32FromBF16(bf16FromF32(x))
		lo := f(u &^ 0xFFFF)
		hi := f((u &^ 0xFFFF) + 0x10000)
		dlo, dhi := float64(x)-float64(lo), float64(hi)-float64(x)
		want := lo
		if dhi < dlo || (dhi == dlo && (u>>16)&1 == 1) {
			want = hi
		}
		if got != want {
			t.Fatalf("bf16(%#08x) = %g, want %g", u, got, want)
		}
	}
}

// bf16Ref is the documented bfloat16 arithmetic (bf16.go) written out per
// element, with no packing: the driver and kernels must match it bit for bit.
func bf16Ref(tc gemmCase, a, b, c []float32) {
	opA := func(i, p int) float32 {
		if tc.transA {
			return a[p*tc.lda+i]
		}
		return a[i*tc.lda+p]
	}
	opB := func(p, j int) float32 {
		if tc.transB {
			return b[j*tc.ldb+p]
		}
		return b[p*tc.ldb+j]
	}
	if tc.k == 0 || tc.alpha == 0 {
		scaleC(tc.m, tc.n, tc.beta, c, tc.ldc)
		return
	}
	kc := bf16KBlock(tc.k)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			cij := &c[i*tc.ldc+j]
			for pc := 0; pc < tc.k; pc += kc {
				kb := min(kc, tc.k-pc)
				var acc float32
				for q := 0; q < kb; q += 2 {
					var ao, bo float32
					if q+1 < kb {
						ao, bo = opA(i, pc+q+1), opB(pc+q+1, j)
					}
					acc = dpbf16(acc, bf16Pair(opA(i, pc+q), ao), bf16Pair(opB(pc+q, j), bo))
				}
				beta := tc.beta
				if pc > 0 {
					beta = 1
				}
				if beta == 0 {
					*cij = tc.alpha * acc
				} else {
					*cij = fma32(beta, *cij, tc.alpha*acc)
				}
			}
		}
	}
}

// bf16Kernels lists the bfloat16 kernel sets runnable here: the Go
// emulation always, the assembly kernels where the CPU has AVX-512-BF16.
func bf16Kernels(t *testing.T) []*bf16Set {
	ks := []*bf16Set{bf16Go}
	if bf16Asm != nil {
		ks = append(ks, bf16Asm)
	} else {
		t.Log("this CPU has no AVX-512-BF16: only the Go emulation of the bfloat16 kernel is tested")
	}
	return ks
}

func bf16Cases(r *rand.Rand) []gemmCase {
	sizes := []int{1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47}
	var cases []gemmCase
	for trial := 0; trial < 48; trial++ {
		cases = append(cases, gemmCase{transA: trial&1 != 0, transB: trial&2 != 0,
			m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
			alpha: []float32{1, -1.5, 0.25}[trial%3], beta: []float32{0, 1, 0.5, -2}[(trial/3)%4]})
	}
	// k across the blocks (512, odd last blocks), m across row blocks, n
	// across several column blocks (ncMax is cut to 32 for some runs).
	for _, s := range [][3]int{{40, 20, 513}, {19, 35, 1025}, {70, 64, 1000}, {300, 17, 64}, {33, 100, 7}, {1, 1, 1}, {16, 16, 2},
		{100, 8, 600}, {50, 6, 77}, {16, 8, 16}} {
		for tr := 0; tr < 4; tr++ {
			cases = append(cases, gemmCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2],
				alpha: 1, beta: []float32{0, 1, 0.5, 0}[tr]})
		}
	}
	for i := range cases {
		tc := &cases[i]
		pad := func(w int) int { return w + r.IntN(3) }
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
	return cases
}

func sameBits(x, y float32) bool {
	return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y)
}

// TestSgemmBF16Exact holds the bfloat16 GEMM, on every kernel runnable here,
// thread counts 1 and 2 and with one or several column blocks, bit for bit to
// bf16Ref: edge sizes, both transposes, alpha and beta, k blocks of odd
// length. C's row gaps must survive and a beta == 0 C (NaN) is not read.
func TestSgemmBF16Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	cases := bf16Cases(r)
	defer func(nc int) { ncMax = nc }(ncMax)
	for _, tc := range cases {
		a, b, c := tc.operands(r)
		want := append([]float32(nil), c...)
		bf16Ref(tc, a, b, want)
		for _, kern := range bf16Kernels(t) {
			for _, threads := range []int{1, 2} {
				for _, nc := range []int{4096, 32} {
					ncMax = nc
					got := append([]float32(nil), c...)
					sgemmBF16(kern, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc, nil)
					for i := range got {
						if !sameBits(got[i], want[i]) {
							t.Fatalf("%s threads=%d nc=%d %v: C[%d] = %g (%#x), reference %g (%#x)", kern.name, threads, nc, tc,
								i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// TestSgemmBF16Reference: the bfloat16 GEMM against the float64 product of
// the unrounded operands, within the bound of bf16.go: each operand is off by
// at most 2^-8 relative, so |C − exact| ≤ (2^-7 + 2^-15 + 2(k+4)·2^-24)·Σ|alpha·a·b|
// + 2^-22·|beta·C|. Also checks that the error is mostly that of bfloat16
// (larger than float32 rounding alone would give), so the mode really is on.
func TestSgemmBF16Reference(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, kern := range bf16Kernels(t) {
		var worst float64 // largest |error| / Σ|alpha·a·b|
		for _, tc := range bf16Cases(r) {
			rr := newRefResult(tc, r)
			got := append([]float32(nil), rr.c...)
			sgemmBF16(kern, 2, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, rr.a, tc.lda, rr.b, tc.ldb, tc.beta, got, tc.ldc, nil)
			for i := 0; i < tc.m; i++ {
				for j := 0; j < tc.n; j++ {
					var s float64
					for p := 0; p < tc.k; p++ {
						var x, y float64
						if tc.transA {
							x = float64(rr.a[p*tc.lda+i])
						} else {
							x = float64(rr.a[i*tc.lda+p])
						}
						if tc.transB {
							y = float64(rr.b[j*tc.ldb+p])
						} else {
							y = float64(rr.b[p*tc.ldb+j])
						}
						s += math.Abs(float64(tc.alpha) * x * y)
					}
					idx := i*tc.ldc + j
					var bc float64
					if tc.beta != 0 {
						bc = math.Abs(float64(tc.beta) * float64(rr.c[idx]))
					}
					tol := (0x1p-7+0x1p-15+2*float64(tc.k+4)*0x1p-24)*s + 0x1p-22*bc + 1e-30
					d := math.Abs(float64(got[idx]) - float64(rr.want[idx]))
					if !(d <= tol) {
						t.Fatalf("%s %v: C[%d][%d] = %g, float64 reference %g (|diff| %g > bound %g)", kern.name, tc, i, j, got[idx], rr.want[idx], d, tol)
					}
					if s > 0 && tc.k >= 16 {
						worst = max(worst, d/s)
					}
				}
			}
		}
		if worst < 0x1p-12 {
			t.Errorf("%s: largest relative error %g: not bfloat16 rounding", kern.name, worst)
		}
	}
}

// TestSgemmBF16Deterministic: bit-identical results for 1, 2 and 3 threads
// and on repetition, on shapes that split rows, columns and k.
func TestSgemmBF16Deterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	for _, tc := range []gemmCase{
		{m: 1000, n: 16, k: 216, lda: 216, ldb: 16, ldc: 16, alpha: 1},
		{m: 64, n: 700, k: 600, lda: 600, ldb: 700, ldc: 700, alpha: 1, beta: 0.5},
		{transA: true, m: 100, n: 24, k: 3000, lda: 100, ldb: 24, ldc: 24, alpha: 1},
	} {
		a, b, c := tc.operands(r)
		kern := bf16Kernels(t)[len(bf16Kernels(t))-1]
		var first []float32
		for _, threads := range []int{1, 2, 2, 3} {
			got := append([]float32(nil), c...)
			sgemmBF16(kern, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc, nil)
			if first == nil {
				first = got
				continue
			}
			for i := range got {
				if !sameBits(got[i], first[i]) {
					t.Fatalf("%s %v threads=%d: C[%d] = %g, one thread %g", kern.name, tc, threads, i, got[i], first[i])
				}
			}
		}
	}
}

// TestPrecisionAPI: SetPrecision(BF16) fails with ErrNoBF16 where the CPU
// lacks AVX-512-BF16 (pretended by removing the kernel), leaving FP32;
// ParsePrecision; and the public Sgemm, PackB and SgemmPacked in BF16 (on
// the Go emulation where the CPU lacks the instruction) match bf16Ref.
func TestPrecisionAPI(t *testing.T) {
	saved := bf16Asm
	defer func() { bf16Asm = saved; precision.Store(int32(FP32)) }()

	bf16Asm = nil
	if HasBF16() {
		t.Fatal("HasBF16 with no kernel")
	}
	err := SetPrecision(BF16)
	if !errors.Is(err, ErrNoBF16) || Precision() != FP32 {
		t.Fatalf("SetPrecision(BF16) without AVX-512-BF16: err %v, precision %v", err, Precision())
	}
	t.Logf("the error reads: %v", err)
	if err := SetPrecision(Prec(7)); err == nil {
		t.Fatal("SetPrecision(7) succeeded")
	}
	for s, want := range map[string]Prec{"fp32": FP32, "bf16": BF16} {
		if p, err := ParsePrecision(s); err != nil || p != want || p.String() != s {
			t.Fatalf("ParsePrecision(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Fatal(`ParsePrecision("fp16") succeeded`)
	}

	bf16Asm = saved
	if bf16Asm == nil {
		bf16Asm = bf16Go
	}
	if err := SetPrecision(BF16); err != nil || Precision() != BF16 {
		t.Fatalf("SetPrecision(BF16) with a kernel: %v", err)
	}
	r := rand.New(rand.NewPCG(57, 58))
	for _, tc := range []gemmCase{
		{m: 37, n: 21, k: 29, lda: 29, ldb: 21, ldc: 21, alpha: 1},
		{transA: true, transB: true, m: 20, n: 33, k: 530, lda: 20, ldb: 530, ldc: 35, alpha: 0.5, beta: -1},
		{m: 5, n: 7, k: 0, lda: 1, ldb: 7, ldc: 7, alpha: 1, beta: 0.5},
	} {
		a, b, c := tc.operands(r)
		want := append([]float32(nil), c...)
		bf16Ref(tc, a, b, want)
		got := append([]float32(nil), c...)
		Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc)
		for i := range got {
			if !sameBits(got[i], want[i]) {
				t.Fatalf("Sgemm in BF16 %v: C[%d] = %g, reference %g", tc, i, got[i], want[i])
			}
		}
	}
	// PackB + SgemmPacked (row-major A and B, k across blocks).
	for _, s := range [][3]int{{50, 1030, 24}, {7, 3, 5}, {16, 64, 16}, {40, 600, 8}} {
		m, k, n := s[0], s[1], s[2]
		tc := gemmCase{m: m, n: n, k: k, lda: k + 1, ldb: n, ldc: n + 2, alpha: 1, beta: 0.5}
		a, b, c := tc.operands(r)
		want := append([]float32(nil), c...)
		bf16Ref(tc, a, b, want)
		dst := make([]float32, PackBSize(k, n))
		pb := PackB(dst, b, n, k, n)
		precision.Store(int32(FP32)) // a BF16 PackedB computes in BF16 whatever the precision
		got := append([]float32(nil), c...)
		SgemmPacked(m, tc.alpha, a, tc.lda, pb, tc.beta, got, tc.ldc)
		precision.Store(int32(BF16))
		for i := range got {
			if !sameBits(got[i], want[i]) {
				t.Fatalf("SgemmPacked in BF16 m=%d k=%d n=%d: C[%d] = %g, reference %g", m, k, n, i, got[i], want[i])
			}
		}
	}
}

// TestSgemmBF16NoAllocs: once warm, bfloat16 calls do not allocate (buffers
// are pooled; an occasional refill after a GC is allowed).
func TestSgemmBF16NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	kern := bf16Kernels(t)[len(bf16Kernels(t))-1]
	for _, s := range []struct {
		m, n, k int
		transA  bool
	}{{600, 16, 300, false}, {64, 2000, 100, false}, {27, 8, 3000, true}} {
		a := make([]float32, s.m*s.k)
		b := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		lda := s.k
		if s.transA {
			lda = s.m
		}
		for _, threads := range []int{1, 2} {
			run := func() {
				sgemmBF16(kern, threads, s.transA, false, s.m, s.n, s.k, 1, a, lda, b, s.n, 0, c, s.n, nil)
			}
			for range 3 {
				run()
			}
			if n := testing.AllocsPerRun(5, run); n >= 1 {
				t.Errorf("%s %+v threads=%d: %v allocations per call", kern.name, s, threads, n)
			}
		}
	}
}

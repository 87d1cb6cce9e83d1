package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// specialValues mixes values that exercise the bfloat16 rounding: ties
// (low half 0x8000, even and odd), values just below and above them,
// subnormals, infinities and NaN.
func specialValues(r *rand.Rand, n int) []float32 {
	s := randSlice(r, n)
	specials := []uint32{0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x00000001, 0x807FFFFF,
		0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x7F7FFFFF, 0x80000000}
	for i := range s {
		if r.IntN(6) == 0 {
			s[i] = math.Float32frombits(specials[r.IntN(len(specials))])
		}
	}
	return s
}

// TestWinoInBF16 holds WinoInBF16 (its assembly where the CPU has
// AVX-512VL, eight channels at a time, and its Go remainder) to the float32
// transform rounded by bf16Pair, bit for bit, on odd strides, on channel
// counts with and without a remainder past a multiple of 8, and on values
// that hit every rounding case; NaN may come out as any NaN pattern only
// if both are NaN (the transform's additions propagate them).
func TestWinoInBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tmp := make([]float32, WinoInTmp)
	for _, nc := range []int{2, 8, 10, 16, 24, 38, 64} {
		for _, special := range []int{0, 1, 2} {
			sx, sy, sz := nc+3, 5*nc+7, 23*nc+1
			ds := nc/2 + 5
			var src []float32
			switch special {
			case 0:
				src = randSlice(r, 3*(sx+sy+sz)+nc)
			case 1:
				src = specialValues(r, 3*(sx+sy+sz)+nc)
			case 2:
				// only voxel (1,1,1) non-zero: every transformed point is
				// 0 or ±that value, so the special bit patterns (ties,
				// subnormals, NaN) reach the rounding unchanged
				src = make([]float32, 3*(sx+sy+sz)+nc)
				copy(src[sx+sy+sz:], specialsOnly(r, nc))
			}
			f := make([]float32, 63*(2*ds)+nc)
			winoInGo(f, 2*ds, src, sx, sy, sz, nc)
			got := make([]uint32, 63*ds+nc/2)
			for i := range got {
				got[i] = 0xDEADBEEF
			}
			WinoInBF16(got, ds, src, sx, sy, sz, nc, tmp)
			goOnly := make([]uint32, len(got))
			winoInBF16Go(goOnly, ds, src, sx, sy, sz, 0, nc, tmp)
			for xi := 0; xi < 64; xi++ {
				for q := 0; q < nc/2; q++ {
					want := bf16Pair(f[xi*2*ds+2*q], f[xi*2*ds+2*q+1])
					for name, v := range map[string]uint32{"WinoInBF16": got[xi*ds+q], "winoInBF16Go": goOnly[xi*ds+q]} {
						if v != want {
							t.Fatalf("%s nc=%d case %d: point %d pair %d = %#08x, want %#08x (from %v, %v)",
								name, nc, special, xi, q, v, want, f[xi*2*ds+2*q], f[xi*2*ds+2*q+1])
						}
					}
				}
				// the pairs past nc/2 are not touched
				if xi < 63 {
					for q := nc / 2; q < ds; q++ {
						if got[xi*ds+q] != 0xDEADBEEF {
							t.Fatalf("nc=%d: point %d pair %d written past the channels", nc, xi, q)
						}
					}
				}
			}
		}
	}
	t.Logf("assembly: %v", winoInBF16Asm)
}

// TestSgemmPackedPairs: SgemmPackedPairs on A rounded to pairs equals
// SgemmPacked on the float32 A, bit for bit, in BF16 precision: full and
// partial 16-row tiles, one and several k blocks, narrow and wide n, beta 0
// and 1, a padded row stride. On the Go emulation where the CPU lacks
// AVX-512-BF16.
func TestSgemmPackedPairs(t *testing.T) {
	saved := bf16Asm
	defer func() { bf16Asm = saved; precision.Store(int32(FP32)) }()
	if bf16Asm == nil {
		bf16Asm = bf16Go
	}
	if err := SetPrecision(BF16); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ m, k, n int }{
		{1, 8, 8}, {15, 16, 16}, {16, 16, 24}, {17, 32, 40}, {100, 64, 16}, {48, 1030, 32}, {33, 520, 8},
	} {
		for _, beta := range []float32{0, 1} {
			lda := tc.k + 6 // floats; pairs lda/2
			a := randSlice(r, (tc.m-1)*lda+tc.k)
			b := randSlice(r, tc.k*tc.n)
			pb := PackB(make([]float32, PackBSize(tc.k, tc.n)), b, tc.n, tc.k, tc.n)
			ap := make([]uint32, (tc.m-1)*lda/2+tc.k/2)
			for i := 0; i < tc.m; i++ {
				for q := 0; q < tc.k/2; q++ {
					ap[i*lda/2+q] = bf16Pair(a[i*lda+2*q], a[i*lda+2*q+1])
				}
			}
			ldc := tc.n + 3
			c0 := randSlice(r, (tc.m-1)*ldc+tc.n)
			want := append([]float32(nil), c0...)
			got := append([]float32(nil), c0...)
			SgemmPacked(tc.m, 0.75, a, lda, pb, beta, want, ldc)
			SgemmPackedPairs(tc.m, 0.75, ap, lda/2, pb, beta, got, ldc)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("m=%d k=%d n=%d beta=%v: C[%d] = %v, SgemmPacked %v", tc.m, tc.k, tc.n, beta, i, got[i], want[i])
				}
			}
		}
	}
}

// specialsOnly is n values drawn from the rounding cases alone.
func specialsOnly(r *rand.Rand, n int) []float32 {
	specials := []uint32{0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x00000001, 0x807FFFFF,
		0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x7F7FFFFF, 0x80000000, 0xBF818000, 0x40008001}
	s := make([]float32, n)
	for i := range s {
		s[i] = math.Float32frombits(specials[r.IntN(len(specials))])
	}
	return s
}

// TestWinoInAVX2AndAVX512: both assembly generations of the input,
// output-gradient and output transforms (AVX2, and AVX-512 Z/Y chunks where the CPU has
// AVX-512F and VL), float32 and bfloat16 input, output with and without
// bias and accumulation, against the Go transforms bit for bit.
func TestWinoInAVX2AndAVX512(t *testing.T) {
	if !winoAsm {
		t.Skip("no assembly transforms on this CPU/build")
	}
	saved := winoIn512
	defer func() { winoIn512 = saved }()
	settings := []bool{false}
	if saved {
		settings = append(settings, true)
	} else {
		t.Log("no AVX-512F/VL here: only the AVX2 transforms are tested")
	}
	r := rand.New(rand.NewPCG(8, 9))
	tmp := make([]float32, WinoInTmp)
	for _, on := range settings {
		winoIn512 = on
		for _, nc := range []int{8, 16, 24, 32, 40, 56, 64} {
			sx, sy, sz := nc+3, 5*nc+7, 23*nc+1
			ds := nc + 5
			src := specialValues(r, 3*(sx+sy+sz)+nc)
			a, b := make([]float32, 63*ds+nc), make([]float32, 63*ds+nc)
			winoInAsm(a, ds, src, sx, sy, sz, nc, tmp)
			winoInGo(b, ds, src, sx, sy, sz, nc)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
					t.Fatalf("avx512=%v WinoIn nc=%d: element %d asm %v, Go %v", on, nc, i, a[i], b[i])
				}
			}
			ga, gb := make([]float32, 63*ds+nc), make([]float32, 63*ds+nc)
			winoGradAsm(ga, ds, src, sx, sy, sz, nc, tmp)
			winoGradGo(gb, ds, src, sx, sy, sz, nc)
			for i := range ga {
				if math.Float32bits(ga[i]) != math.Float32bits(gb[i]) && !(ga[i] != ga[i] && gb[i] != gb[i]) {
					t.Fatalf("avx512=%v WinoGrad nc=%d: element %d asm %v, Go %v", on, nc, i, ga[i], gb[i])
				}
			}
			m := specialValues(r, 63*ds+nc)
			bias := randSlice(r, nc)
			for _, bb := range [][]float32{nil, bias} {
				for _, acc := range []bool{false, true} {
					init := randSlice(r, sx+sy+sz+nc)
					x := append([]float32(nil), init...)
					y := append([]float32(nil), init...)
					winoOutAsm(x, sx, sy, sz, m, ds, nc, bb, acc, tmp)
					winoOutGo(y, sx, sy, sz, m, ds, nc, bb, acc)
					for i := range x {
						if math.Float32bits(x[i]) != math.Float32bits(y[i]) && !(x[i] != x[i] && y[i] != y[i]) {
							t.Fatalf("avx512=%v WinoOut nc=%d bias=%v acc=%v: element %d asm %v, Go %v", on, nc, bb != nil, acc, i, x[i], y[i])
						}
					}
				}
			}
			dp := (ds + 1) / 2
			pa, pb := make([]uint32, 63*dp+nc/2), make([]uint32, 63*dp+nc/2)
			if winoInBF16Asm {
				winoInBF16Chunks(pa, dp, src, sx, sy, sz, nc, tmp)
				winoInBF16Go(pb, dp, src, sx, sy, sz, 0, nc, tmp)
				for i := range pa {
					if pa[i] != pb[i] {
						t.Fatalf("avx512=%v WinoInBF16 nc=%d: pair %d asm %#08x, Go %#08x", on, nc, i, pa[i], pb[i])
					}
				}
			}
		}
	}
}

// TestPairRowsK holds pairRowsK (assembly for the full pairs' whole runs,
// Go for the rest) to bf16Pair element by element: odd and even row
// counts, widths around multiples of 16, padded rows.
func TestPairRowsK(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, kb := range []int{1, 2, 3, 8, 33} {
		for _, n := range []int{1, 15, 16, 17, 32, 47, 64} {
			ld := n + 5
			src := specialValues(r, (kb-1)*ld+n)
			kp := (kb + 1) / 2
			stride := kp*16 + 3
			dst := make([]uint32, (kp-1)*16+((n+15)/16-1)*stride+16)
			pairRowsK(dst, stride, src, ld, kb, n)
			for p := 0; p < kp; p++ {
				for i := 0; i < n; i++ {
					var odd float32
					if 2*p+1 < kb {
						odd = src[(2*p+1)*ld+i]
					}
					want := bf16Pair(src[2*p*ld+i], odd)
					if got := dst[p*16+(i/16)*stride+i%16]; got != want {
						t.Fatalf("kb=%d n=%d: pair %d element %d = %#08x, want %#08x", kb, n, p, i, got, want)
					}
				}
			}
		}
	}
}

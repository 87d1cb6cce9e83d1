package kernels

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// fma32Big is fma32 computed with math/big: the exact a*b + c, rounded once.
func fma32Big(a, b, c float32) float32 {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) || math.IsNaN(float64(c)) ||
		math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) {
		return float32(float64(a)*float64(b) + float64(c))
	}
	x := new(big.Float).SetPrec(2000).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(2000).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(2000).SetFloat64(float64(c)))
	f, _ := x.Float32() // nearest float32, ties to even; ±Inf past the range
	if f == 0 && x.Sign() == 0 {
		// an exact zero sum: +0 unless both addends are -0 (round to nearest)
		return float32(float64(a)*float64(b) + float64(c))
	}
	return f
}

// TestFMA32 holds the float32 FMA emulation to an exact big-number
// computation on random operands, on sums that cancel, on midpoints (where
// rounding twice would go wrong), near overflow and in the subnormal range.
func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	rnd := func(scale int) float32 {
		return float32(math.Ldexp(r.Float64()*2-1, r.IntN(2*scale+1)-scale))
	}
	type abc struct{ a, b, c float32 }
	cases := []abc{
		{1, 1, 0x1p-24},           // 1 + half ulp: tie, stays 1
		{1 + 0x1p-23, 1, 0x1p-24}, // odd + half ulp: tie to even, up
		// (1+2^-12)^2 = 1 + 2^-11 + 2^-24 is a float32 midpoint; a tiny c
		// decides the rounding, but is lost when the sum is rounded to
		// float64 first.
		{1 + 0x1p-12, 1 + 0x1p-12, 0x1p-80},
		{1 + 0x1p-12, 1 + 0x1p-12, -0x1p-80},
		{-1 - 0x1p-12, 1 + 0x1p-12, 0x1p-80},
		{(1 + 0x1p-12) * 0x1p-70, (1 + 0x1p-12) * 0x1p-70, 0x1p-149}, // the same, subnormal
		{0x1p-12 + 0x1p-35, 0x1p12, 0x1p-24},                         // product with a tail, plus half an ulp
		{math.MaxFloat32, 1, 0x1p103},                                // MaxFloat32 + half ulp: ties to even, Inf
		{math.MaxFloat32, 1, 0x1p103 - 0x1p80},                       // just short of the midpoint
		{math.MaxFloat32, 2, -math.MaxFloat32},
		{0x1p-140, 0x1p-10, 0x1p-149},                                  // subnormal result
		{-0x1p-75, 0x1p-75, 0x1p-149},                                  // cancels to a subnormal tie
		{0, -1, 0}, {negZero, 1, negZero}, {1, -1, 1}, {0, 1, negZero}, // signed zeros
		{float32(math.Inf(1)), 0, 1}, {float32(math.NaN()), 1, 2}, {float32(math.Inf(1)), 1, float32(math.Inf(-1))},
	}
	for i := 0; i < 200000; i++ {
		s := []int{2, 20, 60, 140}[i%4]
		a, b := rnd(s), rnd(s)
		c := rnd(s)
		if i%3 == 0 { // make the sum cancel
			c = -a * b * (1 + float32(r.IntN(5)-2)*0x1p-23)
		}
		cases = append(cases, abc{a, b, c})
	}
	for _, tc := range cases {
		got, want := fma32(tc.a, tc.b, tc.c), fma32Big(tc.a, tc.b, tc.c)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", tc.a, tc.b, tc.c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

// negZero is −0 (the constant -0.0 is +0 in Go).
var negZero = float32(math.Copysign(0, -1))

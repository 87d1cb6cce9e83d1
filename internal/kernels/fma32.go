package kernels

import "math"

// fma32 returns a*b + c rounded once to float32 (round to nearest, ties to
// even), as the FMA instructions compute it: the exact emulation the tests
// hold the assembly kernels' accumulation to bit for bit, and the arithmetic
// of the portable bfloat16 kernel.
//
// The product of two float32 values is exact in float64, so only the sum can
// round twice. TwoSum gives the sum s rounded to float64 and its exact error
// e; rounding s to float32 can then differ from rounding the exact value
// p + c only when s lies exactly halfway between two float32 values (every
// float32 midpoint is a float64), and then e says on which side of the
// midpoint the exact value lies.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact
	cc := float64(c)
	s := p + cc
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	// TwoSum (Knuth): e = (p + cc) - s exactly. Explicit conversions keep
	// the compiler from fusing any of these operations.
	bb := float64(s - p)
	e := float64(p-float64(s-bb)) + float64(cc-bb)
	r := roundF32(s)
	if e == 0 || float64(r) == s {
		return r
	}
	// The other float32 neighbour of s.
	var o float32
	if float64(r) < s {
		o = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		o = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if math.IsInf(float64(r), 0) {
		// s rounded up to ±Inf: it lies at or past the midpoint between
		// MaxFloat32 and 2^128. At exactly that midpoint, an exact value
		// short of it rounds to ±MaxFloat32.
		mid := math.Copysign(math.MaxFloat32+0x1p103, s)
		if s == mid && (e < 0) == (s > 0) {
			return float32(math.Copysign(math.MaxFloat32, s))
		}
		return r
	}
	if math.IsInf(float64(o), 0) {
		return r
	}
	if float64(r)+float64(o) != 2*s { // not a midpoint (the sum is exact)
		return r
	}
	// A midpoint: the exact value is off it towards e.
	if (e > 0) == (float64(o) > float64(r)) {
		return o
	}
	return r
}

// roundF32 rounds x to the nearest float32, ties to even, overflowing to
// ±Inf (spelled out because Go leaves out-of-range conversions to the
// implementation).
func roundF32(x float64) float32 {
	if a := math.Abs(x); a >= math.MaxFloat32+0x1p103 && !math.IsInf(x, 0) {
		return float32(math.Copysign(math.Inf(1), x))
	}
	return float32(x)
}

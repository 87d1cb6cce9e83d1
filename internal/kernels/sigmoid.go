package kernels

import "math"

// The logistic sigmoid σ(v) = 1/(1 + e^−v) of the models' output layer, in
// float32 arithmetic that the AVX2 loop (sigmoid_amd64.s) performs
// instruction for instruction, eight values at a time, so that both give the
// same bits on every element.
//
// e = e^−|v| (never overflows) is 2^k·p(r) with k = round(−|v|·log₂e) and
// r = −|v| − k·ln 2 in [−ln2/2, ln2/2], ln 2 split in two parts (the first
// with few enough bits that k times it is exact); p is Cephes' degree-7
// minimax polynomial for eʳ (1 + r + r²·P(r), P of degree 5). The scale 2^k
// is applied as two powers of two, k = k₁ + k₂, so that results down to the
// denormals are formed without an out-of-range exponent; −|v| is clamped at
// −104, below which e rounds to 0 anyway. Then σ(v) = 1/(1+e) for v ≥ 0 and
// e/(1+e) for v < 0 (sign bit set). NaN stays NaN. Every product and sum is
// rounded to float32 on its own (no fused multiply-add, and the explicit
// conversions stop the Go compiler fusing them on other architectures), and
// division is IEEE division, so the Go loop and the assembly agree exactly.
// The error against the float64 sigmoid is within a few units in the last
// place (TestSigmoidAccuracy).

const (
	sigLog2e = float32(1.44269504088896341)
	sigLn2Hi = float32(0.693359375)
	sigLn2Lo = float32(-2.12194440e-4)
	sigClamp = float32(-104)
	sigP0    = float32(1.9875691500e-4)
	sigP1    = float32(1.3981999507e-3)
	sigP2    = float32(8.3334519073e-3)
	sigP3    = float32(4.1665795894e-2)
	sigP4    = float32(1.6666665459e-1)
	sigP5    = float32(5.0000001201e-1)
)

// Sigmoid writes σ(src[i]) to dst[i] for i < len(src); dst may be src.
func Sigmoid(dst, src []float32) {
	dst = dst[:len(src)]
	n8 := 0
	if sigmoidAsm && len(src) >= 8 {
		n8 = len(src) &^ 7
		sigmoidAsmLoop(dst[:n8], src[:n8])
	}
	for i := n8; i < len(src); i++ {
		dst[i] = Sigmoid1(src[i])
	}
}

// Sigmoid1 is σ(v), the same bits as Sigmoid.
func Sigmoid1(v float32) float32 {
	if v != v {
		return v
	}
	t := -float32(math.Abs(float64(v)))
	if t < sigClamp {
		t = sigClamp
	}
	kf := float32(math.RoundToEven(float64(float32(t * sigLog2e))))
	r := t - float32(kf*sigLn2Hi)
	r = r - float32(kf*sigLn2Lo)
	z := float32(r * r)
	p := sigP0
	p = float32(p*r) + sigP1
	p = float32(p*r) + sigP2
	p = float32(p*r) + sigP3
	p = float32(p*r) + sigP4
	p = float32(p*r) + sigP5
	y := float32(float32(p*z)+r) + 1
	k := int32(kf)
	k1 := k >> 1
	k2 := k - k1
	e := float32(y * math.Float32frombits(uint32(k1+127)<<23))
	e = float32(e * math.Float32frombits(uint32(k2+127)<<23))
	d := 1 + e
	if math.Float32bits(v)>>31 != 0 {
		return e / d
	}
	return 1 / d
}

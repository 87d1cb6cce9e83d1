package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// sigmoidInputs: uniform draws over several widths, every value near the
// clamp, the denormal and saturation ranges, and the special values.
func sigmoidInputs() []float32 {
	rng := rand.New(rand.NewSource(7))
	var v []float32
	for _, w := range []float32{1, 4, 20, 90, 200} {
		for i := 0; i < 4000; i++ {
			v = append(v, (2*rng.Float32()-1)*w)
		}
	}
	for x := float32(-110); x <= -85; x += 0.0625 {
		v = append(v, x, -x)
	}
	v = append(v, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1.4e-45, -1.4e-45,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN()),
		math.MaxFloat32, -math.MaxFloat32, -104, -103.99999, -104.00001, 16.635532, 17.32868, 88.7, -88.7)
	return v
}

// TestSigmoidAsmMatchesGo holds the AVX2 loop to Sigmoid1 bit for bit, on
// every length up to 40 (the Go tail) and on the inputs above.
func TestSigmoidAsmMatchesGo(t *testing.T) {
	if !sigmoidAsm {
		t.Skip("no AVX2 on this CPU or build")
	}
	x := sigmoidInputs()
	got := make([]float32, len(x))
	Sigmoid(got, x)
	for i, v := range x {
		if w := Sigmoid1(v); math.Float32bits(got[i]) != math.Float32bits(w) {
			t.Fatalf("σ(%v) (bits %08x): loop %v (%08x), Go %v (%08x)", v, math.Float32bits(v), got[i], math.Float32bits(got[i]), w, math.Float32bits(w))
		}
	}
	for n := 0; n <= 40; n++ {
		d := make([]float32, n+1)
		d[n] = 42
		Sigmoid(d[:n], x[100:100+n])
		for i := 0; i < n; i++ {
			if math.Float32bits(d[i]) != math.Float32bits(Sigmoid1(x[100+i])) {
				t.Fatalf("n=%d: element %d differs", n, i)
			}
		}
		if d[n] != 42 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
	// in place
	y := append([]float32(nil), x...)
	Sigmoid(y, y)
	for i := range y {
		if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
			t.Fatalf("in place: element %d differs", i)
		}
	}
}

// TestSigmoidAccuracy compares Sigmoid1 with the float64 sigmoid: at most
// 3 units in the last place of float32 on normal results, 2⁻¹⁴⁹ absolute
// on denormal ones, and the exact values at 0, ±Inf and NaN.
func TestSigmoidAccuracy(t *testing.T) {
	worst := 0.0
	for _, v := range sigmoidInputs() {
		got := Sigmoid1(v)
		f := float64(v)
		if math.IsNaN(f) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("σ(NaN) = %v", got)
			}
			continue
		}
		var want float64
		if f >= 0 {
			want = 1 / (1 + math.Exp(-f))
		} else {
			e := math.Exp(f)
			want = e / (1 + e)
		}
		err := math.Abs(float64(got) - want)
		if want < 0x1p-126 {
			if err > 0x1p-149 {
				t.Fatalf("σ(%v) = %g, want %g (denormal range)", v, got, want)
			}
			continue
		}
		ulp := math.Abs(float64(math.Nextafter32(float32(want), float32(math.Inf(1)))) - float64(float32(want)))
		if want >= 1 {
			ulp = 0x1p-24
		}
		if r := err / ulp; r > worst {
			worst = r
		}
		if err > 3*ulp {
			t.Fatalf("σ(%v) = %v, want %v: %.2f ulp", v, got, want, err/ulp)
		}
	}
	t.Logf("largest error %.2f ulp", worst)
	for v, want := range map[float32]float32{0: 0.5, float32(math.Inf(1)): 1, float32(math.Inf(-1)): 0} {
		if got := Sigmoid1(v); got != want {
			t.Errorf("σ(%v) = %v, want %v", v, got, want)
		}
	}
}

func BenchmarkSigmoid(b *testing.B) {
	x := make([]float32, 1<<16)
	rng := rand.New(rand.NewSource(1))
	for i := range x {
		x[i] = (2*rng.Float32() - 1) * 8
	}
	y := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		Sigmoid(y, x)
	}
}

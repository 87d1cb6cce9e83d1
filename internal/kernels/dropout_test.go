package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDropMask holds DropMask (the AVX-512 loop where the CPU has
// AVX-512F/DQ, then the Go tail) to the definition, bit for bit: element i
// is kept when float32(bits)·2⁻²⁴ ≥ p for its 24-bit draw, and multiplied
// by s or 0 (0 + that for gradients). Lengths around the 16-element step,
// bases past 2³², probabilities at the threshold's edges, and values that
// make the multiplication by 0 visible (±0, ±Inf, NaN).
func TestDropMask(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	t.Logf("assembly: %v", dropAsm)
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-45, -3}
	for _, p := range []float32{0.2, 0.5, 1e-7, 0.9999999, 1, 0.3, float32(1) / (1 << 24), 0} {
		s := 1 / (1 - p)
		if p >= 1 {
			s = 0
		}
		th := DropThreshold(p)
		for _, n := range []int{1, 15, 16, 17, 31, 32, 100, 1000} {
			for _, base := range []int{0, 7, 1<<32 + 5} {
				for _, grad := range []bool{false, true} {
					key := r.Uint64()
					d := make([]float32, n)
					for i := range d {
						if r.IntN(5) == 0 {
							d[i] = specials[r.IntN(len(specials))]
						} else {
							d[i] = float32(r.NormFloat64())
						}
					}
					want := append([]float32(nil), d...)
					var z float32
					for i := range want {
						var m float32
						u := float32(Splitmix64(key^Splitmix64(uint64(base+i)))>>40) * (1.0 / (1 << 24))
						if u >= p {
							m = s
						}
						if grad {
							want[i] = z + want[i]*m
						} else {
							want[i] *= m
						}
					}
					DropMask(d, base, key, th, s, grad)
					for i := range d {
						if math.Float32bits(d[i]) != math.Float32bits(want[i]) && !(d[i] != d[i] && want[i] != want[i]) {
							t.Fatalf("p=%v n=%d base=%d grad=%v: element %d = %v, want %v", p, n, base, grad, i, d[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestDropThreshold: the integer threshold agrees with the float
// comparison for every 24-bit draw near it.
func TestDropThreshold(t *testing.T) {
	for _, p := range []float32{0.2, 0.5, 1e-7, 0.9999999, 0.1, 0.3, 0.7} {
		th := DropThreshold(p)
		for b := th - 3; b <= th+3 && b < 1<<24; b++ {
			if (float32(b)*(1.0/(1<<24)) >= p) != (b >= th) {
				t.Fatalf("p=%v: draw %d, threshold %d disagrees with the float comparison", p, b, th)
			}
		}
	}
}

func BenchmarkDropMask(b *testing.B) {
	d := make([]float32, 1<<16)
	for _, asm := range []bool{false, true} {
		if asm && !dropAsm {
			continue
		}
		saved := dropAsm
		dropAsm = asm
		b.Run(map[bool]string{false: "go", true: "avx512"}[asm], func(b *testing.B) {
			b.SetBytes(int64(4 * len(d)))
			for i := 0; i < b.N; i++ {
				DropMask(d, 0, 12345, DropThreshold(0.2), 1.25, false)
			}
		})
		dropAsm = saved
	}
}

// TestDropMaskRecordApply: DropMaskRecord masks as DropMask does and
// records the mask, and DropApply with that record gives DropMask's bits,
// with and without grad (the assembly and the Go tail; lengths around the
// 16-element blocks, the values that show a multiplication by 0).
func TestDropMaskRecordApply(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.NaN()), -3}
	same := func(a, b []float32) int {
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
				return i
			}
		}
		return -1
	}
	for _, p := range []float32{0.2, 0.5, 1} {
		s := 1 / (1 - p)
		if p >= 1 {
			s = 0
		}
		th := DropThreshold(p)
		for _, n := range []int{1, 15, 16, 17, 33, 1000} {
			for _, base := range []int{0, 16, 1<<32 + 48} {
				key := r.Uint64()
				d := make([]float32, n)
				for i := range d {
					d[i] = float32(r.NormFloat64())
					if r.IntN(5) == 0 {
						d[i] = specials[r.IntN(len(specials))]
					}
				}
				want := append([]float32(nil), d...)
				DropMask(want, base, key, th, s, false)
				got := append([]float32(nil), d...)
				bits := make([]uint16, (n+15)/16)
				for i := range bits {
					bits[i] = uint16(r.Uint32()) // garbage: every bit must be written
				}
				DropMaskRecord(got, base, key, th, s, bits)
				if i := same(got, want); i >= 0 {
					t.Fatalf("p=%v n=%d base=%d: DropMaskRecord[%d] = %v, DropMask %v", p, n, base, i, got[i], want[i])
				}
				for _, grad := range []bool{false, true} {
					w := append([]float32(nil), d...)
					DropMask(w, base, key, th, s, grad)
					g := append([]float32(nil), d...)
					DropApply(g, bits, s, grad)
					if i := same(g, w); i >= 0 {
						t.Fatalf("p=%v n=%d base=%d grad=%v: DropApply[%d] = %v, DropMask %v", p, n, base, grad, i, g[i], w[i])
					}
				}
			}
		}
	}
}

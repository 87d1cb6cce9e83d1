package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowLoops holds AddBias and ColSums (assembly on whole 8-channel
// groups where the CPU has AVX2, Go on the rest) to the plain loops bit for
// bit, on channel counts below, at and past multiples of 8, and on values
// whose float64 sums depend on their order.
func TestRowLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, c := range []int{1, 3, 8, 13, 16, 32, 40, 64, 96} {
		for _, n := range []int{1, 7, 300, 2500} { // 2500: several of the sum loop's row blocks
			rows := randSlice(r, n*c)
			for i := range rows {
				rows[i] *= float32(math.Pow(10, float64(r.IntN(12)-6)))
			}
			bias := randSlice(r, c)
			got := append([]float32(nil), rows...)
			AddBias(got, bias)
			for i := 0; i < n; i++ {
				for j := 0; j < c; j++ {
					if want := rows[i*c+j] + bias[j]; math.Float32bits(got[i*c+j]) != math.Float32bits(want) {
						t.Fatalf("AddBias c=%d n=%d: [%d][%d] = %v, want %v", c, n, i, j, got[i*c+j], want)
					}
				}
			}
			acc := make([]float64, c)
			want := make([]float64, c)
			for j := range acc {
				acc[j] = r.NormFloat64()
				want[j] = acc[j]
			}
			ColSums(acc, rows)
			for i := 0; i < n; i++ {
				for j := 0; j < c; j++ {
					want[j] += float64(rows[i*c+j])
				}
			}
			for j := range acc {
				if math.Float64bits(acc[j]) != math.Float64bits(want[j]) {
					t.Fatalf("ColSums c=%d n=%d: channel %d = %v, want %v", c, n, j, acc[j], want[j])
				}
			}
		}
	}
	t.Logf("assembly: %v", rowsAsm)
}

// TestAddTo holds AddTo to dst[i] + src[i] bit for bit, on lengths around
// the assembly's groups of 8 and 32.
func TestAddTo(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 100, 1000} {
		d, s := randSlice(r, n), randSlice(r, n)
		got := append([]float32(nil), d...)
		AddTo(got, s)
		for i := range d {
			if want := d[i] + s[i]; math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: [%d] = %v, want %v", n, i, got[i], want)
			}
		}
	}
}

// BenchmarkColSums: the bias gradient of an 8-channel 64³ level at batch 2.
func BenchmarkColSums(b *testing.B) {
	for _, c := range []int{8, 32} {
		g := randSlice(rand.New(rand.NewPCG(1, 2)), (1<<19)*8/c*c)
		acc := make([]float64, c)
		b.Run(fmt.Sprint("c=", c), func(b *testing.B) {
			b.SetBytes(int64(4 * len(g)))
			for i := 0; i < b.N; i++ {
				ColSums(acc, g)
			}
		})
	}
}

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPackedBOffsetsMatchPackB fills a NewPackedB through PanelOffset,
// rows in random order (k blocks of full and partial height, on the
// narrow, wide and AVX-512 kernels' column counts, with partial last
// panels), and requires PackB's bits, and the same GEMM results.
func TestPackedBOffsetsMatchPackB(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 7, 256, 257, 600} {
		for _, n := range []int{1, 8, 16, 20, 32, 48, 100} {
			ldb := n + r.IntN(3)
			b := randSlice(r, k*ldb)
			want := PackB(make([]float32, PackBSize(k, n)), b, ldb, k, n)
			dst := randSlice(r, PackBSize(k, n)) // garbage: every float must be written
			got := NewPackedB(dst, k, n)
			nr := got.NR()
			for _, p := range r.Perm(k) {
				for q := 0; q*nr < n; q++ {
					d := got.data[got.PanelOffset(p, q):][:nr]
					clear(d[copy(d, b[p*ldb+q*nr:p*ldb+n]):])
				}
			}
			if got.kc != want.kc || got.kern != want.kern || len(got.data) != len(want.data) {
				t.Fatalf("k=%d n=%d: layout kc %d/%d, %d/%d floats", k, n, got.kc, want.kc, len(got.data), len(want.data))
			}
			for i := range want.data {
				if math.Float32bits(got.data[i]) != math.Float32bits(want.data[i]) {
					t.Fatalf("k=%d n=%d: packed[%d] = %v, PackB %v", k, n, i, got.data[i], want.data[i])
				}
			}
			m := 13
			a := randSlice(r, m*k)
			c1, c2 := make([]float32, m*n), make([]float32, m*n)
			SgemmPacked(m, 1, a, k, want, 0, c1, n)
			SgemmPacked(m, 1, a, k, got, 0, c2, n)
			for i := range c1 {
				if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
					t.Fatalf("k=%d n=%d: C[%d] = %v, want %v", k, n, i, c2[i], c1[i])
				}
			}
		}
	}
}

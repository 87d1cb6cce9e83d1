package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConv1RowAsmMatchesGo holds the assembly first-layer row loop to the
// Go one (exact FMA emulation), bit for bit, on widths with and without a
// tail of under four voxels, 8 to 32 channels, a zero row and values of
// mixed magnitudes; and the Go one to the definition in float64 within
// float32 rounding.
func TestConv1RowAsmMatchesGo(t *testing.T) {
	if !conv1Asm {
		t.Skip("no assembly first-layer loop on this CPU/build")
	}
	defer func() { conv1Asm = true }()
	r := rand.New(rand.NewPCG(21, 22))
	for _, nx := range []int{4, 7, 32, 61} {
		for _, co := range []int{8, 16, 32} {
			var in [9][]float32
			for k := range in {
				in[k] = make([]float32, nx+2)
				if k == 4 {
					continue // a padding row
				}
				for x := 1; x <= nx; x++ {
					in[k][x] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(6)-3)))
				}
			}
			w := randSlice(r, 27*co)
			got, want := make([]float32, nx*co), make([]float32, nx*co)
			conv1Asm = true
			Conv1Row(got, &in, w, nx, co)
			conv1Asm = false
			Conv1Row(want, &in, w, nx, co)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("nx=%d co=%d: out[%d] = %v, Go %v", nx, co, i, got[i], want[i])
				}
			}
			for x := 0; x < nx; x++ {
				for j := 0; j < co; j++ {
					var s, m float64
					for p := 0; p < 27; p++ {
						v := float64(in[p/3][x+p%3]) * float64(w[p*co+j])
						s += v
						m += math.Abs(v)
					}
					if d := math.Abs(float64(want[x*co+j]) - s); d > 1e-6*m+1e-30 {
						t.Fatalf("nx=%d co=%d: out[%d][%d] = %v, want %v", nx, co, x, j, want[x*co+j], s)
					}
				}
			}
		}
	}
}

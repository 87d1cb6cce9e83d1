package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// TestWinogradBF16Pairs: in BF16 precision the Winograd conv whose input
// transform writes bfloat16 pairs (kernels.WinoInBF16, read in place by
// kernels.SgemmPackedPairs) gives the same bits as the float32 V converted
// in the GEMM: forward, input gradient (the same path with the flipped
// kernel) and weight gradient, on both schedules, channel counts that are
// multiples of 8, even ones with a Go tail (6, 12), and odd ones (5, 13:
// the float32 V path, unchanged), one and two threads.
func TestWinogradBF16Pairs(t *testing.T) {
	if !kernels.HasBF16() {
		t.Skip("this CPU has no AVX-512-BF16: no bf16 precision here")
	}
	cases := []struct {
		n, d, h, w, ci, co int
		budget             int
	}{
		{1, 8, 8, 8, 8, 8, 1 << 20},
		{2, 7, 6, 5, 6, 4, 1 << 20},
		{1, 9, 8, 7, 16, 24, 20000},
		{2, 6, 6, 6, 13, 17, 9000},
		{1, 10, 9, 11, 32, 16, 1 << 20},
		{1, 5, 4, 6, 12, 33, 1 << 20},
		{1, 6, 6, 6, 5, 8, 1 << 20},
	}
	defer func(wm int) { winoWholeMaxBytes = wm }(winoWholeMaxBytes)
	defer func(m, b, wb, th int, w4 bool) {
		winoMinTiles, winoBlockBytes, winoWholeBytes = m, b, wb
		tensor.SetThreads(th)
		winoPairs, useWino4 = true, w4
		if err := kernels.SetPrecision(kernels.FP32); err != nil {
			t.Fatal(err)
		}
	}(winoMinTiles, winoBlockBytes, winoWholeBytes, tensor.Threads(), useWino4)
	if err := kernels.SetPrecision(kernels.BF16); err != nil {
		t.Fatal(err)
	}
	winoMinTiles, winoMinTiles4 = 1, 1
	defer func(m4 int) { winoMinTiles4 = m4 }(winoMinTiles4)
	for i, c := range cases {
		for _, sched := range []string{"whole", "blocked"} {
			for _, th := range []int{1, 2} {
				for _, m := range []int{2, 4} {
					useWino4 = m == 4
					t.Run(fmt.Sprint(i, sched, th, "F", m), func(t *testing.T) {
						rng := rand.New(rand.NewPCG(uint64(i), 17))
						x := randVar(rng, -1, 1, c.n, c.d, c.h, c.w, c.ci)
						w := randVar(rng, -1, 1, 3, 3, 3, c.ci, c.co)
						b := randVar(rng, -1, 1, c.co)
						gy := make([]float32, c.n*c.d*c.h*c.w*c.co)
						for j := range gy {
							gy[j] = float32(rng.Float64()*2 - 1)
						}
						spec := Same3D(1)
						winoBlockBytes, winoWholeBytes = c.budget, 1<<30
						winoWholeMaxBytes = 256 << 20
						if sched == "blocked" {
							winoWholeBytes, winoWholeMaxBytes = 0, 0
						}
						tensor.SetThreads(th)
						g := newConvGeom("test", x.Value.Shape, [3]int{3, 3, 3}, c.co, spec)
						if !g.winograd() || g.winoTile() != m {
							t.Fatalf("the F(%d,3) Winograd path does not apply", m)
						}
						winoPairs = false
						y0, gw0, gb0, gx0 := convAll(x, w, b, spec, gy)
						winoPairs = true
						y1, gw1, gb1, gx1 := convAll(x, w, b, spec, gy)
						for _, p := range []struct {
							name string
							a, b []float32
						}{{"y", y1, y0}, {"dW", gw1, gw0}, {"db", gb1, gb0}, {"dX", gx1, gx0}} {
							for j := range p.a {
								if math.Float32bits(p.a[j]) != math.Float32bits(p.b[j]) {
									t.Fatalf("%s: pairs %v, float32 V %v at %d", p.name, p.a[j], p.b[j], j)
								}
							}
						}
					})
				}
			}
		}
	}
}

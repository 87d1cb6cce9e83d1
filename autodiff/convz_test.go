package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// convAll returns the forward output, weight, bias and input gradients of
// Conv3D for a fixed output gradient.
func convAll(x, w, b *Var, spec ConvSpec, gy []float32) (y, gw, gb, gx []float32) {
	x.ZeroGrad()
	w.ZeroGrad()
	b.ZeroGrad()
	tp := NewTape()
	out := tp.Conv3D(x, w, b, spec)
	out.Grad = tensor.FromSlice(append([]float32(nil), gy...), out.Value.Shape...)
	tp.BackwardFrom()
	return out.Value.Data, append([]float32(nil), w.Grad.Data...), append([]float32(nil), b.Grad.Data...),
		append([]float32(nil), x.Grad.Data...)
}

func maxRelDiff(a, b []float32) float64 {
	scale, d := 0.0, 0.0
	for i := range a {
		scale = math.Max(scale, math.Abs(float64(b[i])))
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d / math.Max(scale, 1e-30)
}

// TestConvZSplitMatchesIm2col compares the z-split path (forward, weight
// and input gradient) with the one-GEMM im2col path on odd shapes: strides
// and padding on y/x, 'same' and 'valid', kernels 2–4 along z, small and
// large channel counts, and tiny tile budgets (many slabs and y bands).
func TestConvZSplitMatchesIm2col(t *testing.T) {
	type tc struct {
		n, d, h, w, ci, co int
		k                  [3]int
		spec               ConvSpec
		budget             int
	}
	cases := []tc{
		{2, 7, 6, 5, 3, 4, [3]int{3, 3, 3}, Same3D(1), 1 << 19},
		{1, 9, 8, 8, 8, 8, [3]int{3, 3, 3}, Same3D(1), 200},
		{2, 5, 7, 9, 2, 5, [3]int{3, 3, 3}, ConvSpec{Pad: [3]int{1, 1, 1}}, 700},
		{1, 6, 5, 4, 5, 3, [3]int{2, 3, 2}, ConvSpec{}, 1 << 19},
		{1, 8, 9, 7, 4, 6, [3]int{4, 3, 3}, ConvSpec{Stride: [3]int{1, 2, 2}, Pad: [3]int{2, 1, 0}}, 300},
		{1, 4, 4, 4, 40, 33, [3]int{3, 3, 3}, Same3D(1), 1 << 19},
		{3, 3, 2, 3, 2, 2, [3]int{3, 1, 3}, ConvSpec{Pad: [3]int{2, 0, 1}}, 50},
		{1, 10, 3, 3, 6, 2, [3]int{3, 3, 3}, Same3D(1), 1},
		// weight strips (co a multiple of 16 above 16)
		{1, 5, 6, 7, 12, 32, [3]int{3, 3, 3}, Same3D(1), 1 << 19},
		{2, 4, 5, 5, 3, 48, [3]int{3, 3, 3}, Same3D(1), 400},
	}
	defer func(b int) { zTileElems = b }(zTileElems)
	defer func() { useWinograd = true }()
	useWinograd = false
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			x := randVar(rng, -1, 1, c.n, c.d, c.h, c.w, c.ci)
			w := randVar(rng, -1, 1, c.k[0], c.k[1], c.k[2], c.ci, c.co)
			b := randVar(rng, -1, 1, c.co)
			var none *Tape
			ys := none.Conv3D(x, w, b, c.spec).Value.Shape
			gy := make([]float32, tensor.Numel(ys))
			for j := range gy {
				gy[j] = float32(rng.Float64()*2 - 1)
			}
			zTileElems = c.budget
			useZSplit = false
			y0, gw0, gb0, gx0 := convAll(x, w, b, c.spec, gy)
			useZSplit = true
			y1, gw1, gb1, gx1 := convAll(x, w, b, c.spec, gy)
			for _, p := range []struct {
				name string
				a, b []float32
			}{{"y", y1, y0}, {"dW", gw1, gw0}, {"db", gb1, gb0}, {"dX", gx1, gx0}} {
				if d := maxRelDiff(p.a, p.b); d > 1e-5 {
					t.Errorf("%s: z-split vs im2col max relative difference %.3g", p.name, d)
				}
			}
			// deterministic: same bits on a rerun
			y2, gw2, _, gx2 := convAll(x, w, b, c.spec, gy)
			for j := range y2 {
				if y2[j] != y1[j] {
					t.Fatalf("forward not bit-identical on rerun at %d", j)
				}
			}
			for j := range gw2 {
				if gw2[j] != gw1[j] {
					t.Fatalf("dW not bit-identical on rerun at %d", j)
				}
			}
			for j := range gx2 {
				if gx2[j] != gx1[j] {
					t.Fatalf("dX not bit-identical on rerun at %d", j)
				}
			}
		})
	}
}

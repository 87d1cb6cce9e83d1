package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGradSoftmax checks Softmax's backward against finite differences
// along the last axis (the model's channel axis), a middle axis and a
// single-element axis (output 1, gradient 0 everywhere).
func TestGradSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 7))
	x := randVar(rng, -3, 3, 2, 3, 2, 2, 5)
	gradCheck(t, "Softmax last axis", []*Var{x}, func(tp *Tape) *Var { return tp.Softmax(x, 4) }, 1e-2, 1e-3, 1e-2)
	gradCheck(t, "Softmax axis -1", []*Var{x}, func(tp *Tape) *Var { return tp.Softmax(x, -1) }, 1e-2, 1e-3, 1e-2)
	z := randVar(rng, -3, 3, 3, 4, 2)
	gradCheck(t, "Softmax middle axis", []*Var{z}, func(tp *Tape) *Var { return tp.Softmax(z, 1) }, 1e-2, 1e-3, 1e-2)
	// Through a non-linear consumer (so Σ g·y is not trivially constant).
	gradCheck(t, "Square∘Softmax", []*Var{x}, func(tp *Tape) *Var { return tp.Square(tp.Softmax(x, 4)) }, 1e-2, 1e-3, 1e-2)
}

// TestSoftmaxValues compares with exp(LogSoftmax) and checks stability on
// large logits and the sum-to-one property.
func TestSoftmaxValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := randVar(rng, -20, 20, 4, 3, 6)
	x.Value.Data[0], x.Value.Data[1] = 1e4, -1e4 // would overflow exp without the max shift
	var none *Tape
	y := none.Softmax(x, 2).Value.Data
	ls := none.LogSoftmax(x, 2).Value.Data
	for i, v := range y {
		if math.IsNaN(float64(v)) || v < 0 || v > 1 {
			t.Fatalf("softmax[%d] = %v", i, v)
		}
		if d := math.Abs(float64(v) - math.Exp(float64(ls[i]))); d > 1e-6 {
			t.Errorf("softmax[%d] = %v, exp(log_softmax) %v", i, v, math.Exp(float64(ls[i])))
		}
	}
	for r := 0; r < len(y)/6; r++ {
		s := 0.0
		for _, v := range y[r*6 : r*6+6] {
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("row %d sums to %v", r, s)
		}
	}
	if y[0] != 1 || y[1] != 0 {
		t.Errorf("saturated row: %v %v", y[0], y[1])
	}
	one := none.Softmax(randVar(rng, -1, 1, 3, 1), 1).Value.Data
	for _, v := range one {
		if v != 1 {
			t.Errorf("softmax over one element = %v", v)
		}
	}
}

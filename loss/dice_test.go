package loss

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

func TestDiceValues(t *testing.T) {
	c := func(v []float32, shape ...int) *autodiff.Var { return autodiff.Const(tensor.FromSlice(v, shape...)) }
	// p = [0.5, 1, 0, 0.25], y = [1, 1, 0, 0] (two samples of 2 voxels):
	// Σyp = 1.5, Σy = 2, Σp = 1.75 → 1 − (3+ε)/(3.75+ε).
	p := c([]float32{0.5, 1, 0, 0.25}, 2, 2)
	y := c([]float32{1, 1, 0, 0}, 2, 2)
	got := float64(Dice(nil, p, y, DiceEps).Item())
	want := 1 - (3+1e-5)/(3.75+1e-5)
	if math.Abs(got-want) > 1e-7 {
		t.Errorf("Dice = %.8f, want %.8f", got, want)
	}
	// Per sample: sample 0: 1 − (3+ε)/(3.5+ε); sample 1: Σy = 0, Σyp = 0,
	// Σp = 0.25 → 1 − ε/(0.25+ε).
	got = float64(DicePerSample(nil, p, y, DiceEps).Item())
	want = 1 - ((3+1e-5)/(3.5+1e-5)+1e-5/(0.25+1e-5))/2
	if math.Abs(got-want) > 1e-7 {
		t.Errorf("DicePerSample = %.8f, want %.8f", got, want)
	}
	// Perfect and both-empty predictions give 0.
	if v := Dice(nil, y, y, DiceEps).Item(); v != 0 {
		t.Errorf("perfect prediction: %g", v)
	}
	z := c([]float32{0, 0}, 1, 2)
	if v := Dice(nil, z, z, DiceEps).Item(); v != 0 {
		t.Errorf("both empty: %g", v)
	}
}

// TestDiceGradient checks dL/dp = −(2y·D − 2I)/D² (D = Σy+Σp+ε,
// I = Σyp+ε/2) against the tape.
func TestDiceGradient(t *testing.T) {
	pv := []float32{0.2, 0.9, 0.4, 0.7, 0.1, 0.6}
	yv := []float32{0, 1, 1, 1, 0, 0}
	p := autodiff.NewParam("p", tensor.FromSlice(pv, 2, 3))
	y := autodiff.Const(tensor.FromSlice(yv, 2, 3))
	tp := autodiff.NewTape()
	tp.Backward(Dice(tp, p, y, DiceEps))
	var sy, sp, syp float64
	for i := range pv {
		sy += float64(yv[i])
		sp += float64(pv[i])
		syp += float64(yv[i] * pv[i])
	}
	D := sy + sp + 1e-5
	N := 2*syp + 1e-5
	for i := range pv {
		want := -(2*float64(yv[i])*D - N) / (D * D)
		if math.Abs(float64(p.Grad.Data[i])-want) > 1e-6 {
			t.Errorf("grad[%d] = %g, want %g", i, p.Grad.Data[i], want)
		}
	}
}

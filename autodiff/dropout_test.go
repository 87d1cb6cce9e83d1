package autodiff

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

func TestDropoutStatistics(t *testing.T) {
	x := Const(tensor.Full(1, 100000))
	r := NewRNG(3)
	y := (*Tape)(nil).Dropout(x, 0.2, true, r)
	zeros, sum := 0, 0.0
	for _, v := range y.Value.Data {
		if v == 0 {
			zeros++
		} else if math.Abs(float64(v)-1.25) > 1e-6 {
			t.Fatalf("kept value %g, want 1/(1-p) = 1.25", v)
		}
		sum += float64(v)
	}
	if f := float64(zeros) / 1e5; math.Abs(f-0.2) > 0.005 {
		t.Errorf("dropped fraction %.4f, want 0.2", f)
	}
	if m := sum / 1e5; math.Abs(m-1) > 0.01 {
		t.Errorf("mean %.4f, want 1 (inverted dropout)", m)
	}
	if r.Counter != 1 {
		t.Errorf("counter %d after one draw", r.Counter)
	}
	// Same (seed, counter) → same mask, whatever the thread count;
	// the next draw differs.
	old := tensor.SetThreads(1)
	y1 := (*Tape)(nil).Dropout(x, 0.2, true, &RNG{Seed: 3, Counter: 0})
	tensor.SetThreads(old)
	y2 := (*Tape)(nil).Dropout(x, 0.2, true, r)
	same1, same2 := true, true
	for i := range y.Value.Data {
		same1 = same1 && y1.Value.Data[i] == y.Value.Data[i]
		same2 = same2 && y2.Value.Data[i] == y.Value.Data[i]
	}
	if !same1 || same2 {
		t.Errorf("mask reproducible: %v (want true); next draw equal: %v (want false)", same1, same2)
	}
	// Inference is the identity and draws nothing.
	if z := (*Tape)(nil).Dropout(x, 0.2, false, r); z != x || r.Counter != 2 {
		t.Error("inference dropout must return its input unchanged")
	}
}

func TestNilTapeRecordsNothing(t *testing.T) {
	w := NewParam("w", tensor.Full(0.5, 3, 3, 3, 1, 2))
	x := Const(tensor.Full(1, 1, 4, 4, 4, 1))
	var none *Tape
	y := none.ReLU(none.Conv3D(x, w, nil, Same3D(1)))
	if y.RequiresGrad || none.Len() != 0 {
		t.Error("nil tape produced a differentiable result")
	}
	tp := NewTape()
	y2 := tp.ReLU(tp.Conv3D(x, w, nil, Same3D(1)))
	if !y2.RequiresGrad || tp.Len() != 2 {
		t.Errorf("tape recorded %d ops", tp.Len())
	}
	for i := range y.Value.Data {
		if y.Value.Data[i] != y2.Value.Data[i] {
			t.Fatal("no-grad and taped forward differ")
		}
	}
	// Ops on constants alone are not recorded.
	tp.Reset()
	tp.Exp(x)
	if tp.Len() != 0 {
		t.Error("op on constants was recorded")
	}
}

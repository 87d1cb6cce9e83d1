package optim

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// TestEMAHandComputed: the average starts at the live values and follows
// avg ← d·avg + (1−d)·live, checked against values worked out by hand
// (exact in float32).
func TestEMAHandComputed(t *testing.T) {
	live := []*tensor.Tensor{tensor.FromSlice([]float32{1, 2}, 2), tensor.FromSlice([]float32{-4}, 1)}
	avg := []*tensor.Tensor{tensor.New(2), tensor.New(1)}
	e, err := NewEMA(0.75, avg, live)
	if err != nil {
		t.Fatal(err)
	}
	check := func(want ...float32) {
		t.Helper()
		got := append(append([]float32(nil), avg[0].Data...), avg[1].Data...)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("after %d updates: %v, want %v", e.Steps, got, want)
			}
		}
	}
	check(1, 2, -4)
	copy(live[0].Data, []float32{3, -2})
	live[1].Data[0] = 4
	e.Update() // 0.75·1 + 0.25·3, 0.75·2 + 0.25·(−2), 0.75·(−4) + 0.25·4
	check(1.5, 1, -2)
	copy(live[0].Data, []float32{5, 0})
	e.Update() // 0.75·1.5 + 0.25·5, 0.75·1 + 0, 0.75·(−2) + 0.25·4
	check(2.375, 0.75, -0.5)
	if e.Steps != 2 {
		t.Fatalf("steps %d", e.Steps)
	}
	// Decay 0: the average is the live value.
	z, _ := NewEMA(0, []*tensor.Tensor{tensor.New(1)}, []*tensor.Tensor{tensor.FromSlice([]float32{7}, 1)})
	z.live[0].Data[0] = 9
	z.Update()
	if z.avg[0].Data[0] != 9 {
		t.Fatalf("decay 0: %v", z.avg[0].Data[0])
	}
	for _, bad := range []float64{1, 1.5, -0.1, math.NaN()} {
		if _, err := NewEMA(bad, avg, live); err == nil {
			t.Errorf("decay %v accepted", bad)
		}
	}
	if _, err := NewEMA(0.5, avg[:1], live); err == nil {
		t.Error("mismatched tensor counts accepted")
	}
	if _, err := NewEMA(0.5, []*tensor.Tensor{tensor.New(3), tensor.New(1)}, live); err == nil {
		t.Error("mismatched shapes accepted")
	}
}

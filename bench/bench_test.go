package bench

import (
	"testing"
)

// TestAnalyticFLOPsMatchPeer compares with the peer's analytic_flops
// (bench/peer/torch_unet3d.py, itself checked there against forward hooks).
func TestAnalyticFLOPsMatchPeer(t *testing.T) {
	want := map[string][2]int64{
		"a": {1771569152, 28311552},
		"b": {29842472960, 226492416},
		"c": {15038676992, 226492416},
		"d": {118900129792, 452984832},
	}
	for _, c := range Configs {
		f, first := AnalyticFLOPs(c.N, c.S, c.F, c.L)
		if w := want[c.Name]; f != w[0] || first != w[1] {
			t.Errorf("config %s: FLOPs (%d, %d), peer (%d, %d)", c.Name, f, first, w[0], w[1])
		}
	}
	if got, want := TrainFLOPs(2, 32, 8, 3), int64(4*1771569152-28311552); got != want {
		t.Errorf("TrainFLOPs = %d, want %d", got, want)
	}
}

// TestRunTiny runs a tiny training configuration end to end and checks the
// result's bookkeeping (medians, sample counts, loss finite and moving).
func TestRunTiny(t *testing.T) {
	for _, train := range []bool{true, false} {
		c := Config{Name: "tiny", N: 1, S: 8, F: 2, L: 1, Train: train}
		r, err := Run(c, Options{Warmup: 1, Iters: 3, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.StepAll) != 3 || r.StepMedian <= 0 || r.FwdMedian <= 0 || r.GFLOPs <= 0 || r.PeakRSSMiB <= 0 {
			t.Fatalf("train=%v: bad result %+v", train, r)
		}
		if train {
			if r.LossFirst == r.LossLast || r.LossLast != r.LossLast || len(r.Phases) != 4 {
				t.Errorf("loss %v -> %v, phases %v", r.LossFirst, r.LossLast, r.Phases)
			}
		} else if r.StepMedian != r.FwdMedian {
			t.Errorf("forward-only: step %v != forward %v", r.StepMedian, r.FwdMedian)
		}
	}
}

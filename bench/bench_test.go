package bench

import (
	"slices"
	"strings"
	"testing"

	"github.com/fess-seg/fess/model"
)

// TestAnalyticFLOPsMatchPeer compares with the peer's analytic_flops
// (bench/peer/torch_unet3d.py, itself checked there against forward hooks).
func TestAnalyticFLOPsMatchPeer(t *testing.T) {
	want := map[string][2]int64{
		"a": {1771569152, 28311552},
		"b": {29842472960, 226492416},
		"c": {15038676992, 226492416},
		"d": {118900129792, 452984832},
		// analytic_flops(5, 64, 32, 4, enc_convs=1, cb=1024), the peer's config s
		"s": {475130757120, 2264924160},
	}
	for _, c := range Configs {
		f, first := c.FLOPs()
		if !c.Seed {
			if f2, first2 := AnalyticFLOPs(c.N, c.S, c.F, c.L); f2 != f || first2 != first {
				t.Errorf("config %s: AnalyticFLOPs (%d, %d) != Config.FLOPs (%d, %d)", c.Name, f2, first2, f, first)
			}
		}
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("config %s: no peer FLOP count to compare with", c.Name)
		}
		if f != w[0] || first != w[1] {
			t.Errorf("config %s: FLOPs (%d, %d), peer (%d, %d)", c.Name, f, first, w[0], w[1])
		}
	}
	if got, want := TrainFLOPs(2, 32, 8, 3), int64(4*1771569152-28311552); got != want {
		t.Errorf("TrainFLOPs = %d, want %d", got, want)
	}
	s, _ := Lookup("s")
	if got, want := s.TrainFLOPs(), int64(4*475130757120-2264924160); got != want {
		t.Errorf("config s: TrainFLOPs = %d, want %d", got, want)
	}
}

// TestNetworksMatchPeer builds each configuration's network and compares
// its parameter count with the peer's (sum of numel over
// model.parameters() in bench/peer/torch_unet3d.py) and, for s, the sorted
// sizes of every parameter tensor (layer by layer: the same convs,
// BatchNorms and transposed convs, whatever the naming and order).
func TestNetworksMatchPeer(t *testing.T) {
	want := map[string]int{"a": 351161, "b": 5647857, "c": 1413241, "d": 22581217, "s": 46054913}
	// sorted(p.numel() for p in SeedUNet(1, 1, 32, 4, 1024).parameters())
	sSizes := []int{1, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 64, 64, 64, 64, 64, 64, 64, 64,
		64, 64, 64, 64, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 256, 256, 256, 256, 256,
		256, 256, 256, 256, 256, 256, 256, 864, 1024, 1024, 1024, 1024, 1024, 1024, 16384, 27648, 55296,
		55296, 65536, 110592, 221184, 221184, 262144, 442368, 884736, 884736, 1769472, 2097152, 3538944,
		7077888, 28311552}
	for _, c := range Configs {
		m, err := model.New(c.ModelConfig())
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		n := 0
		for _, p := range m.Params() {
			sizes = append(sizes, p.Value.Len())
			n += p.Value.Len()
		}
		if n != want[c.Name] {
			t.Errorf("config %s: %d parameters, peer %d", c.Name, n, want[c.Name])
		}
		if c.Seed {
			slices.Sort(sizes)
			if !slices.Equal(sizes, sSizes) {
				t.Errorf("config %s: parameter sizes %v, peer %v", c.Name, sizes, sSizes)
			}
			if m.Cfg.Dropout != 0.2 || m.Cfg.NoUpBN || m.BottleneckChannels() != 1024 {
				t.Errorf("config %s: dropout %g, NoUpBN %v, Cb %d; the peer has 0.2, up-conv BatchNorm, 1024",
					c.Name, m.Cfg.Dropout, m.Cfg.NoUpBN, m.BottleneckChannels())
			}
		}
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

// TestRunMemory runs the one-step memory check on tiny configurations: one
// step, no forward-only timing for training configurations, the pool's
// accounting filled in and printed.
func TestRunMemory(t *testing.T) {
	for _, c := range []Config{
		{Name: "tiny", N: 1, S: 8, F: 2, L: 1, Train: true},
		{Name: "tinyseed", N: 2, S: 8, F: 2, L: 1, Train: true, Seed: true, Cb: 8},
		{Name: "tinyfwd", N: 1, S: 8, F: 2, L: 1},
	} {
		r, err := Run(c, Options{Warmup: 3, Iters: 4, Threads: 1, Gate: true, Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Memory || r.StepAttempts != 1 || len(r.StepAll) != 1 || r.PeakRSSMiB <= 0 || r.PoolPeakMiB <= 0 ||
			r.PoolTotalMiB < r.PoolPeakMiB || r.HeapInuseMiB <= 0 || r.GoSysMiB < r.HeapInuseMiB {
			t.Errorf("%s: bad memory result %+v", c.Name, r)
		}
		if c.Train && (r.FwdAttempts != 0 || r.LossFirst != r.LossLast || len(r.Phases) != 4) {
			t.Errorf("%s: forward timed (%d) or more than one step (loss %v -> %v)", c.Name, r.FwdAttempts,
				r.LossFirst, r.LossLast)
		}
		if !c.Train && r.FwdAttempts != 1 {
			t.Errorf("%s: %d forwards, want 1", c.Name, r.FwdAttempts)
		}
		if s := r.String(); !strings.Contains(s, "peak RSS") || !strings.Contains(s, "pool peak live") {
			t.Errorf("%s: line %q", c.Name, s)
		}
	}
}

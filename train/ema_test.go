package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// emaSnapshot copies m's averaged tensors (weights, BatchNorm statistics).
func emaSnapshot(tr *Trainer) [][]float32 {
	_, ts := emaTensors(tr.Model)
	out := make([][]float32, len(ts))
	for i, x := range ts {
		out[i] = append([]float32(nil), x.Data...)
	}
	return out
}

// TestEMAHandComputed trains a tiny model one epoch (3 steps) with --ema
// 0.9 and checks every averaged weight and BatchNorm statistic against the
// recursion a₀ = w₀, aₖ = 0.9·aₖ₋₁ + 0.1·wₖ worked out from the live
// values seen after each step; ema.safetensors holds the result under the
// state_dict names and loads with LoadModelCheckpoint(run, "ema"); the log
// has val_dice_ema; a run without EMA is refused for "ema".
func TestEMAHandComputed(t *testing.T) {
	cfg := tinyConfig(tinyData(t), "dice")
	cfg.Epochs, cfg.EMA = 1, 0.9
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := [][][]float32{emaSnapshot(tr)}
	if _, err := tr.Run(Options{afterStep: func(tr *Trainer) { w = append(w, emaSnapshot(tr)) }}); err != nil {
		t.Fatal(err)
	}
	if len(w) != 4 || tr.emaAvg.Steps != 3 {
		t.Fatalf("%d snapshots, %d EMA updates; want 4 and 3", len(w), tr.emaAvg.Steps)
	}
	names, avg := emaTensors(tr.ema)
	d, od := float32(0.9), float32(0.1)
	moved := false
	for i, a := range avg {
		for j, got := range a.Data {
			want := w[0][i][j]
			for k := 1; k < 4; k++ {
				want = float32(d*want) + float32(od*w[k][i][j])
			}
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s[%d]: EMA %v, hand-computed %v", names[i], j, got, want)
			}
			if got != w[3][i][j] {
				moved = true
			}
		}
	}
	if !moved {
		t.Fatal("the EMA equals the live weights")
	}
	// ema.safetensors: the EMA model, under the state_dict names.
	ep := filepath.Join(tr.Out, EMACheckpoint)
	got := paramsOf(t, ep)
	for _, nt := range tr.ema.TorchTensors() {
		if nt.Data == nil {
			continue
		}
		g, ok := got[nt.Name]
		if !ok || len(g) != len(nt.Data) {
			t.Fatalf("ema.safetensors lacks %s", nt.Name)
		}
		for i := range g {
			if math.Float32bits(g[i]) != math.Float32bits(nt.Data[i]) {
				t.Fatalf("ema.safetensors %s[%d] differs", nt.Name, i)
			}
		}
	}
	m, _, err := LoadModelCheckpoint(tr.Out, "ema")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := tr.validateCube(m)
	d2, _ := tr.validateCube(tr.ema)
	if d1 != d2 {
		t.Fatalf("loaded EMA model validates %v, trained one %v", d1, d2)
	}
	l := readLog(t, tr.Out)
	if v, ok := l[0]["val_dice_ema"].(float64); !ok || v != d2 {
		t.Fatalf("log val_dice_ema %v, want %v", l[0]["val_dice_ema"], d2)
	}
	if _, _, err := LoadModelCheckpoint(tr.Out, "last"); err != nil {
		t.Fatal(err)
	}
	// A new run may start from the EMA weights (a fess checkpoint as
	// --init: its state_dict part only).
	icfg := cfg
	icfg.EMA, icfg.InitFrom = 0, ep
	it, err := New(icfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, nt := range it.Model.TorchTensors() {
		if want := tr.ema.TorchTensors()[i]; nt.Name != want.Name || !slices.Equal(nt.Data, want.Data) {
			t.Fatalf("--init ema.safetensors: %s differs", nt.Name)
		}
	}

	// A run without EMA: no ema.safetensors, no val_dice_ema, and "ema"
	// is an input error (exit 2) saying the run has none.
	cfg.EMA = 0
	plain := runTo(t, cfg, t.TempDir(), Options{})
	if exists(filepath.Join(plain.Out, EMACheckpoint)) {
		t.Fatal("ema.safetensors without --ema")
	}
	if _, ok := readLog(t, plain.Out)[0]["val_dice_ema"]; ok {
		t.Fatal("val_dice_ema without --ema")
	}
	_, _, err = LoadModelCheckpoint(plain.Out, "ema")
	if err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "no EMA") {
		t.Fatalf("ema of a run without EMA: %v", err)
	}
	if _, _, err = LoadModelCheckpoint(plain.Out, "mean"); err == nil || !isUsage(err) || !strings.Contains(err.Error(), `"mean"`) {
		t.Fatalf("bad checkpoint choice: %v", err)
	}
	// Resuming the EMA-less checkpoint with --ema is refused (no state).
	cfg.EMA, cfg.Epochs = 0.9, 2
	if _, err := New(cfg, plain.Out, Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "EMA") {
		t.Fatalf("resuming a run without EMA state with EMA: %v", err)
	}
}

// recipeConfig is the combination the CI requires to resume bit for bit:
// cosine schedule with one warm-up epoch, cube augmentation, EMA 0.99.
func recipeConfig(data string) Config {
	c := tinyConfig(data, "fess")
	on := true
	c.LRSchedule, c.WarmupEpochs, c.Augment, c.EMA = "cosine", 1, &on, 0.99
	return c
}

// TestKillResumeScheduleEMABitIdentical is TestKillResumeBitIdentical for
// --lr-schedule cosine --warmup-epochs 1 --augment --ema 0.99: killed with
// SIGKILL in the middle of epoch 2 and resumed, the run's last checkpoint
// (weights, optimiser, EMA state), ema.safetensors and log (but the
// seconds) equal an uninterrupted run's bit for bit.
func TestKillResumeScheduleEMABitIdentical(t *testing.T) {
	if os.Getenv("FESS_KILL_RECIPE_CHILD") != "" {
		opts := Options{killAtStep: 5} // 3 steps per epoch: step 5 is mid epoch 2
		tr, err := New(recipeConfig(os.Getenv("FESS_KILL_DATA")), os.Getenv("FESS_KILL_OUT"), opts)
		if err != nil {
			t.Fatal(err)
		}
		tr.Run(opts)
		t.Fatal("training was not killed")
	}
	data := tinyData(t)
	dir := t.TempDir()
	full, killed := filepath.Join(dir, "full"), filepath.Join(dir, "killed")
	runTo(t, recipeConfig(data), full, Options{})
	runKilledChild(t, "TestKillResumeScheduleEMABitIdentical", "FESS_KILL_RECIPE_CHILD=1", "FESS_KILL_DATA="+data, "FESS_KILL_OUT="+killed)
	tr, err := New(recipeConfig(data), killed, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if tr.epoch != 1 || tr.step != 3 || tr.emaAvg.Steps != 3 {
		t.Fatalf("resumed at epoch %d step %d EMA step %d, want 1, 3, 3", tr.epoch, tr.step, tr.emaAvg.Steps)
	}
	if _, err := tr.Run(Options{}); err != nil {
		t.Fatal(err)
	}
	a, b := paramsOf(t, filepath.Join(full, LastCheckpoint)), paramsOf(t, filepath.Join(killed, LastCheckpoint))
	if _, ok := a["ema/param/"+tr.Model.Params()[0].Name]; !ok {
		t.Fatal("the last checkpoint holds no EMA weights")
	}
	sameBits(t, a, b)
	sameBits(t, paramsOf(t, filepath.Join(full, EMACheckpoint)), paramsOf(t, filepath.Join(killed, EMACheckpoint)))
	la, lb := readLog(t, full), readLog(t, killed)
	if len(la) != 3 || len(lb) != 3 {
		t.Fatalf("log lines: uninterrupted %d, resumed %d; want 3", len(la), len(lb))
	}
	for i := range la {
		delete(la[i], "seconds")
		delete(lb[i], "seconds")
		ja, _ := json.Marshal(la[i])
		jb, _ := json.Marshal(lb[i])
		if !bytes.Equal(ja, jb) {
			t.Fatalf("epoch %d logs differ:\n%s\n%s", i+1, ja, jb)
		}
		if _, ok := la[i]["val_dice_ema"]; !ok {
			t.Fatalf("epoch %d: no val_dice_ema", i+1)
		}
	}
	if la[0]["lr"].(float64) != 5e-4 || la[1]["lr"].(float64) != 1e-3 {
		t.Fatalf("lr %v, %v: want warm-up 5e-4 then 1e-3", la[0]["lr"], la[1]["lr"])
	}
}

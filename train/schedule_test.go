package train

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEpochLR checks each schedule at chosen epochs against the closed
// forms of schedule.go, worked out by hand.
func TestEpochLR(t *testing.T) {
	for _, c := range []struct {
		sched        string
		lr           float64
		epochs, warm int
		epoch        int
		want         float64
	}{
		{"constant", 0.01, 10, 0, 1, 0.01},
		{"constant", 0.01, 10, 0, 10, 0.01},
		{"poly", 1, 10, 0, 1, 1},                                    // t = 0
		{"poly", 1, 10, 0, 6, math.Pow(0.5, 0.9)},                   // t = 5, T = 10: 0.5^0.9
		{"poly", 1, 10, 0, 10, math.Pow(0.1, 0.9)},                  // t = 9: (1/10)^0.9
		{"poly", 2, 4, 0, 3, 2 * 0.5358867312681466},                // t = 2, T = 4: 2·0.5^0.9
		{"cosine", 1, 10, 0, 1, 1},                                  // cos 0 = 1
		{"cosine", 1, 10, 0, 6, 0.5},                                // cos(π/2) = 0
		{"cosine", 1, 10, 0, 10, 0.5 * (1 + math.Cos(0.9*math.Pi))}, // 0.0244717…
		{"cosine", 1, 10, 0, 10, 0.024471741852423234},
		{"cosine", 1, 12, 2, 1, 1.0 / 3}, // warm-up: (0+1)/(2+1)
		{"cosine", 1, 12, 2, 2, 2.0 / 3}, // (1+1)/(2+1)
		{"cosine", 1, 12, 2, 3, 1},       // first decay epoch: t = 0
		{"cosine", 1, 12, 2, 8, 0.5},     // t = 5, T = 10
		{"poly", 1, 12, 2, 8, math.Pow(0.5, 0.9)},
		{"constant", 0.3, 5, 1, 1, 0.15}, // warm-up before a constant rate
		{"constant", 0.3, 5, 1, 2, 0.3},
	} {
		cfg := Config{LR: c.lr, Epochs: c.epochs, WarmupEpochs: c.warm, LRSchedule: c.sched}
		if got := cfg.EpochLR(c.epoch); math.Abs(got-c.want) > 1e-12*math.Max(1, c.want) {
			t.Errorf("%s lr %g E %d W %d epoch %d: %.15g, want %.15g", c.sched, c.lr, c.epochs, c.warm, c.epoch, got, c.want)
		}
	}
	// Every rate of a schedule is positive and, after warm-up, never rises.
	for _, s := range Schedules {
		cfg := Config{LR: 1, Epochs: 20, WarmupEpochs: 3, LRSchedule: s}
		prev := 0.0
		for e := 1; e <= 20; e++ {
			lr := cfg.EpochLR(e)
			if !(lr > 0 && lr <= 1) || (e <= 4 && lr <= prev) || (e > 4 && lr > prev) {
				t.Fatalf("%s epoch %d: lr %g after %g", s, e, lr, prev)
			}
			prev = lr
		}
	}
}

// TestScheduleConfigErrors: bad schedule, warm-up and EMA values are usage
// errors naming the flag, the config field and the value.
func TestScheduleConfigErrors(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want []string
	}{
		{func(c *Config) { c.LRSchedule = "step" }, []string{"--lr-schedule", "lr_schedule", `"step"`}},
		{func(c *Config) { c.LRSchedule = "Cosine" }, []string{"--lr-schedule", `"Cosine"`}},
		{func(c *Config) { c.WarmupEpochs = -1 }, []string{"--warmup-epochs", "warmup_epochs", "-1"}},
		{func(c *Config) { c.WarmupEpochs = 3 }, []string{"--warmup-epochs 3", "--epochs 3"}},
		{func(c *Config) { c.EMA = 1 }, []string{"--ema 1", "ema", "[0, 1)"}},
		{func(c *Config) { c.EMA = -0.5 }, []string{"--ema -0.5"}},
		{func(c *Config) { c.EMA = math.NaN() }, []string{"--ema NaN"}},
		{func(c *Config) { c.EMA = 1.5 }, []string{"--ema 1.5"}},
	} {
		cfg := tinyConfig("d", "dice")
		c.set(&cfg)
		err := cfg.Defaults().Validate()
		if err == nil || !isUsage(err) {
			t.Errorf("%+v: error %v, want a usage error", c.want, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	}
	for _, ok := range []func(*Config){
		func(c *Config) { c.LRSchedule = "poly"; c.WarmupEpochs = 2 },
		func(c *Config) { c.LRSchedule = "cosine" },
		func(c *Config) { c.EMA = 0.999 },
		func(c *Config) { c.EMA = 0 },
	} {
		cfg := tinyConfig("d", "dice")
		ok(&cfg)
		if err := cfg.Defaults().Validate(); err != nil {
			t.Errorf("valid config refused: %v", err)
		}
	}
}

// TestOldConfigSchedule: a config.json written before the fields existed
// loads as constant, no warm-up, no EMA, and every epoch runs at lr.
func TestOldConfigSchedule(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	old := `{"data":"d","loss":"dice","pairing":"previous-batch","model":{"Preset":"unet3d"},"epochs":4,"batch":2,"lr":0.002,"seed":5,"train_cases":0,"val_every":1,"clip_norm":1,"weight_decay":0,"decoupled_weight_decay":false,"lambda":0.5,"contrastive_scale":0.0001,"temperature":0.5,"projection_dim":128,"queue_len":64,"threads":1}`
	if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	c = c.Defaults()
	if c.LRSchedule != "constant" || c.WarmupEpochs != 0 || c.EMA != 0 {
		t.Fatalf("old config reads as schedule %q, warm-up %d, EMA %g", c.LRSchedule, c.WarmupEpochs, c.EMA)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for e := 1; e <= 4; e++ {
		if c.EpochLR(e) != 0.002 {
			t.Fatalf("epoch %d: lr %g", e, c.EpochLR(e))
		}
	}
}

// readLog returns log.jsonl's lines as maps.
func readLog(t *testing.T, run string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestScheduleTrains: a cosine run with warm-up logs each epoch's rate,
// the optimiser steps with it, and a constant run logs lr unchanged.
func TestScheduleTrains(t *testing.T) {
	data := tinyData(t)
	cfg := tinyConfig(data, "dice")
	cfg.LRSchedule, cfg.WarmupEpochs = "cosine", 1
	var seen []float64
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{afterStep: func(tr *Trainer) { seen = append(seen, tr.opt.LR) }}
	if _, err := tr.Run(opts); err != nil {
		t.Fatal(err)
	}
	// E 3, W 1: lr/2, then t = 0, 1 of T = 2: lr, lr/2.
	want := []float64{5e-4, 1e-3, 5e-4}
	logs := readLog(t, tr.Out)
	if len(logs) != 3 {
		t.Fatalf("%d log lines", len(logs))
	}
	for i, l := range logs {
		if math.Abs(l["lr"].(float64)-want[i]) > 1e-15 {
			t.Errorf("epoch %d: logged lr %v, want %g", i+1, l["lr"], want[i])
		}
		for s := 0; s < 3; s++ {
			if got := seen[i*3+s]; got != tr.Cfg.EpochLR(i+1) {
				t.Errorf("epoch %d step %d: Adam lr %g, want %g", i+1, s, got, tr.Cfg.EpochLR(i+1))
			}
		}
	}
	// Extending a decaying schedule is refused (T would change), naming the
	// field; a constant run may be extended.
	more := cfg
	more.Epochs = 5
	if _, err := New(more, tr.Out, Options{Resume: true}); err == nil || !isUsage(err) || !strings.Contains(err.Error(), "lr_schedule") {
		t.Fatalf("extending a cosine run: %v", err)
	}
	cfg2 := tinyConfig(data, "dice")
	cfg2.Epochs = 1
	tr2 := runTo(t, cfg2, t.TempDir(), Options{})
	if l := readLog(t, tr2.Out); l[0]["lr"].(float64) != 1e-3 {
		t.Fatalf("constant run logged lr %v", l[0]["lr"])
	}
	cfg2.Epochs = 2
	tr3, err := New(cfg2, tr2.Out, Options{Resume: true})
	if err != nil {
		t.Fatalf("extending a constant run: %v", err)
	}
	if _, err := tr3.Run(Options{}); err != nil {
		t.Fatal(err)
	}
}

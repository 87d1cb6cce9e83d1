package experiment

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/train"
)

// TestRecipeScheduleEMACheckpoint runs a tiny grid whose recipe uses a
// cosine schedule with warm-up, augmentation and EMA, tested on the EMA
// weights: every run's config.json carries the recipe, each test used
// ema.safetensors (its Dice equals fess test --checkpoint ema's), and a
// second Run skips every run without a job-record mismatch.
func TestRecipeScheduleEMACheckpoint(t *testing.T) {
	out := t.TempDir()
	f := tinyFile(out, 1)
	f.Losses, f.TrainSizes, f.Seeds = []string{"dice"}, []int{0}, []uint64{1}
	aug := true
	f.Train.Epochs, f.Train.LRSchedule, f.Train.WarmupEpochs, f.Train.EMA, f.Train.Augment, f.Train.TestCheckpoint = 2, "cosine", 1, 0.9, &aug, "ema"
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := Run(f, Options{Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	jobs, err := Plan(f, nil)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("plan: %d jobs, %v", len(jobs), err)
	}
	j := jobs[0]
	cfg, err := train.LoadConfig(filepath.Join(j.Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LRSchedule != "cosine" || cfg.WarmupEpochs != 1 || cfg.EMA != 0.9 || !cfg.Augmenting() {
		t.Fatalf("config.json: schedule %q warm-up %d EMA %g augment %v", cfg.LRSchedule, cfg.WarmupEpochs, cfg.EMA, cfg.Augmenting())
	}
	raw, _ := os.ReadFile(filepath.Join(j.Dir, jobFile))
	var cb bytes.Buffer
	if err := json.Compact(&cb, raw); err != nil {
		t.Fatal(err)
	}
	rec := cb.Bytes()
	for _, w := range []string{`"lr_schedule":"cosine"`, `"ema":0.9`, `"augment":true`, `"test_checkpoint":"ema"`} {
		if !strings.Contains(string(rec), w) {
			t.Errorf("job.json lacks %s: %s", w, rec)
		}
	}
	// The experiment's test equals an explicit test of the EMA weights.
	var got train.Summary
	data, _ := os.ReadFile(filepath.Join(j.TestDir(), "summary.json"))
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Checkpoint != "ema" {
		t.Errorf("summary.json checkpoint %q, want ema", got.Checkpoint)
	}
	sum, _, err := train.EvaluateRuns([]string{j.Dir}, "", filepath.Join(out, "check-ema"), train.InferOptions{Checkpoint: "ema"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Metrics["dice"].Mean != got.Metrics["dice"].Mean {
		t.Errorf("experiment test Dice %v, fess test --checkpoint ema %v", got.Metrics["dice"].Mean, sum.Metrics["dice"].Mean)
	}
	st, err := Run(f, Options{Log: &log})
	if err != nil || st.Skipped != 1 || st.Trained != 0 {
		t.Fatalf("second run: %+v, %v\n%s", st, err, log.String())
	}
}

func TestRecipeTestCheckpointValidation(t *testing.T) {
	for _, c := range []struct {
		ck   string
		ema  float64
		want string
	}{
		{"ema", 0, "without EMA"},
		{"mean", 0, `test_checkpoint "mean"`},
		{"last", 1.5, "ema"},
	} {
		f := tinyFile(t.TempDir(), 1)
		f.Train.TestCheckpoint, f.Train.EMA = c.ck, c.ema
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("test_checkpoint %q ema %g: %v, want an error naming %q", c.ck, c.ema, err, c.want)
		}
	}
	f := tinyFile(t.TempDir(), 1)
	f.Train.TestCheckpoint, f.Train.EMA, f.Train.LRSchedule = "last", 0.99, "poly"
	if err := f.Validate(); err != nil {
		t.Errorf("a valid recipe is refused: %v", err)
	}
}

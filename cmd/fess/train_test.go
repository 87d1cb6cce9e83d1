package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
	"github.com/fess-seg/fess/volume"
)

// TestTrainTestPredictCLI runs the user's path end to end on a tiny
// synthetic set: synth → prepare → train → test → predict, and checks the
// files each step promises.
func TestTrainTestPredictCLI(t *testing.T) {
	dir := t.TempDir()
	raw, prep, run := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run")
	steps := [][]string{
		{"synth", "--kind", "brain", "--cases", "8", "--size", "24", "--seed", "3", "--out", raw},
		{"prepare", "--in", raw, "--out", prep, "--size", "16", "--quiet"},
		{"train", "--data", prep, "--out", run, "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet"},
		{"test", "--run", run, "--out", filepath.Join(run, "test"), "--quiet"},
	}
	for _, s := range steps {
		if code, _ := captureRun(t, s...); code != 0 {
			t.Fatalf("fess %s exited %d", strings.Join(s, " "), code)
		}
	}
	for _, f := range []string{"config.json", "log.jsonl", "last.safetensors", "best.safetensors", "data_options.json", "test/metrics.csv", "test/summary.json"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	p, err := dataset.Open(prep)
	if err != nil {
		t.Fatal(err)
	}
	src := p.Split("test")[0].SourceImage
	mask := filepath.Join(dir, "mask.nii.gz")
	if code, _ := captureRun(t, "predict", "--run", run, "--in", src, "--out", mask); code != 0 {
		t.Fatalf("predict exited %d", code)
	}
	in, _ := volume.Read(src)
	got, err := volume.Read(mask)
	if err != nil || got.Dims != in.Dims || got.Affine != in.Affine {
		t.Fatalf("predicted mask does not overlay its input: %v", err)
	}
	// --config re-runs from the folder alone, into a new folder.
	if code, _ := captureRun(t, "train", "--config", filepath.Join(run, "config.json"), "--out", filepath.Join(dir, "rerun"), "--quiet"); code != 0 {
		t.Fatalf("train --config exited %d", code)
	}
	a, _ := os.ReadFile(filepath.Join(run, "last.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "rerun", "last.safetensors"))
	if string(a) != string(b) {
		t.Fatal("re-running a run's config.json gave different weights")
	}
	// Bad usage and bad input exit 2.
	for _, args := range [][]string{
		{"train"},
		{"train", "--data", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "r2")},
		{"train", "--data", prep, "--out", filepath.Join(dir, "r3"), "--loss", "hinge"},
		{"train", "--data", prep, "--out", run, "--quiet"}, // existing run without --resume
		{"train", "--out", filepath.Join(dir, "r4"), "--resume"},
		{"test", "--run", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "t")},
		{"predict", "--run", run, "--in", filepath.Join(dir, "nope.nii.gz"), "--out", filepath.Join(dir, "m.nii.gz")},
		{"predict", "--run", run},
	} {
		if code, _ := captureRun(t, args...); code != 2 {
			t.Errorf("fess %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestTrainScheduleEMACLI: fess train --lr-schedule/--warmup-epochs/--ema
// reach config.json, log.jsonl and ema.safetensors; fess test
// --checkpoint best|last|ema evaluates them (ema refused for a run without
// EMA); bad values and a changed schedule or EMA on --resume are usage
// errors (exit 2) naming the flag or field and the value.
func TestTrainScheduleEMACLI(t *testing.T) {
	dir := t.TempDir()
	raw, prep, run, plain := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run"), filepath.Join(dir, "plain")
	for _, s := range [][]string{
		{"synth", "--kind", "brain", "--cases", "8", "--size", "24", "--seed", "3", "--out", raw},
		{"prepare", "--in", raw, "--out", prep, "--size", "16", "--quiet"},
	} {
		if code, _ := captureRun(t, s...); code != 0 {
			t.Fatalf("fess %s exited %d", strings.Join(s, " "), code)
		}
	}
	small := []string{"--data", prep, "--filters", "2", "--levels", "2", "--threads", "1", "--quiet"}
	trainArgs := func(out string, more ...string) []string {
		return append(append([]string{"--out", out}, small...), more...)
	}
	if err := runTrain(trainArgs(run, "--epochs", "2", "--lr-schedule", "cosine", "--warmup-epochs", "1", "--ema", "0.9"), io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg, err := train.LoadConfig(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LRSchedule != "cosine" || cfg.WarmupEpochs != 1 || cfg.EMA != 0.9 {
		t.Fatalf("config.json: schedule %q, warm-up %d, EMA %g", cfg.LRSchedule, cfg.WarmupEpochs, cfg.EMA)
	}
	log, _ := os.ReadFile(filepath.Join(run, "log.jsonl"))
	if !strings.Contains(string(log), `"lr":0.0005`) || !strings.Contains(string(log), `"val_dice_ema"`) {
		t.Fatalf("log.jsonl lacks the warm-up lr or val_dice_ema:\n%s", log)
	}
	for _, ck := range []string{"best", "last", "ema"} {
		if err := runTest([]string{"--run", run, "--checkpoint", ck, "--out", filepath.Join(run, "test-"+ck), "--quiet"}, io.Discard, io.Discard); err != nil {
			t.Fatalf("test --checkpoint %s: %v", ck, err)
		}
	}
	if err := runTrain(trainArgs(plain, "--epochs", "1"), io.Discard); err != nil {
		t.Fatal(err)
	}
	usage := func(what string, err error, want ...string) {
		t.Helper()
		if err == nil || errs.ExitCode(err) != 2 {
			t.Errorf("%s: %v, want exit 2", what, err)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", what, err, w)
			}
		}
	}
	usage("test --checkpoint ema without EMA", runTest([]string{"--run", plain, "--checkpoint", "ema", "--out", filepath.Join(dir, "t1"), "--quiet"}, io.Discard, io.Discard), "no EMA")
	usage("test --checkpoint mean", runTest([]string{"--run", run, "--checkpoint", "mean", "--out", filepath.Join(dir, "t2"), "--quiet"}, io.Discard, io.Discard), "--checkpoint", `"mean"`)
	// export and predict take the same choice.
	exported := map[string][]byte{}
	for _, ck := range []string{"last", "ema"} {
		f := filepath.Join(dir, "export-"+ck+".safetensors")
		if err := runExport([]string{"--run", run, "--checkpoint", ck, "--format", "safetensors", "--out", f}, io.Discard); err != nil {
			t.Fatalf("export --checkpoint %s: %v", ck, err)
		}
		exported[ck], _ = os.ReadFile(f)
	}
	if len(exported["ema"]) == 0 || bytes.Equal(exported["last"], exported["ema"]) {
		t.Errorf("export --checkpoint ema wrote the same bytes as last (%d bytes)", len(exported["ema"]))
	}
	usage("export --checkpoint ema without EMA", runExport([]string{"--run", plain, "--checkpoint", "ema", "--format", "safetensors", "--out", filepath.Join(dir, "e.safetensors")}, io.Discard), "no EMA")
	usage("predict --checkpoint mean", runPredict([]string{"--run", run, "--checkpoint", "mean", "--in", "x.nii", "--out", filepath.Join(dir, "p.nii")}, io.Discard), "--checkpoint", `"mean"`)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--lr-schedule", "step"}, []string{"--lr-schedule", `"step"`}},
		{[]string{"--epochs", "2", "--warmup-epochs", "2"}, []string{"--warmup-epochs 2"}},
		{[]string{"--warmup-epochs", "-1"}, []string{"--warmup-epochs -1"}},
		{[]string{"--ema", "1"}, []string{"--ema 1"}},
		{[]string{"--ema", "-0.5"}, []string{"--ema -0.5"}},
	} {
		usage(strings.Join(c.args, " "), runTrain(trainArgs(filepath.Join(dir, "bad"), c.args...), io.Discard), c.want...)
	}
	// --resume refuses a changed schedule, warm-up or EMA (naming the
	// field), and --extend of a decaying schedule; nothing is rewritten.
	before, _ := os.ReadFile(filepath.Join(run, "config.json"))
	usage("resume with another schedule", runTrain([]string{"--out", run, "--resume", "--quiet", "--lr-schedule", "poly"}, io.Discard), "lr_schedule", "poly")
	usage("resume with another warm-up", runTrain([]string{"--out", run, "--resume", "--quiet", "--warmup-epochs", "0"}, io.Discard), "warmup_epochs")
	usage("resume with another EMA", runTrain([]string{"--out", run, "--resume", "--quiet", "--ema", "0.99"}, io.Discard), "ema", "0.99")
	usage("resume --extend of a cosine run", runTrain([]string{"--out", run, "--resume", "--extend", "--epochs", "3", "--quiet"}, io.Discard), "lr_schedule", "cosine")
	if after, _ := os.ReadFile(filepath.Join(run, "config.json")); string(after) != string(before) {
		t.Fatal("a refused resume rewrote config.json")
	}
	// What the refusal suggests: a new run from the last checkpoint's weights.
	if err := runTrain(trainArgs(filepath.Join(dir, "more"), "--epochs", "1", "--init", filepath.Join(run, "last.safetensors")), io.Discard); err != nil {
		t.Fatalf("--init RUN/last.safetensors: %v", err)
	}
	// The plain (constant) run extends.
	if err := runTrain([]string{"--out", plain, "--resume", "--extend", "--epochs", "2", "--quiet"}, io.Discard); err != nil {
		t.Fatalf("extending a constant run: %v", err)
	}
}

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/train"
)

// TestTrainPatchCLI: --patch, --iters-per-epoch, --augment and --fold on a
// spacing-mode data set and on cube data, their config.json records, a
// resume, and the usage errors.
func TestTrainPatchCLI(t *testing.T) {
	dir := t.TempDir()
	raw, sp, cube := filepath.Join(dir, "raw"), filepath.Join(dir, "sp"), filepath.Join(dir, "cube")
	for _, s := range [][]string{
		{"synth", "--kind", "brain", "--cases", "8", "--size", "24", "--seed", "3", "--out", raw},
		{"prepare", "--in", raw, "--out", sp, "--spacing", "8,8,8", "--folds", "2", "--quiet"},
		{"prepare", "--in", raw, "--out", cube, "--size", "16", "--quiet"},
	} {
		if code, out := captureRun(t, s...); code != 0 {
			t.Fatalf("fess %s exited %d: %s", strings.Join(s, " "), code, out)
		}
	}
	small := []string{"--filters", "2", "--levels", "2", "--quiet"}
	run := filepath.Join(dir, "run")
	args := append([]string{"train", "--data", sp, "--out", run, "--loss", "dice", "--patch", "8,8,12", "--fold", "1",
		"--epochs", "1", "--iters-per-epoch", "2"}, small...)
	if code, out := captureRun(t, args...); code != 0 {
		t.Fatalf("patch training exited %d: %s", code, out)
	}
	cfg, err := train.LoadConfig(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Patch != [3]int{8, 8, 12} || cfg.Fold == nil || *cfg.Fold != 1 || cfg.ItersPerEpoch != 2 || cfg.Augment == nil || !*cfg.Augment {
		t.Fatalf("config %+v", cfg)
	}
	if code, out := captureRun(t, "train", "--out", run, "--resume", "--extend", "--epochs", "2", "--quiet"); code != 0 {
		t.Fatalf("resume exited %d: %s", code, out)
	}
	if cfg, _ = train.LoadConfig(filepath.Join(run, "config.json")); cfg.Epochs != 2 || cfg.Patch != [3]int{8, 8, 12} || *cfg.Fold != 1 {
		t.Fatalf("resumed config %+v", cfg)
	}
	// Cube data: a cubic patch, augmentation off, no fold.
	crun := filepath.Join(dir, "crun")
	args = append([]string{"train", "--data", cube, "--out", crun, "--loss", "dice", "--patch", "8", "--augment=false", "--epochs", "1"}, small...)
	if code, out := captureRun(t, args...); code != 0 {
		t.Fatalf("cube patch training exited %d: %s", code, out)
	}
	if cfg, _ = train.LoadConfig(filepath.Join(crun, "config.json")); cfg.Patch != [3]int{8, 8, 8} || *cfg.Augment || cfg.Fold != nil || cfg.Model.InputSize != 16 {
		t.Fatalf("cube patch config %+v", cfg)
	}
	for i, bad := range [][]string{
		{"--data", sp},                                   // spacing mode needs --patch
		{"--data", sp, "--patch", "8,8"},                 // two sizes
		{"--data", sp, "--patch", "6"},                   // not a multiple of 2^2
		{"--data", sp, "--patch", "8,x,8"},               // not a number
		{"--data", sp, "--patch", "8", "--fold", "2"},    // 2 folds: 0 and 1
		{"--data", cube, "--fold", "0"},                  // no splits.json
		{"--data", cube, "--iters-per-epoch", "3"},       // cube epochs are passes
		{"--data", cube, "--patch", "8", "--fold", "-2"}, // -1 is none, -2 nothing
	} {
		a := append(append([]string{"train", "--out", filepath.Join(dir, "bad", string(rune('a'+i))), "--epochs", "1"}, small...), bad...)
		if code, out := captureRun(t, a...); code != 2 {
			t.Errorf("fess %s exited %d, want 2: %s", strings.Join(a, " "), code, out)
		}
	}
}

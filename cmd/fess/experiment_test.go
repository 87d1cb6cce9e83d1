package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExperimentCLI runs a tiny experiment file end to end through the
// command line, then again to check that every run is skipped.
func TestExperimentCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tiny.json")
	body := `{"name": "tiny", "out": "` + filepath.ToSlash(filepath.Join(dir, "out")) + `",
	  "datasets": [{"name": "brain", "kind": "brain", "cases": 10, "synth_size": 24, "size": 16}],
	  "losses": ["fess", "dice"], "seeds": [1],
	  "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2}}`
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := captureRun(t, "experiment", "--config", cfg, "--quiet")
	if code != 0 {
		t.Fatalf("fess experiment exited %d:\n%s", code, out)
	}
	for _, want := range []string{"| **brain** | FESS |", "Vanilla Dice", "2 runs: 0 skipped (complete), 0 resumed, 2 trained", "index.html"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "report", "index.html")); err != nil {
		t.Error(err)
	}
	code, out = captureRun(t, "experiment", "--config", cfg, "--quiet")
	if code != 0 || !strings.Contains(out, "2 runs: 2 skipped (complete), 0 resumed, 0 trained") {
		t.Fatalf("second invocation (exit %d) did not skip the runs:\n%s", code, out)
	}
	// Bad usage and bad files exit 2.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"losses": ["dice"], "datasets": []}`), 0o644)
	for _, args := range [][]string{
		{"experiment"},
		{"experiment", "--config", filepath.Join(dir, "missing.json")},
		{"experiment", "--config", bad},
		{"experiment", "--config", cfg, "--jobs", "-1"},
	} {
		if code, _ := captureRun(t, args...); code != 2 {
			t.Errorf("fess %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
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

// TestExperimentAblationCells: with contrastive_scales and lambdas the
// grid crosses them with the FESS pairings, Dice runs once per seed,
// --dry-run lists the variant folders, --cell N trains the folder listed
// as cell N, and --slurm writes an array over the same cells. Bad axis
// values exit 2 naming the key and the value.
func TestExperimentAblationCells(t *testing.T) {
	t.Setenv("SLURM_CPUS_PER_TASK", "")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	write := func(name, axes string) string {
		p := filepath.Join(dir, name)
		body := `{"name": "abl", "out": "` + filepath.ToSlash(out) + `",
		  "datasets": [{"name": "brain", "kind": "brain", "cases": 10, "synth_size": 24, "size": 16}],
		  "losses": ["fess", "dice"], "pairings": ["previous-batch", "same-batch"], ` + axes + `,
		  "seeds": [1, 2], "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2}}`
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("abl.json", `"contrastive_scales": [1e-4, 1e-2, 1], "lambdas": [0.5, 0.9], "compare_to": "dice"`)
	code, list := captureRun(t, "experiment", "--config", cfg, "--dry-run")
	if code != 0 {
		t.Fatalf("--dry-run exited %d:\n%s", code, list)
	}
	var cells []string
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Split(l, "\t"); len(f) == 3 && strings.HasPrefix(f[0], "cell ") {
			cells = append(cells, f[1])
		}
	}
	// 2 seeds × (2 pairings × 3 scales × 2 λ + Dice).
	if len(cells) != 26 {
		t.Fatalf("%d cells, want 26:\n%s", len(cells), list)
	}
	dice := 0
	for _, c := range cells {
		if strings.HasPrefix(c, "runs/brain/dice/") {
			dice++
		}
	}
	if dice != 2 || cells[0] != "runs/brain/fess-previous-batch-s1e-4-l0.5/n7/s1" || cells[11] != "runs/brain/fess-same-batch-s1-l0.9/n7/s1" ||
		cells[12] != "runs/brain/dice/n7/s1" || cells[16] != "runs/brain/fess-previous-batch-s1e-2-l0.9/n7/s2" {
		t.Errorf("cells (%d Dice): %v", dice, cells)
	}
	code, o := captureRun(t, "experiment", "--config", cfg, "--cell", "16", "--quiet")
	if code != 0 || !strings.Contains(o, "1 trained") {
		t.Fatalf("--cell 16 (exit %d):\n%s", code, o)
	}
	done, err := filepath.Glob(filepath.Join(out, "runs", "*", "*", "*", "*", "test", "summary.json"))
	if err != nil || len(done) != 1 || !strings.HasPrefix(filepath.ToSlash(done[0]), filepath.ToSlash(filepath.Join(out, cells[16]))+"/") {
		t.Errorf("--cell 16 completed %v, want %s", done, cells[16])
	}
	code, o = captureRun(t, "experiment", "--config", cfg, "--slurm", filepath.Join(dir, "slurm"))
	if code != 0 || !strings.Contains(o, "26 cells") {
		t.Fatalf("--slurm (exit %d):\n%s", code, o)
	}
	if s, _ := os.ReadFile(filepath.Join(dir, "slurm", "cells.sbatch")); !strings.Contains(string(s), "#SBATCH --array=0-25\n") {
		t.Errorf("cells.sbatch is not an array over cells 0-25:\n%s", s)
	}
	if code, _ := captureRun(t, "experiment", "--config", cfg, "--cell", "26"); code != 2 {
		t.Errorf("--cell 26 of 26 exited %d, want 2", code)
	}
	for _, c := range []struct{ axes, want string }{
		{`"contrastive_scales": [0, 1]`, "contrastive_scales: value 0"},
		{`"lambdas": [0.5, 0.5]`, "lambdas: value 0.5 appears twice"},
		{`"lambdas": [2]`, "lambdas: value 2"},
		{`"compare_to": "simclr"`, `compare_to "simclr"`},
	} {
		bad := write("bad.json", c.axes)
		_, err := runExperiment([]string{"--config", bad, "--dry-run"}, io.Discard, io.Discard)
		if errs.ExitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("%s: got %v (exit %d), want exit 2 with %q", c.axes, err, errs.ExitCode(err), c.want)
		}
		if code, _ := captureRun(t, "experiment", "--config", bad, "--dry-run"); code != 2 {
			t.Errorf("%s: fess experiment exited %d, want 2", c.axes, code)
		}
	}
}

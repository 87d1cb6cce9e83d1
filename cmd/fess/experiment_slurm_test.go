package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyExperiment writes a 2-cell experiment file (fess and dice, one seed)
// whose out folder is dir/out.
func tinyExperiment(t *testing.T, dir, name string) string {
	t.Helper()
	cfg := filepath.Join(dir, name+".json")
	body := `{"name": "` + name + `", "out": "` + filepath.ToSlash(filepath.Join(dir, "out")) + `",
	  "datasets": [{"name": "brain", "kind": "brain", "cases": 10, "synth_size": 24, "size": 16}],
	  "losses": ["fess", "dice"], "seeds": [1],
	  "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2}}`
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func countComplete(t *testing.T, out string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(out, "runs", "*", "*", "*", "*", "test", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// Each --cell trains exactly one run and aggregates nothing;
// --aggregate-only then writes the same table as a plain local run.
func TestExperimentCells(t *testing.T) {
	t.Setenv("SLURM_CPUS_PER_TASK", "")
	dir := t.TempDir()
	cfg := tinyExperiment(t, dir, "tiny")
	out := filepath.Join(dir, "out")

	code, list := captureRun(t, "experiment", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(list, "cell 0\truns/brain/fess-previous-batch/n") ||
		!strings.Contains(list, "cell 1\truns/brain/dice/n") || strings.Contains(list, "cell 2") {
		t.Fatalf("--dry-run (exit %d) does not list the two cells:\n%s", code, list)
	}
	// Aggregating before anything ran lists the incomplete cells: exit 1.
	if code, _ := captureRun(t, "experiment", "--config", cfg, "--aggregate-only"); code != 1 {
		t.Errorf("--aggregate-only with no complete run exited %d, want 1", code)
	}
	code, o := captureRun(t, "experiment", "--config", cfg, "--cell", "0", "--quiet")
	if code != 0 || !strings.Contains(o, "cell 0: 0 skipped (complete), 0 resumed, 1 trained") {
		t.Fatalf("--cell 0 (exit %d):\n%s", code, o)
	}
	if n := countComplete(t, out); n != 1 {
		t.Fatalf("after --cell 0: %d complete runs, want 1", n)
	}
	if !fileExists(filepath.Join(out, "runs", "brain", "fess-previous-batch")) {
		t.Error("--cell 0 did not train the FESS run")
	}
	os.RemoveAll(filepath.Join(out, "results")) // written by the failed --aggregate-only above
	if fileExists(filepath.Join(out, "results", "table.md")) {
		t.Fatal("results left")
	}
	code, o = captureRun(t, "experiment", "--config", cfg, "--cell", "1", "--quiet")
	if code != 0 || !strings.Contains(o, "1 trained") || countComplete(t, out) != 2 {
		t.Fatalf("--cell 1 (exit %d, %d complete):\n%s", code, countComplete(t, out), o)
	}
	if fileExists(filepath.Join(out, "results")) {
		t.Error("--cell aggregated")
	}
	code, o = captureRun(t, "experiment", "--config", cfg, "--cell", "1", "--quiet")
	if code != 0 || !strings.Contains(o, "1 skipped (complete)") {
		t.Errorf("--cell 1 again (exit %d) did not skip:\n%s", code, o)
	}
	if code, _ := captureRun(t, "experiment", "--config", cfg, "--cell", "2"); code != 2 {
		t.Errorf("--cell 2 of 2 cells exited %d, want 2", code)
	}
	code, o = captureRun(t, "experiment", "--config", cfg, "--aggregate-only")
	if code != 0 || !strings.Contains(o, "| **brain** | FESS |") || !strings.Contains(o, "2 complete runs of 2 aggregated") {
		t.Fatalf("--aggregate-only (exit %d):\n%s", code, o)
	}
	cells, err := os.ReadFile(filepath.Join(out, "results", "table.md"))
	if err != nil {
		t.Fatal(err)
	}

	// A plain local run of the same experiment in another folder.
	dir2 := t.TempDir()
	cfg2 := tinyExperiment(t, dir2, "tiny")
	if code, o := captureRun(t, "experiment", "--config", cfg2, "--quiet"); code != 0 {
		t.Fatalf("local run exited %d:\n%s", code, o)
	}
	local, err := os.ReadFile(filepath.Join(dir2, "out", "results", "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cells, local) {
		t.Errorf("table.md from --cell + --aggregate-only differs from a local run's:\n%s\nvs\n%s", cells, local)
	}

	for _, args := range [][]string{
		{"--cell", "0", "--aggregate-only"},
		{"--cell", "0", "--dry-run"},
		{"--cell", "-1"},
		{"--submit"},
		{"--slurm-opt", "--partition=cpu"},
		{"--slurm", filepath.Join(dir, "s"), "--slurm-opt", "-p cpu"},
		{"--slurm", filepath.Join(dir, "s"), "--slurm-opt", "--array=0-3"},
	} {
		if code, _ := captureRun(t, append([]string{"experiment", "--config", cfg}, args...)...); code != 2 {
			t.Errorf("fess experiment %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// The job scripts: array range, options, signal and requeue lines,
// absolute paths; --submit with a fake sbatch.
func TestExperimentSlurm(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyExperiment(t, dir, "tiny")
	sdir := filepath.Join(dir, "slurm")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if e, err := filepath.EvalSymlinks(exe); err == nil {
		exe = e
	}
	// A relative --config must become absolute in the scripts.
	t.Chdir(dir)
	code, o := captureRun(t, "experiment", "--config", "tiny.json", "--slurm", "slurm",
		"--slurm-opt", "--partition=cpu --time=02:00:00", "--slurm-opt", "--mem=8G --account=A")
	if code != 0 || !strings.Contains(o, "2 cells") {
		t.Fatalf("--slurm exited %d:\n%s", code, o)
	}
	cells, err := os.ReadFile(filepath.Join(sdir, "cells.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	c := string(cells)
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --array=0-1\n",
		"#SBATCH --requeue\n",
		"#SBATCH --signal=B:USR1@120\n",
		"#SBATCH --cpus-per-task=1\n",
		"#SBATCH --output=" + filepath.Join(sdir, "logs", "cell-%A_%a.out") + "\n",
		"#SBATCH --partition=cpu\n", "#SBATCH --time=02:00:00\n", "#SBATCH --mem=8G\n", "#SBATCH --account=A\n",
		"'" + exe + "' experiment --config '" + cfg + "' --cell \"$SLURM_ARRAY_TASK_ID\"",
		`trap 'kill -USR1 "$pid" 2>/dev/null' USR1`,
		`trap 'kill -TERM "$pid" 2>/dev/null' TERM`,
		`if [ "$status" -eq 3 ]; then`,
		`scontrol requeue "$SLURM_JOB_ID"`,
	} {
		if !strings.Contains(c, want) {
			t.Errorf("cells.sbatch lacks %q:\n%s", want, c)
		}
	}
	// #SBATCH lines must come before the first command.
	if i, j := strings.LastIndex(c, "#SBATCH"), strings.Index(c, "set -u"); i > j {
		t.Error("an #SBATCH line follows a command")
	}
	agg, err := os.ReadFile(filepath.Join(sdir, "aggregate.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --partition=cpu\n", "#SBATCH --account=A\n",
		"'" + exe + "' experiment --config '" + cfg + "' --aggregate-only"} {
		if !strings.Contains(string(agg), want) {
			t.Errorf("aggregate.sbatch lacks %q:\n%s", want, agg)
		}
	}
	if strings.Contains(string(agg), "--array") {
		t.Error("aggregate.sbatch is an array")
	}
	if !fileExists(filepath.Join(sdir, "logs")) {
		t.Error("no logs folder")
	}

	// No sbatch on PATH: exit 2.
	t.Setenv("PATH", filepath.Join(dir, "empty"))
	if code, _ := captureRun(t, "experiment", "--config", cfg, "--slurm", sdir, "--submit"); code != 2 {
		t.Errorf("--submit without sbatch exited %d, want 2", code)
	}
	// A fake sbatch records its arguments and prints job ids.
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	rec := filepath.Join(dir, "sbatch.log")
	fake := "#!/bin/sh\necho \"$*\" >> '" + rec + "'\nn=$(wc -l < '" + rec + "')\necho \"$((1000 + n));cluster\"\n"
	if err := os.WriteFile(filepath.Join(bin, "sbatch"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+"/usr/bin:/bin")
	code, o = captureRun(t, "experiment", "--config", cfg, "--slurm", sdir, "--submit")
	if code != 0 || !strings.Contains(o, "job 1001") || !strings.Contains(o, "job 1002 (after job 1001)") {
		t.Fatalf("--submit exited %d:\n%s", code, o)
	}
	calls, _ := os.ReadFile(rec)
	want := "--parsable " + filepath.Join(sdir, "cells.sbatch") + "\n" +
		"--parsable --dependency=afterany:1001 " + filepath.Join(sdir, "aggregate.sbatch") + "\n"
	if string(calls) != want {
		t.Errorf("sbatch calls:\n%s\nwant:\n%s", calls, want)
	}
	// A failing sbatch: exit 1.
	os.WriteFile(filepath.Join(bin, "sbatch"), []byte("#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n"), 0o755)
	if code, _ := captureRun(t, "experiment", "--config", cfg, "--slurm", sdir, "--submit"); code != 1 {
		t.Errorf("--submit with a failing sbatch exited %d, want 1", code)
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/internal/lock"
)

// holdLock locks dir from the test process, as a concurrent fess would:
// flock locks of different open file descriptions conflict even within one
// process, so the command run in-process must find the folder busy.
func holdLock(t *testing.T, dir string) *lock.Lock {
	t.Helper()
	l, err := lock.Acquire(dir, "holder")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func wantBusy(t *testing.T, dir string, args ...string) {
	t.Helper()
	code, _, stderr := runStd(t, args...)
	if code != 2 {
		t.Errorf("fess %s on a locked folder exited %d, want 2:\n%s", args[0], code, stderr)
	}
	for _, want := range []string{dir, fmt.Sprintf("being written by pid %d", os.Getpid()), "fess holder since", "wait for it or use another folder"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("fess %s: stderr lacks %q:\n%s", args[0], want, stderr)
		}
	}
}

// prepare, train and experiment refuse a folder another fess holds (exit 2,
// naming the holder), work once it is released, and remove the temporary
// files an interrupted write left behind.
func TestFolderLocks(t *testing.T) {
	dir := t.TempDir()
	raw, prep, run := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run")
	if code, _, e := runStd(t, "synth", "--kind", "brain", "--cases", "4", "--size", "20", "--seed", "3", "--out", raw, "--quiet"); code != 0 {
		t.Fatalf("synth exited %d: %s", code, e)
	}
	prepArgs := []string{"prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet"}

	l := holdLock(t, prep)
	wantBusy(t, prep, prepArgs...)
	if _, err := os.Stat(filepath.Join(prep, "manifest.json")); err == nil {
		t.Error("prepare wrote into a locked folder")
	}
	l.Release()
	stale := []string{filepath.Join(prep, ".manifest.json.tmp-123"), filepath.Join(prep, "cases", ".c_image.nii.gz.tmp-9")}
	os.MkdirAll(filepath.Join(prep, "cases"), 0o755)
	for _, s := range stale {
		os.WriteFile(s, []byte("half"), 0o644)
	}
	code, _, stderr := runStd(t, prepArgs...)
	if code != 0 {
		t.Fatalf("prepare after release exited %d:\n%s", code, stderr)
	}
	for _, s := range stale {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("stale %s not removed", s)
		}
	}
	if !strings.Contains(stderr, "stale temporary file") || !strings.Contains(stderr, ".c_image.nii.gz.tmp-9") {
		t.Errorf("no note of the removed temporaries:\n%s", stderr)
	}

	trainArgs := []string{"train", "--data", prep, "--out", run, "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet"}
	l = holdLock(t, run)
	wantBusy(t, run, trainArgs...)
	if _, err := os.Stat(filepath.Join(run, "config.json")); err == nil {
		t.Error("train wrote into a locked folder")
	}
	l.Release()
	os.WriteFile(filepath.Join(run, ".last.safetensors.tmp-77"), []byte("half"), 0o644)
	if code, _, stderr := runStd(t, trainArgs...); code != 0 {
		t.Fatalf("train after release exited %d:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(run, ".last.safetensors.tmp-77")); !os.IsNotExist(err) {
		t.Error("stale temporary file of the run not removed")
	}

	exp := filepath.Join(dir, "exp")
	cfg := filepath.Join(dir, "exp.json")
	body := `{"name": "tiny", "out": "` + filepath.ToSlash(exp) + `",
	  "datasets": [{"name": "brain", "kind": "brain", "cases": 10, "synth_size": 24, "size": 16}],
	  "losses": ["dice"], "seeds": [1],
	  "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2}}`
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	holdLock(t, exp)
	wantBusy(t, exp, "experiment", "--config", cfg, "--quiet", "--dry-run")
	if _, err := os.Stat(filepath.Join(exp, "experiment.json")); err == nil {
		t.Error("experiment wrote into a locked folder")
	}
}

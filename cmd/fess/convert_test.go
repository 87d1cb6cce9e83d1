package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
	"github.com/fess-seg/fess/train"
)

// captureStderr runs the command line and returns its exit status and
// stderr (stdout discarded).
func captureStderr(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, savedErr := os.Stdout, os.Stderr
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	os.Stdout, os.Stderr = devnull, w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	code := run(args)
	w.Close()
	os.Stdout, os.Stderr = saved, savedErr
	devnull.Close()
	return code, <-done
}

// legacyRun rewrites a run's safetensors checkpoints as the older
// FESSST01 last.ckpt/best.ckpt (model records, then the fess/ state).
func legacyRun(t *testing.T, run string) {
	t.Helper()
	m, _, err := train.LoadModel(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{train.LastCheckpoint, train.LegacyLast}, {train.BestCheckpoint, train.LegacyBest}} {
		src := filepath.Join(run, p[0])
		f, err := safetensors.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		// Both checkpoints of a one-epoch run hold the same weights.
		recs := m.State().Records()
		for _, ts := range f.Tensors {
			name, ok := strings.CutPrefix(ts.Name, "fess/")
			if !ok || strings.HasPrefix(name, "rng/") {
				continue
			}
			if ts.DType == "I64" {
				v, _ := ts.Int64s()
				recs = append(recs, tensor.Record{Name: name, Ints: v})
			} else {
				v, _ := ts.Float32s()
				recs = append(recs, tensor.Record{Name: name, Tensor: tensor.FromSlice(v, ts.Shape...)})
			}
		}
		if err := tensor.SaveFile(filepath.Join(run, p[1]), recs); err != nil {
			t.Fatal(err)
		}
		os.Remove(src)
	}
}

// TestConvertCLI: fess convert turns an older run's .ckpt files into
// safetensors that fess test reads; bad usage and bad files exit 2; a
// corrupt best checkpoint falls back to the last one with a warning.
func TestConvertCLI(t *testing.T) {
	dir := t.TempDir()
	raw, prep, run := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run")
	for _, s := range [][]string{
		{"synth", "--kind", "brain", "--cases", "6", "--size", "24", "--seed", "3", "--out", raw},
		{"prepare", "--in", raw, "--out", prep, "--size", "16", "--quiet"},
		{"train", "--data", prep, "--out", run, "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet"},
	} {
		if code, _ := captureRun(t, s...); code != 0 {
			t.Fatalf("fess %s exited %d", strings.Join(s, " "), code)
		}
	}
	legacyRun(t, run)
	if code, _ := captureRun(t, "test", "--run", run, "--out", filepath.Join(dir, "t0"), "--quiet"); code != 0 {
		t.Fatalf("fess test on an older run exited %d", code)
	}
	one := filepath.Join(dir, "one.safetensors")
	if code, out := captureRun(t, "convert", "--in", filepath.Join(run, train.LegacyLast), "--out", one); code != 0 || !strings.Contains(out, "wrote "+one) {
		_, e := captureStderr(t, "convert", "--in", filepath.Join(run, train.LegacyLast), "--out", one+"2")
		t.Log(e)
		t.Fatalf("convert of a file exited %d: %s", code, out)
	}
	if code, _ := captureRun(t, "convert", "--in", run); code != 0 {
		t.Fatalf("convert of a run folder exited %d", code)
	}
	for _, f := range []string{train.LastCheckpoint, train.BestCheckpoint} {
		sf, err := safetensors.ReadFile(filepath.Join(run, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sf.Get("final.weight"); !ok || sf.Metadata["fess_format"] != "checkpoint" {
			t.Fatalf("%s is not a converted checkpoint", f)
		}
	}
	if code, _ := captureRun(t, "train", "--data", prep, "--out", run, "--epochs", "2", "--filters", "2", "--levels", "2", "--resume", "--extend", "--quiet"); code != 0 {
		t.Fatalf("resuming a converted run exited %d", code)
	}
	if code, _ := captureRun(t, "convert", "--help"); code != 0 {
		t.Fatalf("convert --help exited %d", code)
	}

	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, []byte("FESSST01 not really"), 0o644)
	empty := filepath.Join(dir, "empty.ckpt")
	os.WriteFile(empty, nil, 0o644)
	for _, args := range [][]string{
		{"convert"},
		{"convert", "--in", filepath.Join(run, train.LegacyLast)},               // a file needs --out
		{"convert", "--in", filepath.Join(run, train.LegacyLast), "--out", one}, // exists, no --force
		{"convert", "--in", filepath.Join(dir, "nope.ckpt"), "--out", filepath.Join(dir, "x.safetensors")},
		{"convert", "--in", bad, "--out", filepath.Join(dir, "x.safetensors"), "--config", filepath.Join(run, "config.json")},
		{"convert", "--in", empty, "--out", filepath.Join(dir, "y.safetensors"), "--config", filepath.Join(run, "config.json")},
	} {
		if code, _ := captureRun(t, args...); code != 2 {
			t.Errorf("fess %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}

	// A corrupt best checkpoint: fess test warns and uses the last one.
	best := filepath.Join(run, train.BestCheckpoint)
	b, _ := os.ReadFile(best)
	b[len(b)-1] ^= 1
	os.WriteFile(best, b, 0o644)
	code, stderr := captureStderr(t, "test", "--run", run, "--out", filepath.Join(dir, "t1"), "--quiet")
	if code != 0 || !strings.Contains(stderr, "warning") || !strings.Contains(stderr, best) || !strings.Contains(stderr, "checksum") {
		t.Fatalf("fess test with a corrupt best exited %d, stderr %q", code, stderr)
	}
	// Both unusable: exit 2 naming the files.
	os.WriteFile(filepath.Join(run, train.LastCheckpoint), nil, 0o644)
	code, stderr = captureStderr(t, "test", "--run", run, "--out", filepath.Join(dir, "t2"), "--quiet")
	if code != 2 || !strings.Contains(stderr, best) || !strings.Contains(stderr, train.LastCheckpoint) {
		t.Fatalf("fess test with no usable checkpoint exited %d, stderr %q", code, stderr)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
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

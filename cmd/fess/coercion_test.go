package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/train"
	"github.com/fess-seg/fess/volume"
)

// Values that were coerced silently (--dropout -0.5 → 0, --train-cases -1
// → all, --size 0 → 64, …) are usage errors (exit 2) naming the flag and
// the value, and the refused command writes nothing.
func TestCoercionsAreErrors(t *testing.T) {
	raw, prep := filepath.Join(t.TempDir(), "raw"), filepath.Join(t.TempDir(), "prep")
	if code, _, e := runStd(t, "synth", "--kind", "brain", "--cases", "4", "--size", "16", "--seed", "3", "--out", raw); code != 0 {
		t.Fatalf("synth: %d %s", code, e)
	}
	if code, _, e := runStd(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet"); code != 0 {
		t.Fatalf("prepare: %d %s", code, e)
	}
	base := []string{"train", "--data", prep, "--filters", "2", "--levels", "2", "--quiet"}
	runDir := filepath.Join(t.TempDir(), "run")
	mustRun(t, append(base, "--out", runDir, "--epochs", "1")...)
	twoD := filepath.Join(t.TempDir(), "flat.nii.gz")
	flat := &volume.Volume{Dims: [4]int{16, 16, 1, 1}, Data: make([]float32, 256), Spacing: [3]float64{1, 1, 1}}
	for i := range flat.Data {
		flat.Data[i] = float32(i % 7)
	}
	if err := volume.WriteNIfTI(twoD, flat, "float32"); err != nil {
		t.Fatal(err)
	}
	flair := filepath.Join(raw, "BraTS17_Synth_000", "BraTS17_Synth_000_flair.nii.gz")
	fresh := func() string { return filepath.Join(t.TempDir(), "out") }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dropout", "-0.5"}, "--dropout -0.5"},
		{[]string{"--dropout", "1"}, "--dropout 1"},
		{[]string{"--dropout", "NaN"}, "--dropout NaN"},
		{[]string{"--train-cases", "-1"}, "--train-cases -1"},
		{[]string{"--train-cases", "5"}, "--train-cases 5 exceeds the 2 cases of the training split"},
		{[]string{"--lr", "NaN"}, "--lr NaN"},
		{[]string{"--lr", "Inf"}, "--lr +Inf"},
		{[]string{"--lr", "-1"}, "--lr -1"},
		{[]string{"--lr", "0"}, "--lr 0"},
		{[]string{"--epochs", "0"}, "--epochs 0"},
		{[]string{"--epochs", "-3"}, "--epochs -3"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--clip-norm", "-1"}, "--clip-norm -1"},
		{[]string{"--clip-norm", "NaN"}, "--clip-norm NaN"},
		{[]string{"--weight-decay", "-0.01"}, "--weight-decay -0.01"},
		{[]string{"--weight-decay", "NaN"}, "--weight-decay NaN"},
		{[]string{"--lambda", "1.5"}, "--lambda 1.5"},
		{[]string{"--lambda", "-0.5"}, "--lambda -0.5"},
		{[]string{"--lambda", "NaN"}, "--lambda NaN"},
		{[]string{"--temperature", "0"}, "--temperature 0"},
		{[]string{"--temperature", "-1"}, "--temperature -1"},
		{[]string{"--temperature", "NaN"}, "--temperature NaN"},
		{[]string{"--threads", "-2"}, "--threads -2"},
		{[]string{"--extend"}, "--extend goes with --resume"},
		{[]string{"--winograd", "3"}, "--winograd 3"},
		{[]string{"--winograd", "0"}, "--winograd 0"},
	} {
		out := fresh()
		args := append(append(append([]string(nil), base...), "--out", out), tc.args...)
		code, _, stderr := runStd(t, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("train %v: exit %d, %q (want exit 2 naming %q)", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("train %v: a refused run created %s", tc.args, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prepare", "--size", "0"}, "--size 0"},
		{[]string{"prepare", "--size", "-8"}, "--size -8"},
		{[]string{"prepare", "--split", "NaN,0.1,0.2"}, "--split NaN,0.1,0.2"},
		{[]string{"prepare", "--split", "-0.1,0.6,0.5"}, "--split -0.1,0.6,0.5"},
		{[]string{"prepare", "--split", "0,0,0"}, "--split 0,0,0"},
		{[]string{"prepare", "--window", "NaN,300"}, "--window NaN,300"},
		{[]string{"prepare", "--window", "0,0"}, "--window 0,0"},
		{[]string{"predict", "--run", runDir, "--in", flair, "--threshold", "5"}, "--threshold 5"},
		{[]string{"predict", "--run", runDir, "--in", flair, "--threshold", "NaN"}, "--threshold NaN"},
		{[]string{"predict", "--run", runDir, "--in", twoD}, "2-D image; fess segments 3-D volumes"},
	} {
		out := fresh()
		args := append(append([]string(nil), tc.args...), "--out", out)
		if tc.args[0] == "prepare" {
			args = append(args, "--in", raw, "--quiet")
		}
		code, _, stderr := runStd(t, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q (want exit 2 naming %q)", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(tc.want, "2-D") && !strings.Contains(stderr, twoD) {
			t.Errorf("%v: %q does not name the file", tc.args, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: a refused command created %s", tc.args, out)
		}
	}

	// A 2-D case given to prepare is refused, naming its file; a constant
	// image is prepared with a warning naming the case.
	raw2 := filepath.Join(t.TempDir(), "raw2")
	if code, _, e := runStd(t, "synth", "--kind", "brain", "--cases", "3", "--size", "16", "--seed", "3", "--out", raw2); code != 0 {
		t.Fatalf("synth: %d %s", code, e)
	}
	img0 := filepath.Join(raw2, "BraTS17_Synth_000", "BraTS17_Synth_000_flair.nii.gz")
	v, err := volume.Read(img0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range v.Data {
		v.Data[i] = 5
	}
	if err := volume.WriteNIfTI(img0, v, "float32"); err != nil {
		t.Fatal(err)
	}
	_, _, stderr := runStd(t, "prepare", "--in", raw2, "--out", fresh(), "--size", "16", "--quiet")
	if !strings.Contains(stderr, "warning: case BraTS17_Synth_000") || !strings.Contains(stderr, "constant image") {
		t.Errorf("constant image: no warning naming the case: %q", stderr)
	}
	img1 := filepath.Join(raw2, "BraTS17_Synth_001", "BraTS17_Synth_001_flair.nii.gz")
	seg1 := filepath.Join(raw2, "BraTS17_Synth_001", "BraTS17_Synth_001_seg.nii.gz")
	if err := volume.WriteNIfTI(img1, flat, "float32"); err != nil {
		t.Fatal(err)
	}
	if err := volume.WriteNIfTI(seg1, &volume.Volume{Dims: flat.Dims, Data: make([]float32, 256), Spacing: flat.Spacing}, "uint8"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runStd(t, "prepare", "--in", raw2, "--out", fresh(), "--size", "16", "--quiet")
	if code != 2 || !strings.Contains(stderr, img1) || !strings.Contains(stderr, "2-D image; fess segments 3-D volumes") {
		t.Errorf("2-D case: exit %d, %q", code, stderr)
	}
}

// --dropout 0 means no dropout for every preset; not given, the preset's.
func TestExplicitDropoutZero(t *testing.T) {
	raw, prep := filepath.Join(t.TempDir(), "raw"), filepath.Join(t.TempDir(), "prep")
	mustRun(t, "synth", "--kind", "brain", "--cases", "3", "--size", "16", "--seed", "3", "--out", raw)
	mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--quiet")
	for _, tc := range []struct {
		flags []string
		want  float32
	}{
		{nil, 0.2},
		{[]string{"--dropout", "0"}, 0},
	} {
		run := filepath.Join(t.TempDir(), "run")
		// The seed preset, shrunk: its dropout default is what matters.
		args := append([]string{"train", "--data", prep, "--out", run, "--preset", "seed", "--filters", "1", "--levels", "1", "--epochs", "1", "--quiet"}, tc.flags...)
		mustRun(t, args...)
		c, err := train.LoadConfig(filepath.Join(run, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Model.Dropout
		if got < 0 {
			got = 0
		}
		if got != tc.want {
			t.Errorf("seed preset %v: dropout %g, want %g", tc.flags, got, tc.want)
		}
	}
}

// --resume refuses a changed recipe field, naming it with its old and new
// value, and leaves config.json as it was; --extend allows more epochs.
func TestResumeRefusesChangedRecipe(t *testing.T) {
	raw, prep := filepath.Join(t.TempDir(), "raw"), filepath.Join(t.TempDir(), "prep")
	mustRun(t, "synth", "--kind", "brain", "--cases", "3", "--size", "16", "--seed", "3", "--out", raw)
	mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--quiet")
	run := filepath.Join(t.TempDir(), "run")
	mustRun(t, "train", "--data", prep, "--out", run, "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet")
	cfgPath := filepath.Join(run, "config.json")
	before, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--lr", "0.01"}, []string{"lr: 0.001 → 0.01"}},
		{[]string{"--epochs", "3"}, []string{"epochs: 1 → 3", "--extend"}},
		{[]string{"--loss", "dice", "--batch", "1"}, []string{"loss: \"fess\" → \"dice\"", "batch: 2 → 1"}},
		{[]string{"--extend", "--epochs", "3", "--batch", "1"}, []string{"batch: 2 → 1"}},
		{[]string{"--extend", "--epochs", "1", "--dropout", "0.3"}, []string{"model.Dropout: 0 → 0.3"}},
		{[]string{"--winograd", "4"}, []string{"winograd: (unset) → 4"}},
	} {
		args := append([]string{"train", "--out", run, "--resume", "--quiet"}, tc.args...)
		code, _, stderr := runStd(t, args...)
		if code != 2 {
			t.Errorf("resume %v: exit %d (%s), want 2", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("resume %v: %q does not contain %q", tc.args, stderr, w)
			}
		}
		if tc.args[0] == "--extend" && strings.Contains(stderr, "epochs:") {
			t.Errorf("resume %v: --extend still refuses the larger epochs: %q", tc.args, stderr)
		}
		if after, _ := os.ReadFile(cfgPath); !bytes.Equal(after, before) {
			t.Fatalf("resume %v: a refused resume rewrote config.json", tc.args)
		}
	}
	// Unchanged flags, or only the thread count, resume as before.
	mustRun(t, "train", "--out", run, "--resume", "--lr", "0.001", "--threads", "1", "--quiet")
	mustRun(t, "train", "--out", run, "--resume", "--extend", "--epochs", "2", "--quiet")
	c, err := train.LoadConfig(cfgPath)
	if err != nil || c.Epochs != 2 {
		t.Fatalf("extended run: epochs %d, %v", c.Epochs, err)
	}
	if n := countLogLines(t, filepath.Join(run, "log.jsonl")); n != 2 {
		t.Errorf("extended run logged %d epochs, want 2", n)
	}
	_ = dataset.Layouts
}

func countLogLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
)

// The spacing mode and folds through the CLI: --size and --spacing are
// exclusive, bad spacings are usage errors, --spacing median records the
// median, --folds writes splits.json.
func TestPrepareSpacingFlags(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "raw")
	if err := dataset.WriteSynth("brain", raw, 4, 16, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--size", "16", "--spacing", "1,1,1"},
		{"--size", "64", "--spacing", "median"},
		{"--spacing", "1,1"},
		{"--spacing", "0,1,1"},
		{"--spacing", "-1,1,1"},
		{"--spacing", "nan,1,1"},
		{"--spacing", "inf,1,1"},
		{"--spacing", "fine"},
		{"--folds", "1"},
	} {
		code, _, stderr := runStd(t, append([]string{"prepare", "--in", raw, "--out", filepath.Join(t.TempDir(), "p"), "--quiet"}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	prep := filepath.Join(t.TempDir(), "prep")
	code, out, stderr := runStd(t, "prepare", "--in", raw, "--out", prep, "--spacing", "median", "--folds", "2", "--split", "0.5,0.25,0.25", "--quiet")
	if code != 0 || !strings.Contains(out, "median spacing 10×10×10 mm") || !strings.Contains(out, "2 cross-validation folds") {
		t.Fatalf("prepare --spacing median: exit %d, %q, %q", code, out, stderr)
	}
	p, err := dataset.Open(prep)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Patched() || p.Options().Spacing != [3]float64{10, 10, 10} {
		t.Errorf("options %+v", p.Options())
	}
	if f, err := p.Folds(); err != nil || len(f) != 2 {
		t.Errorf("folds %v, %v", f, err)
	}
	code, out, _ = runStd(t, "prepare", "--in", raw, "--out", prep, "--spacing", "median", "--folds", "2", "--split", "0.5,0.25,0.25", "--quiet")
	if code != 0 || !strings.HasPrefix(out, "up to date") {
		t.Errorf("second run: exit %d, %q", code, out)
	}
	code, out, stderr = runStd(t, "prepare", "--in", raw, "--out", filepath.Join(t.TempDir(), "fixed"), "--spacing", "8,8,12", "--quiet")
	if code != 0 || !strings.Contains(out, "8×8×12 mm") {
		t.Errorf("prepare --spacing 8,8,12: exit %d, %q, %q", code, out, stderr)
	}
}

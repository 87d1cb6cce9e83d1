package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `fess inspect --json` prints the documented keys (docs/cli.md) with nibabel's values for a
// nibabel-written scaled int16 file (values recorded in the fixture).
func TestInspectJSON(t *testing.T) {
	path := filepath.Join("..", "..", "volume", "testdata", "nibabel", "scaled_int16.nii.gz")
	fx, err := os.ReadFile(filepath.Join("..", "..", "volume", "testdata", "nibabel_fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixtures struct {
		Generated map[string]struct {
			Shape  []int
			Zooms  []float64
			Affine [4][4]float64
			Stats  struct{ Min, Max, Mean, Sum float64 }
		}
	}
	if err := json.Unmarshal(fx, &fixtures); err != nil {
		t.Fatal(err)
	}
	want, ok := fixtures.Generated["volume/testdata/nibabel/scaled_int16.nii.gz"]
	if !ok {
		t.Fatal("fixture missing")
	}
	for _, args := range [][]string{{path, "--json"}, {"--json", path}} {
		out, err := inspectOutput(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got struct {
			Format   string
			Dims     []int
			Spacing  []float64
			Datatype string
			Affine   [4][4]float64
			Stats    struct{ Min, Max, Mean, Sum float64 }
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		for _, k := range []string{`"format"`, `"dims"`, `"spacing"`, `"datatype"`, `"affine"`, `"stats"`, `"min"`, `"max"`, `"mean"`, `"sum"`} {
			if !strings.Contains(out, k) {
				t.Errorf("JSON lacks %s", k)
			}
		}
		if got.Format != "nifti1" || got.Datatype != "int16" || len(got.Dims) != 3 || got.Dims[0] != want.Shape[0] || got.Dims[2] != want.Shape[2] {
			t.Errorf("format %s datatype %s dims %v; want nifti1 int16 %v", got.Format, got.Datatype, got.Dims, want.Shape)
		}
		for i := 0; i < 3; i++ {
			if math.Abs(got.Spacing[i]-want.Zooms[i]) > 1e-6 {
				t.Errorf("spacing %v, nibabel %v", got.Spacing, want.Zooms)
			}
		}
		for i := range got.Affine {
			for j := range got.Affine[i] {
				if math.Abs(got.Affine[i][j]-want.Affine[i][j]) > 1e-5 {
					t.Errorf("affine %v, nibabel %v", got.Affine, want.Affine)
				}
			}
		}
		for _, c := range [][2]float64{{got.Stats.Min, want.Stats.Min}, {got.Stats.Max, want.Stats.Max}, {got.Stats.Mean, want.Stats.Mean}, {got.Stats.Sum, want.Stats.Sum}} {
			if math.Abs(c[0]-c[1]) > 1e-6*math.Max(1, math.Abs(c[1])) {
				t.Errorf("stats %+v, nibabel %+v", got.Stats, want.Stats)
			}
		}
	}
	out, err := inspectOutput(path)
	if err != nil || !strings.Contains(out, "scaling     value = raw * 0.25 + -7.5") {
		t.Errorf("human output (%v):\n%s", err, out)
	}
}

func inspectOutput(args ...string) (string, error) {
	var b bytes.Buffer
	err := runInspect(args, &b)
	return b.String(), err
}

// Bad files and bad usage exit with status 2.
func TestInspectBadInputExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.nii")
	os.WriteFile(bad, []byte(strings.Repeat("x", 400)), 0o644)
	for _, args := range [][]string{
		{"inspect", bad},
		{"inspect", filepath.Join(dir, "missing.nii.gz"), "--json"},
		{"inspect"},
		{"inspect", "a.nii", "b.nii"},
		{"inspect", "--bogus", bad},
	} {
		if code := run(args); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

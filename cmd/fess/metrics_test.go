package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/volume"
)

// captureRun runs the CLI with args and returns its exit status and stdout.
func captureRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, savedErr := os.Stdout, os.Stderr
	os.Stdout = w
	devnull, _ := os.Open(os.DevNull)
	os.Stderr = devnull
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

var crossDir = filepath.Join("..", "..", "metric", "testdata", "crosscheck")

// The JSON of `fess metrics` on real brain-mask pairs has the docs/cli.md keys
// and the values scipy computed (metric/testdata/gen_reference.py).
func TestMetricsJSONMatchesScipyReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(crossDir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Pairs map[string]map[string]any
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"eroded2", "shifted3", "border"} {
		want := ref.Pairs[name]
		code, out := captureRun(t, "metrics",
			"--pred", filepath.Join(crossDir, want["pred"].(string)),
			"--truth", filepath.Join(crossDir, want["truth"].(string)), "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d, output %q", name, code, out)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v in %q", name, err, out)
		}
		for _, k := range []string{"dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd", "tp", "fp", "fn", "tn"} {
			g, ok1 := got[k].(float64)
			w, ok2 := want[k].(float64)
			if !ok1 || !ok2 || math.Abs(g-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Errorf("%s: %s = %v, scipy %v", name, k, got[k], want[k])
			}
		}
	}
}

func TestMetricsTableAndBadInput(t *testing.T) {
	truth := filepath.Join(crossDir, "truth.nii.gz")
	code, out := captureRun(t, "metrics", "--pred", filepath.Join(crossDir, "eroded2_pred.nii.gz"), "--truth", truth)
	if code != 0 || !strings.Contains(out, "dice         0.872635") || !strings.Contains(out, "hd           16.970563 mm") {
		t.Errorf("table: exit %d, output:\n%s", code, out)
	}
	// Different dimensions (45×50×35 against 91×109×61): bad input, exit 2.
	if code, _ := captureRun(t, "metrics", "--pred", filepath.Join(crossDir, "border_pred.nii.gz"), "--truth", truth, "--json"); code != 2 {
		t.Errorf("mismatched dims: exit %d, want 2", code)
	}
	if code, _ := captureRun(t, "metrics", "--pred", filepath.Join(t.TempDir(), "missing.nii.gz"), "--truth", truth); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
	if code, _ := captureRun(t, "metrics", "--truth", truth); code != 2 {
		t.Errorf("no --pred: exit %d, want 2", code)
	}
}

func TestMetricsErrorNamesBothFiles(t *testing.T) {
	pred := filepath.Join(crossDir, "border_pred.nii.gz")
	truth := filepath.Join(crossDir, "truth.nii.gz")
	var out strings.Builder
	err := runMetrics([]string{"--pred", pred, "--truth", truth}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), pred) || !strings.Contains(err.Error(), truth) ||
		!strings.Contains(err.Error(), "45×50×35") {
		t.Errorf("err = %v", err)
	}
}

// writeMask writes a 4×3×2 float32 volume with spacing 2×1×3 mm.
func writeMask(t *testing.T, name string, data []float32) string {
	t.Helper()
	v := &volume.Volume{Dims: [4]int{4, 3, 2, 1}, Data: data, Spacing: [3]float64{2, 1, 3},
		Affine: [4][4]float64{{2, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 3, 0}, {0, 0, 0, 1}}}
	p := filepath.Join(t.TempDir(), name)
	if err := volume.WriteNIfTI(p, v, "float32"); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMetricsEmptyMasksAndThreshold(t *testing.T) {
	empty := writeMask(t, "empty.nii.gz", make([]float32, 24))
	prob := make([]float32, 24)
	prob[0], prob[23] = 0.7, 0.3 // voxels (0,0,0) and (3,2,1)
	probPath := writeMask(t, "prob.nii.gz", prob)
	one := make([]float32, 24)
	one[23] = 1
	onePath := writeMask(t, "one.nii.gz", one)

	decode := func(out string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		return m
	}
	// Both empty: Dice = IoU = 1, distances 0, precision and sensitivity 0/0 → null.
	code, out := captureRun(t, "metrics", "--pred", empty, "--truth", empty, "--json")
	m := decode(out)
	if code != 0 || m["dice"] != 1.0 || m["iou"] != 1.0 || m["hd"] != 0.0 || m["hd95"] != 0.0 ||
		m["assd"] != 0.0 || m["precision"] != nil || m["sensitivity"] != nil || m["specificity"] != 1.0 {
		t.Errorf("both empty: exit %d, %s", code, out)
	}
	// Empty prediction: distances are the image diagonal, sqrt(8² + 3² + 6²).
	diag := math.Sqrt(64 + 9 + 36)
	code, out = captureRun(t, "metrics", "--pred", empty, "--truth", onePath, "--json")
	m = decode(out)
	if code != 0 || m["dice"] != 0.0 || m["hd"] != diag || m["assd"] != diag || m["precision"] != nil {
		t.Errorf("empty prediction: exit %d, %s", code, out)
	}
	// Nonzero rule: both voxels of prob are foreground; with --threshold 0.5
	// only (0,0,0) is, (3,2,1) voxels = (6,2,3) mm from the true voxel.
	code, out = captureRun(t, "metrics", "--pred", probPath, "--truth", onePath, "--json")
	if m = decode(out); code != 0 || m["tp"] != 1.0 || m["fp"] != 1.0 {
		t.Errorf("nonzero rule: %s", out)
	}
	code, out = captureRun(t, "metrics", "--pred", probPath, "--truth", onePath, "--threshold", "0.5", "--json")
	if m = decode(out); code != 0 || m["tp"] != 0.0 || m["fp"] != 1.0 || m["hd"] != math.Sqrt(36+4+9) {
		t.Errorf("threshold 0.5: %s", out)
	}
}

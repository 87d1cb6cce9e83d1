package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// The JSON of `fess metrics` on real brain-mask pairs has the SPEC §4 keys
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

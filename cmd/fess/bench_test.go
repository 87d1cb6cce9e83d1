package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/bench"
	"github.com/fess-seg/fess/errs"
)

func TestBenchBadUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	for _, args := range [][]string{
		{"--config", "e"},
		{"--iters", "0"},
		{"--peer", filepath.Join(dir, "missing.json")},
		{"--results", bad},
	} {
		var out, errb bytes.Buffer
		err := runBench(args, &out, &errb)
		if errs.ExitCode(err) != 2 {
			t.Errorf("%v: exit %d, error %v (want 2)", args, errs.ExitCode(err), err)
		}
	}
}

// TestBenchTables prints the tables from stored results and a peer file:
// the ratio uses the peer's fastest variant.
func TestBenchTables(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "fess.json")
	peer := filepath.Join(dir, "torch.json")
	os.WriteFile(res, []byte(`[{"config":"a","train":true,"step_seconds_median":0.2,"gflops":35,"peak_rss_mib":100,"forward_seconds_median":0.05}]`), 0o644)
	os.WriteFile(peer, []byte(`[{"config":"a","variant":"default","train_med":0.5,"train_gflop":7,"maxrss_mib":300},
{"config":"a","variant":"keep","train_med":0.4,"train_gflop":7,"maxrss_mib":350}]`), 0o644)
	var out, errb bytes.Buffer
	if err := runBench([]string{"--results", res, "--peer", peer}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| a | train step | 0.200 | 0.400 (keep) | 0.50 | 35.0 | 17.5 | 100 | 350 | 0.33 (300) |") {
		t.Errorf("side-by-side row missing:\n%s", out.String())
	}
}

// TestSideBySidePrecision compares an fp32 result with the peer's fastest
// fp32 variant only and a bf16 result with its keep+bf16 variant only.
func TestSideBySidePrecision(t *testing.T) {
	peer := []peerRow{
		{Config: "b", Variant: "keep", TrainMed: 2.0, TrainGFLOP: 100, MaxRSS: 800},
		{Config: "b", Variant: "keep+bf16", TrainMed: 1.0, TrainGFLOP: 100, MaxRSS: 900},
	}
	rs := []*bench.Result{
		{Config: "b", Train: true, StepMedian: 1.0, PeakRSSMiB: 400},
		{Config: "b", Train: true, StepMedian: 0.5, PeakRSSMiB: 400, Precision: "bf16"},
	}
	out := sideBySide(rs, peer)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	if !strings.Contains(lines[2], "| train step | 1.000 | 2.000 (keep) | 0.50 |") {
		t.Errorf("fp32 row not against the keep variant: %s", lines[2])
	}
	if !strings.Contains(lines[3], "| train step bf16 | 0.500 | 1.000 (keep+bf16) | 0.50 |") {
		t.Errorf("bf16 row not against keep+bf16: %s", lines[3])
	}
}

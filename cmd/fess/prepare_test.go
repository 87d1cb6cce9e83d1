package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/volume"
)

// runStd runs the CLI with args and returns its exit status, stdout and
// stderr.
func runStd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	saved, savedErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = wo, we
	outc, errc := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outc <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	code := run(args)
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = saved, savedErr
	return code, <-outc, <-errc
}

// synth then prepare through the CLI; a second prepare is a cache hit.
func TestSynthPrepareCommands(t *testing.T) {
	raw, prep := filepath.Join(t.TempDir(), "raw"), filepath.Join(t.TempDir(), "prep")
	code, out, _ := runStd(t, "synth", "--kind", "brain", "--cases", "4", "--size", "20", "--seed", "3", "--out", raw)
	if code != 0 || !strings.Contains(out, "wrote 4") {
		t.Fatalf("synth: exit %d, %q", code, out)
	}
	code, out, stderr := runStd(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25")
	if code != 0 || !strings.Contains(out, "prepared 4 cases (brats2017, flair, target wt, 16³") {
		t.Fatalf("prepare: exit %d, %q, %q", code, out, stderr)
	}
	// stderr is no terminal here: plain progress lines, no bar.
	if !strings.Contains(stderr, "prepare 4/4\n") || strings.Contains(stderr, "\r") {
		t.Errorf("want a plain progress line and no carriage return on stderr: %q", stderr)
	}
	b, err := os.ReadFile(filepath.Join(prep, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m dataset.Manifest
	if err := json.Unmarshal(b, &m); err != nil || len(m.Cases) != 4 || m.Options.Split != [3]float64{0.5, 0.25, 0.25} {
		t.Fatalf("manifest: %v %+v", err, m.Options)
	}
	code, out, _ = runStd(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet")
	if code != 0 || !strings.HasPrefix(out, "up to date") {
		t.Errorf("second prepare: exit %d, %q", code, out)
	}
	abd := filepath.Join(t.TempDir(), "abd")
	if code, _, e := runStd(t, "synth", "--kind", "abdomen", "--cases", "2", "--size", "16", "--out", abd, "--quiet"); code != 0 {
		t.Fatalf("synth abdomen: %d %s", code, e)
	}
	if _, err := os.Stat(filepath.Join(abd, "Mask", "Case_00002.nii.gz")); err != nil {
		t.Error(err)
	}
}

// Bad input and bad usage exit with status 2 and a message naming the file
// or flag and the fault, never a panic.
func TestPrepareExitCodes(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "raw")
	if err := dataset.WriteSynth("brain", raw, 2, 16, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(raw, "BraTS17_Synth_000", "BraTS17_Synth_000_seg.nii.gz")
	bad := &volume.Volume{Dims: [4]int{5, 5, 5, 1}, Data: make([]float32, 125), Spacing: [3]float64{1, 1, 1}}
	if err := volume.WriteNIfTI(seg, bad, "uint8"); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "readme.txt"), []byte("hello"), 0o644)
	noLabel := filepath.Join(t.TempDir(), "nolabel")
	dataset.WriteSynth("brain", noLabel, 1, 16, 1, 1, nil)
	os.Remove(filepath.Join(noLabel, "BraTS17_Synth_000", "BraTS17_Synth_000_seg.nii.gz"))
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"prepare", "--in", raw, "--out", out, "--quiet"}, []string{seg, "does not match image"}},
		{[]string{"prepare", "--in", empty, "--out", out}, []string{empty, "empty directory"}},
		{[]string{"prepare", "--in", junk, "--out", out}, []string{junk, "unknown dataset layout"}},
		{[]string{"prepare", "--in", noLabel, "--out", out}, []string{"BraTS17_Synth_000_flair.nii.gz", "no label"}},
		{[]string{"prepare", "--in", raw, "--out", out, "--layout", "nifty"}, []string{"unknown layout", "nifty"}},
		{[]string{"prepare", "--in", raw, "--out", out, "--split", "0.5,0.5"}, []string{"--split"}},
		{[]string{"prepare", "--out", out}, []string{"--in and --out are required"}},
		{[]string{"prepare", "--in", raw, "--out", out, "--target", "liver"}, []string{"--target liver"}},
		{[]string{"synth", "--kind", "lung", "--cases", "1", "--out", out}, []string{"--kind", "lung"}},
		{[]string{"synth", "--kind", "brain", "--out", out}, []string{"required"}},
	} {
		code, _, stderr := runStd(t, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: message %q does not contain %q", tc.args, stderr, w)
			}
		}
		if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
			t.Errorf("%v: panicked: %s", tc.args, stderr)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/train"
)

// TestPredictFolderParts predicts a whole raw data set in two parts
// (--part 0/2 and 1/2, as two Slurm array tasks would) and checks that the
// parts cover every case exactly once and that each file equals the
// single-case prediction of the same case, for a one-file-per-channel
// layout (BraTS 2021) and a 4-D layout (MSD).
func TestPredictFolderParts(t *testing.T) {
	for _, layout := range []string{"brats2021", "msd"} {
		t.Run(layout, func(t *testing.T) {
			dir := t.TempDir()
			raw, prep, run := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run")
			mustRun(t, "synth", "--kind", "brain", "--layout", layout, "--cases", "5", "--size", "24", "--seed", "3", "--out", raw, "--quiet")
			mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--modalities", "flair,t1ce", "--target", "wt,tc", "--quiet")
			mustRun(t, "train", "--data", prep, "--out", run, "--loss", "dice", "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet")
			out := filepath.Join(dir, "pred")
			for _, p := range []string{"0/2", "1/2"} {
				mustRun(t, "predict", "--run", run, "--in", raw, "--out", out, "--part", p, "--threads", "1")
			}
			ents, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			cases, err := dataset.Scan(raw, mustLayout(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, c := range cases {
				want = append(want, c.ID+".nii.gz")
			}
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("output folder holds %v, want exactly %v (no part lock folders left)", got, want)
			}
			task := readTask(t, run)
			for _, c := range cases {
				in, err := caseInputs(c, task)
				if err != nil {
					t.Fatal(err)
				}
				single := filepath.Join(dir, c.ID+"-single.nii.gz")
				mustRun(t, "predict", "--run", run, "--in", strings.Join(in, ","), "--out", single, "--threads", "1")
				a, _ := os.ReadFile(single)
				b, _ := os.ReadFile(filepath.Join(out, c.ID+".nii.gz"))
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Errorf("case %s: the folder prediction differs from the single-case one", c.ID)
				}
			}
			for _, bad := range [][]string{{"--part", "2/2"}, {"--part", "-1/2"}, {"--part", "1"}, {"--part", "0/0"}, {"--probabilities", filepath.Join(dir, "p.nii.gz")}} {
				args := append([]string{"predict", "--run", run, "--in", raw, "--out", out}, bad...)
				if code, _, stderr := runStd(t, args...); code != 2 || !strings.Contains(stderr, strings.TrimPrefix(bad[0], "--")) {
					t.Errorf("predict %v: exit %d, want 2 naming the flag; stderr %q", bad, code, stderr)
				}
			}
			if code, _, stderr := runStd(t, "predict", "--run", run, "--in", raw, "--out", filepath.Join(dir, "x.nii.gz"), "--part", "0/2"); code != 2 || !strings.Contains(stderr, "--part") {
				t.Errorf("--part with a single-file --out: exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func mustLayout(t *testing.T, dir string) string {
	t.Helper()
	l, err := dataset.Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readTask(t *testing.T, run string) dataset.Task {
	t.Helper()
	task, err := train.LoadTask(run)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

package main

import (
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// TestInferThreadsFlag: fess test and fess predict take --threads and
// refuse a negative count with exit 2 before doing any work.
func TestInferThreadsFlag(t *testing.T) {
	for _, args := range [][]string{
		{"--run", "nowhere", "--out", t.TempDir(), "--threads", "-1"},
	} {
		err := runTest(args, &strings.Builder{}, &strings.Builder{})
		if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "--threads -1") {
			t.Errorf("test %v: exit %d, %v", args, errs.ExitCode(err), err)
		}
	}
	err := runPredict([]string{"--run", "nowhere", "--in", "x.nii", "--out", "y.nii", "--threads", "-2"}, &strings.Builder{})
	if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "--threads -2") {
		t.Errorf("predict: exit %d, %v", errs.ExitCode(err), err)
	}
}

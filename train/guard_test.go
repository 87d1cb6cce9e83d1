package train

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshot returns the bytes of a run's checkpoints and log.
func snapshot(t *testing.T, run string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, n := range []string{LastCheckpoint, BestCheckpoint, "log.jsonl"} {
		b, err := os.ReadFile(filepath.Join(run, n))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = b
	}
	return m
}

func unchanged(t *testing.T, run string, before map[string][]byte) {
	t.Helper()
	for n, b := range snapshot(t, run) {
		if !bytes.Equal(b, before[n]) {
			t.Fatalf("%s changed after the non-finite value", n)
		}
	}
}

// TestNonFiniteWeights injects a NaN into a weight after step 5 (mid epoch
// 2): Run stops with ErrNonFinite naming the weights, and the last and best
// checkpoints and the log stay byte-identical to epoch 1's.
func TestNonFiniteWeights(t *testing.T) {
	data := tinyData(t)
	out := t.TempDir()
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 1
	runTo(t, cfg, out, Options{})
	before := snapshot(t, out)
	cfg.Epochs = 3
	tr, err := New(cfg, out, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Run(Options{afterStep: func(tr *Trainer) {
		if tr.step+1 == 5 {
			tr.Model.Params()[1].Value.Data[0] = float32(math.Inf(1))
		}
	}})
	var nf *ErrNonFinite
	if !errors.As(err, &nf) || nf.Quantity != "weights" || nf.Epoch != 2 || nf.Step != 5 {
		t.Fatalf("err = %v, want ErrNonFinite of the weights at epoch 2 step 5", err)
	}
	if !strings.Contains(err.Error(), "weights became") {
		t.Fatalf("message %q", err)
	}
	unchanged(t, out, before)
}

// TestNonFiniteValidation: a NaN in a validation image stops the run at
// epoch 2's validation, naming the validation loss; nothing of epoch 2 is
// written.
func TestNonFiniteValidation(t *testing.T) {
	data := tinyData(t)
	out := t.TempDir()
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 1
	runTo(t, cfg, out, Options{})
	before := snapshot(t, out)
	cfg.Epochs = 2
	tr, err := New(cfg, out, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.val {
		for j := range tr.val[i].Img {
			tr.val[i].Img[j] = float32(math.NaN())
		}
	}
	_, err = tr.Run(Options{})
	var nf *ErrNonFinite
	if !errors.As(err, &nf) || nf.Quantity != "validation loss" || nf.Epoch != 2 || nf.Step != 6 {
		t.Fatalf("err = %v, want ErrNonFinite of the validation loss at epoch 2 step 6", err)
	}
	unchanged(t, out, before)
}

// TestDivergence trains one good epoch, then resumes with a huge learning
// rate: the run stops with ErrNonFinite naming the quantity, the last and
// best checkpoints and the log stay byte-identical to the good epoch's, and
// the run still resumes.
func TestDivergence(t *testing.T) {
	data := tinyData(t)
	out := t.TempDir()
	cfg := tinyConfig(data, "dice")
	cfg.Epochs, cfg.ValEvery = 1, 1
	runTo(t, cfg, out, Options{})
	before := snapshot(t, out)
	cfg.LR, cfg.ClipNorm, cfg.Epochs = 1e30, 0, 5
	tr, err := New(cfg, out, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Run(Options{})
	var nf *ErrNonFinite
	if !errors.As(err, &nf) || nf.Epoch < 2 {
		t.Fatalf("err = %v, want ErrNonFinite after epoch 1", err)
	}
	switch nf.Quantity {
	case "training loss", "weights", "validation loss":
	default:
		t.Fatalf("quantity %q", nf.Quantity)
	}
	if !strings.HasPrefix(err.Error(), nf.Quantity+" became ") {
		t.Fatalf("message %q", err)
	}
	t.Logf("%v", err)
	unchanged(t, out, before)
	if _, err := New(cfg, out, Options{Resume: true}); err != nil {
		t.Fatalf("the last checkpoint does not resume: %v", err)
	}
}

func TestStagnation(t *testing.T) {
	flat := make([]float64, 12)
	for i := range flat {
		flat[i] = 0.5 + 1e-6*float64(i%2)
	}
	if stagnation(flat) == "" {
		t.Fatal("no warning for a flat loss")
	}
	if stagnation(flat[:9]) != "" {
		t.Fatal("warning with fewer than 10 epochs")
	}
	moving := append([]float64(nil), flat...)
	moving[8] = 0.49
	if stagnation(moving) != "" {
		t.Fatal("warning for a moving loss")
	}
}

// TestStagnationWarning: a run with a negligible learning rate (one batch
// of every training case, no dropout) ends with the warning in Warnings
// and on Progress.
func TestStagnationWarning(t *testing.T) {
	data := tinyData(t)
	cfg := tinyConfig(data, "dice")
	cfg.LR, cfg.Epochs, cfg.Batch, cfg.ValEvery = 1e-12, 10, 6, 10
	cfg.Model.Dropout = -1
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if _, err := tr.Run(Options{Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) != 1 || !strings.Contains(progress.String(), "fess: warning: the training loss has not moved") {
		t.Fatalf("warnings %q, progress %q", tr.Warnings, progress.String())
	}
}

package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/kernels"
)

// TestPrecisionBF16 trains the tiny recipe in fp32 and in bf16: the bf16
// run is deterministic (twice bit-identical), really differs from fp32 (the
// GEMMs took the bfloat16 path) yet stays close to it, and config.json
// records the precision.
func TestPrecisionBF16(t *testing.T) {
	if !kernels.HasBF16() {
		if err := SetPrecision("bf16"); err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "AVX-512-BF16") {
			t.Fatalf("bf16 on a CPU without AVX-512-BF16: %v, want a usage error naming the instruction set", err)
		}
		t.Skip("this CPU has no AVX-512-BF16: the bf16 training path cannot run here")
	}
	defer SetPrecision("fp32")
	data := tinyData(t)
	dir := t.TempDir()
	fp := tinyConfig(data, "dice")
	bf := fp
	bf.Precision = "bf16"
	runTo(t, fp, filepath.Join(dir, "fp32"), Options{})
	runTo(t, bf, filepath.Join(dir, "bf16a"), Options{})
	if kernels.Precision() != kernels.BF16 {
		t.Fatalf("after a bf16 run the process precision is %v", kernels.Precision())
	}
	runTo(t, bf, filepath.Join(dir, "bf16b"), Options{})
	a := paramsOf(t, filepath.Join(dir, "fp32", LastCheckpoint))
	b1 := paramsOf(t, filepath.Join(dir, "bf16a", LastCheckpoint))
	b2 := paramsOf(t, filepath.Join(dir, "bf16b", LastCheckpoint))
	var diff, norm float64
	for name, va := range a {
		vb, vc := b1[name], b2[name]
		if len(vb) != len(va) || len(vc) != len(va) {
			t.Fatalf("%s: lengths %d, %d, %d", name, len(va), len(vb), len(vc))
		}
		for i := range va {
			if math.Float32bits(vb[i]) != math.Float32bits(vc[i]) {
				t.Fatalf("%s[%d]: two bf16 runs differ (%g vs %g)", name, i, vb[i], vc[i])
			}
			d := float64(va[i] - vb[i])
			diff += d * d
			norm += float64(va[i]) * float64(va[i])
		}
	}
	rel := math.Sqrt(diff / norm)
	t.Logf("relative weight difference bf16 vs fp32 after training: %.3g", rel)
	if rel == 0 {
		t.Fatal("bf16 training gave exactly the fp32 weights: the bfloat16 GEMM path was not used")
	}
	if rel > 0.05 {
		t.Errorf("bf16 weights differ from fp32 by %.3g (relative), more than 5%%", rel)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "bf16a", "config.json"))
	if err != nil || cfg.Precision != "bf16" {
		t.Fatalf("config.json precision %q, %v", cfg.Precision, err)
	}
	if err := SetPrecision("fp16"); err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "fp16") {
		t.Errorf("--precision fp16: %v, want a usage error naming the value", err)
	}
	bad := fp
	bad.Precision = "half"
	if err := bad.Defaults().Validate(); err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("config precision half: %v", err)
	}
}

// TestSameBatchWithoutDropoutWarns: FESS's same-batch pairing without
// dropout is the degenerate zero-gradient term, which New says; with
// dropout, or with previous-batch, it does not.
func TestSameBatchWithoutDropoutWarns(t *testing.T) {
	data := tinyData(t)
	for _, c := range []struct {
		pairing string
		dropout float32
		warn    bool
	}{{"same-batch", 0, true}, {"same-batch", 0.2, false}, {"previous-batch", 0, false}} {
		cfg := tinyConfig(data, "fess")
		cfg.Pairing, cfg.Model.Dropout = c.pairing, c.dropout
		tr, err := New(cfg, t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(strings.Join(tr.Warnings, "\n"), "zero gradient")
		if got != c.warn {
			t.Errorf("pairing %s dropout %g: warning %v, want %v (%q)", c.pairing, c.dropout, got, c.warn, tr.Warnings)
		}
	}
}

package train

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/volume"
)

var (
	prepOnce sync.Once
	prepDir  string
	rawDir   string
	prepErr  error
)

// tinyData prepares 10 synthetic brain cases at 16³ once per test binary.
func tinyData(t *testing.T) string {
	t.Helper()
	prepOnce.Do(func() {
		base, err := os.MkdirTemp("", "fess-train-test")
		if err != nil {
			prepErr = err
			return
		}
		rawDir = filepath.Join(base, "raw")
		prepDir = filepath.Join(base, "prep")
		if err := os.MkdirAll(rawDir, 0o755); err != nil {
			prepErr = err
			return
		}
		if prepErr = dataset.WriteSynth("brain", rawDir, 10, 24, 7, 2, nil); prepErr != nil {
			return
		}
		_, _, prepErr = dataset.Prepare(rawDir, prepDir, dataset.Options{Layout: "brats2017", Size: 16, Target: "wt",
			Seed: 3, Split: [3]float64{0.6, 0.2, 0.2}, Workers: 2})
	})
	if prepErr != nil {
		t.Fatal(prepErr)
	}
	return prepDir
}

func tinyConfig(data, lossName string) Config {
	c := Config{Data: data, Loss: lossName, Epochs: 3, Batch: 2, LR: 1e-3, Seed: 5, Threads: 2}
	c.Model.Filters, c.Model.Levels, c.Model.Dropout = 2, 2, 0.1
	return c
}

func runTo(t *testing.T, cfg Config, out string, opts Options) *Trainer {
	t.Helper()
	tr, err := New(cfg, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(opts); err != nil {
		t.Fatal(err)
	}
	return tr
}

// paramsOf returns every float tensor of a checkpoint (the state_dict's
// and the "fess/" training state's) by name.
func paramsOf(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	ck, err := readCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]float32{}
	for _, nt := range ck.torch {
		if nt.Data != nil {
			m[nt.Name] = nt.Data
		}
	}
	for _, r := range ck.recs {
		if r.Tensor != nil {
			m[r.Name] = r.Tensor.Data
		}
	}
	return m
}

func sameBits(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("checkpoints hold %d and %d tensors", len(a), len(b))
	}
	for name, av := range a {
		bv := b[name]
		if len(av) != len(bv) {
			t.Fatalf("%s: lengths %d and %d", name, len(av), len(bv))
		}
		for i := range av {
			if math.Float32bits(av[i]) != math.Float32bits(bv[i]) {
				t.Fatalf("%s[%d]: %v vs %v (not bit-identical)", name, i, av[i], bv[i])
			}
		}
	}
}

// TestKillResumeBitIdentical kills a training run with SIGKILL in the middle
// of its second epoch, resumes it, and checks the final checkpoint equals an
// uninterrupted run's bit for bit (README: Reliability), for FESS (previous-batch
// pairing keeps the last bottleneck in the checkpoint) and InfoNCE (queue).
func TestKillResumeBitIdentical(t *testing.T) {
	if os.Getenv("FESS_KILL_CHILD") != "" {
		cfg := tinyConfig(os.Getenv("FESS_KILL_DATA"), os.Getenv("FESS_KILL_LOSS"))
		opts := Options{killAtStep: 5} // 3 steps per epoch: step 5 is mid epoch 2
		tr, err := New(cfg, os.Getenv("FESS_KILL_OUT"), opts)
		if err != nil {
			t.Fatal(err)
		}
		tr.Run(opts)
		t.Fatal("training was not killed")
	}
	data := tinyData(t)
	for _, l := range []string{"fess", "infonce"} {
		t.Run(l, func(t *testing.T) {
			dir := t.TempDir()
			full, killed := filepath.Join(dir, "full"), filepath.Join(dir, "killed")
			runTo(t, tinyConfig(data, l), full, Options{})

			runKilledChild(t, "TestKillResumeBitIdentical", "FESS_KILL_CHILD=1", "FESS_KILL_DATA="+data, "FESS_KILL_OUT="+killed, "FESS_KILL_LOSS="+l)
			// The killed run finished epoch 1 only.
			tr, err := New(tinyConfig(data, l), killed, Options{Resume: true})
			if err != nil {
				t.Fatal(err)
			}
			if tr.epoch != 1 || tr.step != 3 {
				t.Fatalf("resumed at epoch %d step %d, want 1 and 3", tr.epoch, tr.step)
			}
			if _, err := tr.Run(Options{}); err != nil {
				t.Fatal(err)
			}
			sameBits(t, paramsOf(t, filepath.Join(full, LastCheckpoint)), paramsOf(t, filepath.Join(killed, LastCheckpoint)))
			a, _ := os.ReadFile(filepath.Join(full, "log.jsonl"))
			b, _ := os.ReadFile(filepath.Join(killed, "log.jsonl"))
			if n, m := bytes.Count(a, []byte("\n")), bytes.Count(b, []byte("\n")); n != 3 || m != 3 {
				t.Fatalf("log lines: uninterrupted %d, resumed %d; want 3", n, m)
			}
		})
	}
}

// TestEveryLossTrains runs one epoch of every loss and pairing: the loss is
// finite, the parts are logged, and the weights move.
func TestEveryLossTrains(t *testing.T) {
	data := tinyData(t)
	cases := []struct{ loss, pairing string }{
		{"fess", "previous-batch"}, {"fess", "same-batch"}, {"fess", "seed-exact"},
		{"dice", ""}, {"simclr", ""}, {"infonce", ""}, {"bce", ""}, {"dicebce", ""}, {"focal", ""}, {"tversky", ""},
	}
	for _, c := range cases {
		t.Run(c.loss+"/"+c.pairing, func(t *testing.T) {
			cfg := tinyConfig(data, c.loss)
			cfg.Pairing, cfg.Epochs = c.pairing, 1
			tr, err := New(cfg, t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			before := tr.Model.Params()[0].Value.Clone()
			logs, err := tr.Run(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != 1 || math.IsNaN(logs[0].Loss) || logs[0].ValDice == nil {
				t.Fatalf("log %+v", logs)
			}
			if c.loss == "fess" || c.loss == "simclr" || c.loss == "infonce" {
				if _, ok := logs[0].Parts["con_loss"]; !ok {
					t.Fatalf("no con_loss in %v", logs[0].Parts)
				}
			}
			moved := false
			for i, v := range tr.Model.Params()[0].Value.Data {
				moved = moved || v != before.Data[i]
			}
			if !moved {
				t.Fatal("weights did not change")
			}
		})
	}
}

// TestNaNGuard: a NaN in the data stops training with ErrNonFinite and
// leaves the last checkpoint as the last good state.
func TestNaNGuard(t *testing.T) {
	data := tinyData(t)
	out := t.TempDir()
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 1
	runTo(t, cfg, out, Options{})
	good, _ := os.ReadFile(filepath.Join(out, LastCheckpoint))
	cfg.Epochs = 2
	tr, err := New(cfg, out, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.train {
		tr.train[i].Img[0] = float32(math.NaN())
	}
	_, err = tr.Run(Options{})
	var nf *ErrNonFinite
	if !errors.As(err, &nf) || nf.Epoch != 2 {
		t.Fatalf("err = %v, want ErrNonFinite at epoch 2", err)
	}
	now, _ := os.ReadFile(filepath.Join(out, LastCheckpoint))
	if !bytes.Equal(good, now) {
		t.Fatal("the last checkpoint changed after the NaN")
	}
}

// TestEvaluateAndPredict checks fess test's outputs and that fess predict
// writes a mask on the input's native grid and affine.
func TestEvaluateAndPredict(t *testing.T) {
	data := tinyData(t)
	run := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig(data, "fess")
	cfg.Epochs = 1
	runTo(t, cfg, run, Options{})
	out := filepath.Join(t.TempDir(), "test")
	sum, rows, err := Evaluate(run, "", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Cases != len(rows) || sum.Cases == 0 || sum.Metrics["dice"].N+sum.Metrics["dice"].NaNs != sum.Cases {
		t.Fatalf("summary %+v", sum)
	}
	f, err := os.Open(filepath.Join(out, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != len(rows)+1 || recs[0][0] != "case" || recs[0][1] != "region" || recs[0][2] != "dice" {
		t.Fatalf("metrics.csv: %v %v", err, recs)
	}
	if _, err := ReadSummary(filepath.Join(out, "summary.json")); err != nil {
		t.Fatal(err)
	}
	p, _ := dataset.Open(data)
	ci := p.Split("test")[0]
	if _, err := os.Stat(filepath.Join(out, "pred", ci.ID+".nii.gz")); err != nil {
		t.Fatal(err)
	}
	mask := filepath.Join(t.TempDir(), "mask.nii.gz")
	if err := PredictFile(run, []string{ci.SourceImage}, mask, PredictOptions{Frame: -1, Threshold: 0.5}); err != nil {
		t.Fatal(err)
	}
	in, err := volume.Read(ci.SourceImage)
	if err != nil {
		t.Fatal(err)
	}
	got, err := volume.Read(mask)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dims != in.Dims || got.Affine != in.Affine {
		t.Fatalf("mask grid %v %v, input %v %v", got.Dims, got.Affine, in.Dims, in.Affine)
	}
	for _, v := range got.Data {
		if v != 0 && v != 1 {
			t.Fatalf("mask value %v", v)
		}
	}
}

func TestBadConfig(t *testing.T) {
	data := tinyData(t)
	for _, mod := range []func(*Config){
		func(c *Config) { c.Loss = "nope" },
		func(c *Config) { c.Pairing = "sideways" },
		func(c *Config) { c.Data = "" },
		func(c *Config) { c.Lambda = 2 },
	} {
		c := tinyConfig(data, "fess")
		mod(&c)
		if _, err := New(c, t.TempDir(), Options{}); err == nil {
			t.Fatalf("config %+v accepted", c)
		}
	}
	// A second run into the same folder without --resume is refused.
	out := t.TempDir()
	c := tinyConfig(data, "dice")
	c.Epochs = 1
	runTo(t, c, out, Options{})
	if _, err := New(c, out, Options{}); err == nil {
		t.Fatal("overwrote an existing run")
	}
}

// runKilledChild reruns this test binary's test name in a child process
// with env added (the child trains until its killAtStep SIGKILLs it) and
// fails unless the child died of SIGKILL.
func runKilledChild(t *testing.T, name string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child did not fail: %v\n%s", err, out.String())
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out.String())
	}
}

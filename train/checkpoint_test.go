package train

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
)

// toLegacy rewrites a run's safetensors checkpoints as the FESSST01 files
// runs wrote before the switch (last.ckpt, best.ckpt) and removes the new
// ones, so the run looks like one from an older fess.
func toLegacy(t *testing.T, run string, cfg Config) {
	t.Helper()
	for _, p := range [][2]string{{LastCheckpoint, LegacyLast}, {BestCheckpoint, LegacyBest}} {
		src := filepath.Join(run, p[0])
		if !exists(src) {
			continue
		}
		m, ck, err := loadCheckpointModel(src, "")
		if err != nil {
			t.Fatal(err)
		}
		// The older files held the model's records first, as save did.
		recs := m.State().Records()
		for _, r := range ck.recs {
			if !strings.HasPrefix(r.Name, "rng/") {
				recs = append(recs, r)
			}
		}
		if err := tensor.SaveFile(filepath.Join(run, p[1]), recs); err != nil {
			t.Fatal(err)
		}
		os.Remove(src)
	}
}

func wantInputError(t *testing.T, err error, mention ...string) {
	t.Helper()
	var ie *errs.InputError
	if !errors.As(err, &ie) || errs.ExitCode(err) != 2 {
		t.Fatalf("err = %v, want an input error (exit 2)", err)
	}
	for _, s := range mention {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%q does not mention %q", err, s)
		}
	}
}

// TestCheckpointLayout: a checkpoint is a safetensors file whose model
// part is the PyTorch state_dict and whose other state is under fess/.
func TestCheckpointLayout(t *testing.T) {
	data := tinyData(t)
	run := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig(data, "infonce")
	cfg.Epochs = 1
	tr := runTo(t, cfg, run, Options{})
	for _, f := range []string{LegacyLast, LegacyBest} {
		if exists(filepath.Join(run, f)) {
			t.Fatalf("a new run wrote %s", f)
		}
	}
	f, err := safetensors.ReadFile(filepath.Join(run, LastCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	md := f.Metadata
	if md[FormatKey] != CheckpointFormat || md[VersionKey] != safetensors.FessVersion || md["fess_sha256"] == "" ||
		!strings.Contains(md["config"], `"Filters":2`) {
		t.Fatalf("metadata %v", md)
	}
	names := map[string]bool{}
	for _, ts := range f.Tensors {
		names[ts.Name] = true
		if strings.HasPrefix(ts.Name, "fess/bn/") || strings.HasPrefix(ts.Name, "fess/param/enc") {
			t.Fatalf("model tensor %s stored as training state", ts.Name)
		}
	}
	for _, n := range tr.Model.TorchNames() {
		if !names[n] {
			t.Fatalf("state_dict entry %s missing", n)
		}
	}
	for _, n := range []string{"fess/train/loop", "fess/optim/adam/step", "final.weight", "enc.0.0.bn.running_var"} {
		if !names[n] {
			t.Fatalf("no %s in %v", n, names)
		}
	}
	// Loading gives back the trained model exactly.
	m, _, warn, err := LoadModelWarn(run)
	if err != nil || warn != "" {
		t.Fatal(err, warn)
	}
	a, b := tr.Model.State().Records(), m.State().Records()
	if err := sameRecords(a, b); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyRunLoadsResumesAndConverts: a run folder holding the older
// last.ckpt/best.ckpt still evaluates, resumes bit-identically into the new
// format, and `convert` turns its checkpoint into one that resumes the same.
func TestLegacyRunLoadsResumesAndConverts(t *testing.T) {
	data := tinyData(t)
	dir := t.TempDir()
	cfg := tinyConfig(data, "fess")
	full := filepath.Join(dir, "full")
	runTo(t, cfg, full, Options{})
	want := paramsOf(t, filepath.Join(full, LastCheckpoint))

	part := cfg
	part.Epochs = 1
	old := filepath.Join(dir, "old")
	runTo(t, part, old, Options{})
	toLegacy(t, old, cfg)
	if !HasCheckpoint(old) || LastPath(old) != filepath.Join(old, LegacyLast) {
		t.Fatalf("legacy run not recognised: %s", LastPath(old))
	}
	m, _, warn, err := LoadModelWarn(old)
	if err != nil || warn != "" || m == nil {
		t.Fatal("legacy run does not load:", err, warn)
	}
	if _, err := New(cfg, old, Options{}); errs.ExitCode(err) != 2 {
		t.Fatalf("a fresh start over a legacy run: %v", err)
	}

	// Convert before resuming (the resume writes last.safetensors).
	conv := filepath.Join(dir, "conv")
	if err := os.MkdirAll(conv, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "data_options.json", taskFile, "log.jsonl"} {
		b, err := os.ReadFile(filepath.Join(old, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(conv, f), b, 0o644)
	}
	if err := ConvertCheckpoint(filepath.Join(old, LegacyLast), filepath.Join(conv, LastCheckpoint), filepath.Join(old, "config.json")); err != nil {
		t.Fatal(err)
	}

	tr, err := New(cfg, old, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if tr.epoch != 1 {
		t.Fatalf("resumed at epoch %d", tr.epoch)
	}
	if _, err := tr.Run(Options{}); err != nil {
		t.Fatal(err)
	}
	sameBits(t, want, paramsOf(t, filepath.Join(old, LastCheckpoint)))

	tr, err = New(cfg, conv, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(Options{}); err != nil {
		t.Fatal(err)
	}
	sameBits(t, want, paramsOf(t, filepath.Join(conv, LastCheckpoint)))
}

// rewrite decodes a checkpoint, lets edit change its tensors, and encodes
// it again (with a fresh, matching checksum).
func rewrite(t *testing.T, path string, edit func(f *safetensors.File)) {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(f)
	if err := safetensors.WriteFile(path, f.Tensors, f.Metadata); err != nil {
		t.Fatal(err)
	}
}

func setNaN(name string) func(f *safetensors.File) {
	return func(f *safetensors.File) {
		for i, ts := range f.Tensors {
			if ts.Name == name {
				d := append([]byte(nil), ts.Data...)
				binary.LittleEndian.PutUint32(d[4:], math.Float32bits(float32(math.NaN())))
				f.Tensors[i].Data = d
			}
		}
	}
}

// TestBadCheckpoints: corrupt, truncated, empty and NaN-holding checkpoints
// are input errors naming the file (and, for NaN, the tensor), both when
// resuming and when loading the model.
func TestBadCheckpoints(t *testing.T) {
	data := tinyData(t)
	src := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 1
	runTo(t, cfg, src, Options{})
	good, err := os.ReadFile(filepath.Join(src, LastCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		mention []string
		make    func(path string)
	}{
		{"flipped data byte", []string{"checksum mismatch"}, func(p string) {
			b := append([]byte(nil), good...)
			b[len(b)-10] ^= 0x04
			os.WriteFile(p, b, 0o644)
		}},
		{"flipped header byte", []string{"safetensors"}, func(p string) {
			b := append([]byte(nil), good...)
			b[9] = '['
			os.WriteFile(p, b, 0o644)
		}},
		{"truncated", []string{"truncated"}, func(p string) { os.WriteFile(p, good[:len(good)/2], 0o644) }},
		{"empty", []string{"empty"}, func(p string) { os.WriteFile(p, nil, 0o644) }},
		{"NaN weight", []string{`"final.weight"`, "non-finite"}, func(p string) {
			os.WriteFile(p, good, 0o644)
			rewrite(t, p, setNaN("final.weight"))
		}},
		{"NaN optimiser moment", []string{`"fess/optim/adam/v/final.w"`, "non-finite"}, func(p string) {
			os.WriteFile(p, good, 0o644)
			rewrite(t, p, setNaN("fess/optim/adam/v/final.w"))
		}},
		{"not a checkpoint", []string{"not a fess checkpoint"}, func(p string) {
			os.WriteFile(p, good, 0o644)
			rewrite(t, p, func(f *safetensors.File) { delete(f.Metadata, FormatKey) })
		}},
		{"missing weight", []string{`"final.bias"`}, func(p string) {
			os.WriteFile(p, good, 0o644)
			rewrite(t, p, func(f *safetensors.File) {
				var keep []safetensors.Tensor
				for _, ts := range f.Tensors {
					if ts.Name != "final.bias" {
						keep = append(keep, ts)
					}
				}
				f.Tensors = keep
			})
		}},
		{"legacy truncated", []string{"checksum"}, func(p string) {
			m, ck, err := loadCheckpointModel(filepath.Join(src, LastCheckpoint), "")
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			tensor.Encode(&b, ck.allRecords(m))
			os.WriteFile(p, b.Bytes()[:b.Len()-7], 0o644)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			os.MkdirAll(run, 0o755)
			for _, f := range []string{"config.json", "data_options.json", taskFile} {
				b, _ := os.ReadFile(filepath.Join(src, f))
				os.WriteFile(filepath.Join(run, f), b, 0o644)
			}
			name := LastCheckpoint
			if strings.HasPrefix(c.name, "legacy") {
				name = LegacyLast
			}
			p := filepath.Join(run, name)
			c.make(p)
			_, err := New(cfg, run, Options{Resume: true})
			wantInputError(t, err, append([]string{p}, c.mention...)...)
			_, _, _, err = LoadModelWarn(run)
			wantInputError(t, err, append([]string{p}, c.mention...)...)
		})
	}
}

// TestLoadModelFallsBack: a bad best checkpoint falls back to the last
// one with a warning naming it; both bad is an error naming both.
func TestLoadModelFallsBack(t *testing.T) {
	data := tinyData(t)
	run := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 2
	tr := runTo(t, cfg, run, Options{})
	best, last := filepath.Join(run, BestCheckpoint), filepath.Join(run, LastCheckpoint)
	if !exists(best) {
		t.Fatal("no best checkpoint")
	}
	b, _ := os.ReadFile(best)
	b[len(b)-1] ^= 1
	os.WriteFile(best, b, 0o644)
	m, _, warn, err := LoadModelWarn(run)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn, best) || !strings.Contains(warn, "checksum") || !strings.Contains(warn, last) {
		t.Fatalf("warning %q", warn)
	}
	if err := sameRecords(tr.Model.State().Records(), m.State().Records()); err != nil {
		t.Fatalf("fallback did not load the last checkpoint: %v", err)
	}
	os.WriteFile(last, nil, 0o644)
	_, _, _, err = LoadModelWarn(run)
	wantInputError(t, err, best, last, "checksum", "empty")
	// Missing files: an input error naming the run.
	os.Remove(best)
	os.Remove(last)
	_, _, _, err = LoadModelWarn(run)
	wantInputError(t, err, run)
}

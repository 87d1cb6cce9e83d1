package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
	"github.com/fess-seg/fess/train"
)

const checkScript = "../../model/torch/check_fess.py"

// needTorch skips unless /usr/bin/python3 imports torch and numpy (CI
// installs Debian's python3-torch).
func needTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no PyTorch comparison")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, numpy").Run(); err != nil {
		t.Skip("/usr/bin/python3 cannot import torch and numpy (install python3-torch):", err)
	}
}

// torchBatch writes the training split of a prepared set as one batch in
// PyTorch's order: "x" [N,C,X,Y,Z] and "y" [N,K,X,Y,Z] (K = the task's
// output channels, the background first for softmax classes).
func torchBatch(t *testing.T, prep, path string) int {
	t.Helper()
	p, err := dataset.Open(prep)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := train.LoadSamples(p, "train", 0)
	if err != nil {
		t.Fatal(err)
	}
	task := p.Task()
	s, c, k := p.Size(), len(task.Channels), task.OutChannels()
	vox := s * s * s
	n := len(ss)
	x := make([]float32, n*c*vox)
	y := make([]float32, n*k*vox)
	// fess's sample layout is channel after channel of [z][y][x]; PyTorch's
	// voxel index is (x·S + y)·S + z.
	tv := func(i int) int { z, yy, xx := i/(s*s), i/s%s, i%s; return (xx*s+yy)*s + z }
	for b, smp := range ss {
		for ch := 0; ch < c; ch++ {
			for i := 0; i < vox; i++ {
				x[(b*c+ch)*vox+tv(i)] = smp.Img[ch*vox+i]
			}
		}
		r := len(smp.Mask) / vox
		for i := 0; i < vox; i++ {
			bg := float32(1)
			for j := 0; j < r; j++ {
				if smp.Mask[j*vox+i] == 0 {
					continue
				}
				bg = 0
				if task.Softmax {
					y[(b*k+j+1)*vox+tv(i)] = 1
				} else {
					y[(b*k+j)*vox+tv(i)] = 1
				}
			}
			if task.Softmax {
				y[(b*k)*vox+tv(i)] = bg
			}
		}
	}
	err = safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.F32("x", []int{n, c, s, s, s}, x),
		safetensors.F32("y", []int{n, k, s, s, s}, y)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// firstLoss reads epoch 1's loss from a run's log.jsonl.
func firstLoss(t *testing.T, run string) float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		t.Fatal("empty log.jsonl")
	}
	var e struct {
		Epoch int
		Loss  float64
	}
	if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Epoch != 1 {
		t.Fatalf("log line %q: %v", sc.Text(), err)
	}
	return e.Loss
}

// TestTrainInitFromTorch starts `fess train --init` from networks built and
// initialised by PyTorch (model/torch/fess_unet.py) and checks that fess's
// first training step has PyTorch's loss: the batch is the whole training
// split (so the shuffle does not change it), the loss is the soft Dice, BN
// uses batch statistics and dropout is 0. Then `fess import` turns the same
// weights into a run that `fess test` evaluates and `fess export` writes
// back unchanged, and PyTorch loads that export strictly.
func TestTrainInitFromTorch(t *testing.T) {
	needTorch(t)
	dir := t.TempDir()
	raw, prep := filepath.Join(dir, "raw"), filepath.Join(dir, "prep")
	mustRun(t, "synth", "--kind", "brain", "--cases", "6", "--size", "24", "--seed", "5", "--out", raw)
	mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--modalities", "flair,t1,t1ce,t2",
		"--target", "wt,tc,et", "--split", "0.67,0.16,0.17", "--quiet")
	// The same cases as softmax classes (background + labels 1, 2, 4).
	prepSoft := filepath.Join(dir, "prep-soft")
	mustRun(t, "prepare", "--in", raw, "--out", prepSoft, "--size", "16", "--modalities", "flair",
		"--classes", "1,2,4", "--split", "0.67,0.16,0.17", "--quiet")
	batch, batchSoft := filepath.Join(dir, "batch.safetensors"), filepath.Join(dir, "batch-soft.safetensors")
	n := torchBatch(t, prep, batch)
	if n < 2 || torchBatch(t, prepSoft, batchSoft) != n {
		t.Fatalf("%d training cases", n)
	}
	cases := []struct {
		name   string
		config string
		soft   bool     // the softmax data set
		bare   bool     // init from the file without metadata, with these flags
		flags  []string // model flags for the bare file
	}{
		{"unet3d", `{"Preset":"unet3d","Filters":4,"Levels":2,"InChannels":4,"OutChannels":3}`, false, false, nil},
		{"unet3d-bare", `{"Preset":"unet3d","Filters":4,"Levels":2,"InChannels":4,"OutChannels":3}`, false, true, []string{"--filters", "4", "--levels", "2"}},
		{"seed", `{"Preset":"seed","Filters":2,"Levels":2,"BottleneckChannels":8,"Dropout":-1,"InChannels":4,"OutChannels":3}`, false, false, nil},
		{"softmax", `{"Preset":"unet3d","Filters":4,"Levels":2,"InChannels":1,"OutChannels":4,"Softmax":true}`, true, false, nil},
	}
	var unetWeights string
	for i, c := range cases {
		w, bare := filepath.Join(dir, c.name+".safetensors"), filepath.Join(dir, c.name+"-bare.safetensors")
		data, b := prep, batch
		if c.soft {
			data, b = prepSoft, batchSoft
		}
		out, err := exec.Command("/usr/bin/python3", checkScript, "firststep", c.config, itoa(10+i), b, w, bare).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: check_fess.py firststep: %v\n%s", c.name, err, out)
		}
		var res struct{ Loss float64 }
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("%s: python output %q: %v", c.name, out, err)
		}
		init := w
		if c.bare {
			init = bare
		}
		run := filepath.Join(dir, "run-"+c.name)
		args := []string{"train", "--data", data, "--out", run, "--init", init, "--loss", "dice", "--epochs", "1", "--batch", itoa(n), "--quiet"}
		mustRun(t, append(args, c.flags...)...)
		got := firstLoss(t, run)
		t.Logf("%s: first-step Dice loss fess %.8f, PyTorch %.8f, |Δ| %.2g", c.name, got, res.Loss, math.Abs(got-res.Loss))
		if math.Abs(got-res.Loss) > 1e-5 {
			t.Errorf("%s: first-step loss %.8f, PyTorch's %.8f", c.name, got, res.Loss)
		}
		if i == 0 {
			unetWeights = w
		}
	}

	// Wrong architecture: named tensor, both shapes, exit 2.
	code, _, stderr := runStd(t, "train", "--data", prep, "--out", filepath.Join(dir, "bad"), "--init", unetWeights,
		"--filters", "8", "--quiet")
	if code != 2 || !strings.Contains(stderr, `"enc.0.0.conv.weight"`) || !strings.Contains(stderr, "[4 4 3 3 3]") ||
		!strings.Contains(stderr, "[8 4 3 3 3]") {
		t.Errorf("train --init with other filters: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runStd(t, "train", "--out", filepath.Join(dir, "run-unet3d"), "--resume", "--init", unetWeights); code != 2 {
		t.Errorf("train --resume --init exited %d, want 2", code)
	}

	// import → test → export round trip.
	imp := filepath.Join(dir, "imported")
	mustRun(t, "import", "--safetensors", unetWeights, "--data", prep, "--out", imp)
	for _, f := range []string{"config.json", "data_options.json", "task.json", train.LastCheckpoint, train.BestCheckpoint} {
		if _, err := os.Stat(filepath.Join(imp, f)); err != nil {
			t.Errorf("import: missing %s: %v", f, err)
		}
	}
	mustRun(t, "test", "--run", imp, "--out", filepath.Join(imp, "test"), "--quiet")
	exp := filepath.Join(dir, "export.safetensors")
	mustRun(t, "export", "--run", imp, "--format", "safetensors", "--out", exp)
	want, _, err := model.ReadTorchFile(unetWeights)
	if err != nil {
		t.Fatal(err)
	}
	got, meta, err := model.ReadTorchFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	gotBy := map[string]model.NamedTensor{}
	for _, g := range got {
		gotBy[g.Name] = g
	}
	if len(got) != len(want) {
		t.Fatalf("export has %d tensors, the imported file %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := gotBy[w.Name]
		if !ok || !tensor.SameShape(g.Shape, w.Shape) {
			t.Fatalf("export: %s missing or of shape %v, want %v", w.Name, g.Shape, w.Shape)
		}
		for j := range w.Data {
			if g.Data[j] != w.Data[j] {
				t.Fatalf("export: %s[%d] = %v, imported %v", w.Name, j, g.Data[j], w.Data[j])
			}
		}
	}
	for k, v := range map[string]string{"format": "pt", "channels": "flair,t1,t1ce,t2", "regions": "wt,tc,et",
		"activation": "sigmoid", "inputs": "input", "outputs": "logits"} {
		if meta[k] != v {
			t.Errorf("export metadata %q = %q, want %q", k, meta[k], v)
		}
	}
	var mc model.Config
	if err := json.Unmarshal([]byte(meta["config"]), &mc); err != nil || mc.Filters != 4 || mc.InChannels != 4 || mc.OutChannels != 3 {
		t.Errorf("export metadata config %q: %v", meta["config"], err)
	}
	if meta["fess_version"] == "" {
		t.Error("export metadata lacks fess_version")
	}
	// PyTorch loads the export strictly and computes fess's logits.
	m, _, err := train.LoadModel(imp)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(1, 16, 16, 16, 4)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(0.37 * float64(i)))
	}
	xt := make([]float32, len(x.Data))
	for i := 0; i < 16*16*16; i++ {
		z, yy, xx := i/256, i/16%16, i%16
		for ch := 0; ch < 4; ch++ {
			xt[ch*4096+(xx*16+yy)*16+z] = x.Data[i*4+ch]
		}
	}
	in, outf := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "out.safetensors")
	if err := safetensors.WriteFile(in, []safetensors.Tensor{safetensors.F32("x", []int{1, 4, 16, 16, 16}, xt)}, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", checkScript, "forward", exp, in, outf).CombinedOutput(); err != nil {
		t.Fatalf("check_fess.py forward on the export: %v\n%s", err, out)
	}
	f, err := safetensors.ReadFile(outf)
	if err != nil {
		t.Fatal(err)
	}
	yt, _ := f.Get("x")
	yv, err := yt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	z, _ := m.ForwardLogits(nil, autodiff.Const(x), false)
	var worst float64
	for i := 0; i < 4096; i++ {
		zz, yy, xx := i/256, i/16%16, i%16
		for k := 0; k < 3; k++ {
			worst = math.Max(worst, math.Abs(float64(z.Value.Data[i*3+k]-yv[k*4096+(xx*16+yy)*16+zz])))
		}
	}
	if worst > 1e-4 {
		t.Errorf("PyTorch on the exported file differs from fess by %g", worst)
	}
	mustRun(t, "export", "--run", imp, "--format", "onnx", "--out", filepath.Join(dir, "m.onnx"))
	if st, err := os.Stat(filepath.Join(dir, "m.onnx")); err != nil || st.Size() == 0 {
		t.Errorf("export --format onnx wrote nothing: %v", err)
	}

	// import refuses a wrong architecture, naming the tensor and shapes.
	code, _, stderr = runStd(t, "import", "--safetensors", unetWeights, "--data", prep, "--out", filepath.Join(dir, "imp2"), "--levels", "3")
	if code != 2 || !strings.Contains(stderr, "tensor") || !strings.Contains(stderr, unetWeights) {
		t.Errorf("import with other levels: exit %d, stderr %q", code, stderr)
	}
}

// TestExportImportUsage checks the commands' usage errors (exit 2) without
// PyTorch.
func TestExportImportUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"export"},
		{"export", "--run", dir, "--out", filepath.Join(dir, "x")},
		{"export", "--run", dir, "--format", "pickle", "--out", filepath.Join(dir, "x")},
		{"export", "--run", filepath.Join(dir, "nope"), "--format", "onnx", "--out", filepath.Join(dir, "x")},
		{"import"},
		{"import", "--safetensors", filepath.Join(dir, "nope.safetensors"), "--data", dir, "--out", filepath.Join(dir, "r")},
		{"train", "--data", dir, "--out", filepath.Join(dir, "r"), "--init", filepath.Join(dir, "nope.safetensors")},
	} {
		if code, _, _ := runStd(t, args...); code != 2 {
			t.Errorf("fess %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
)

// needTorch skips the test unless Debian's /usr/bin/python3 imports torch
// and numpy (CI installs python3-torch).
func needTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no PyTorch comparison")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, numpy").Run(); err != nil {
		t.Skip("/usr/bin/python3 cannot import torch and numpy (install python3-torch):", err)
	}
}

// toTorch turns a fess batch [N,D,H,W,C] (D = z, H = y, W = x) into
// PyTorch's [N,C,X,Y,Z]; fromTorch is the inverse.
func toTorch(x *tensor.Tensor) ([]int, []float32) {
	n, d, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], x.Shape[4]
	out := make([]float32, len(x.Data))
	for b := 0; b < n; b++ {
		for z := 0; z < d; z++ {
			for y := 0; y < h; y++ {
				for xx := 0; xx < w; xx++ {
					for ch := 0; ch < c; ch++ {
						out[(((b*c+ch)*w+xx)*h+y)*d+z] = x.Data[(((b*d+z)*h+y)*w+xx)*c+ch]
					}
				}
			}
		}
	}
	return []int{n, c, w, h, d}, out
}

// TestTorchForwardMatches exports fess networks as safetensors, has
// model/torch/fess_unet.py load them with load_state_dict(strict=True) and
// run its eval forward on the same inputs (non-cubic, in MONAI's N×C×X×Y×Z
// order), and compares the logits with fess's inference forward.
func TestTorchForwardMatches(t *testing.T) {
	needTorch(t)
	for _, cfg := range []Config{
		{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, InChannels: 4, OutChannels: 3, Seed: 3},
		{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, OutChannels: 5, Softmax: true, Seed: 4},
		{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, NoUpBN: true, BottleneckChannels: 12, Seed: 5},
		{Preset: "seed", Filters: 2, Levels: 2, InputSize: 16, BottleneckChannels: 8, Seed: 6},
	} {
		t.Run(fmt.Sprintf("%s-in%d-out%d-softmax%v-noupbn%v", cfg.Preset, max(cfg.InChannels, 1), max(cfg.OutChannels, 1), cfg.Softmax, cfg.NoUpBN), func(t *testing.T) {
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			perturbBN(m, cfg.Seed)
			dir := t.TempDir()
			wf, inf, outf := filepath.Join(dir, "w.safetensors"), filepath.Join(dir, "x.safetensors"), filepath.Join(dir, "y.safetensors")
			if err := m.WriteTorchFile(wf, map[string]string{"fess_version": "test"}); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(cfg.Seed, 9))
			c := m.Cfg.InChannels
			shapes := [][]int{{1, 16, 16, 16, c}, {2, 8, 12, 16, c}, {1, 16, 4, 8, c}}
			var ins []safetensors.Tensor
			var want []*tensor.Tensor
			for i, s := range shapes {
				x := tensor.New(s...)
				for j := range x.Data {
					x.Data[j] = float32(r.NormFloat64())
				}
				ts, td := toTorch(x)
				ins = append(ins, safetensors.F32(fmt.Sprintf("x%d", i), ts, td))
				z, _ := m.ForwardLogits(nil, autodiff.Const(x), false)
				want = append(want, z.Value)
			}
			if err := safetensors.WriteFile(inf, ins, nil); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("/usr/bin/python3", "torch/check_fess.py", "forward", wf, inf, outf).CombinedOutput()
			if err != nil {
				t.Fatalf("check_fess.py forward: %v\n%s", err, out)
			}
			f, err := safetensors.ReadFile(outf)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range want {
				got, ok := f.Get(fmt.Sprintf("x%d", i))
				if !ok {
					t.Fatalf("no output x%d", i)
				}
				gs, wd := toTorch(w)
				if !tensor.SameShape(got.Shape, gs) {
					t.Fatalf("input %d: PyTorch logits %v, fess %v (as N×K×X×Y×Z)", i, got.Shape, gs)
				}
				gv, err := got.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for j := range gv {
					worst = math.Max(worst, math.Abs(float64(gv[j]-wd[j])))
				}
				t.Logf("input %v: max |PyTorch − fess| logit = %.2g", shapes[i], worst)
				if worst > 1e-4 {
					t.Errorf("input %v: logits differ by up to %g (> 1e-4)", shapes[i], worst)
				}
			}
		})
	}
}

package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/train"
	"github.com/fess-seg/fess/volume"
)

// writeNPYf32 writes a C-order float32 .npy file.
func writeNPYf32(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = strconv.Itoa(s)
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", strings.Join(dims, ", "))
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("\x93NUMPY\x01\x00")
	binary.Write(w, binary.LittleEndian, uint16(len(h)))
	w.WriteString(h)
	binary.Write(w, binary.LittleEndian, data)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// readNPYf32 reads a little-endian float32 C-order .npy file as written by
// numpy, values in file order (volume.Read would map the axes to a grid).
func readNPYf32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatalf("%s: not a .npy file", path)
	}
	hl, off := int(binary.LittleEndian.Uint16(b[8:10])), 10
	if b[6] >= 2 {
		hl, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	h := string(b[off : off+hl])
	if !strings.Contains(h, "'<f4'") || !strings.Contains(h, "'fortran_order': False") {
		t.Fatalf("%s: header %s, want little-endian float32 in C order", path, h)
	}
	data := b[off+hl:]
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// readNIfTIData reads a NIfTI file's voxels (x fastest).
func readNIfTIData(t *testing.T, path string) []float32 {
	t.Helper()
	v, err := volume.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.Data
}

// TestWholeCaseSlidingWindow trains two tiny patch runs (two folds) on a
// spacing-mode data set and checks the whole-case path end to end:
// fess test scores in native space; the folds' ensemble averages their
// probabilities; and fess predict's probabilities equal the PyTorch peer's
// sliding window (bench/peer/torch_sliding_window.py) on the same input and
// exported weights within 1e-4, with and without TTA.
func TestWholeCaseSlidingWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny runs")
	}
	dir := t.TempDir()
	raw, prep := filepath.Join(dir, "raw"), filepath.Join(dir, "prep")
	mustRun(t, "synth", "--kind", "brain", "--cases", "8", "--size", "24", "--seed", "4", "--out", raw, "--quiet")
	// The synthetic spacing is 160/24 mm: preparing at it keeps the native
	// grid, so the peer's input is the prepared case itself.
	sp := strconv.FormatFloat(160.0/24, 'g', -1, 64)
	mustRun(t, "prepare", "--in", raw, "--out", prep, "--spacing", sp+","+sp+","+sp, "--modalities", "flair,t1ce",
		"--target", "wt,tc,et", "--folds", "2", "--split", "0.75,0,0.25", "--quiet")
	var runs []string
	for k := range 2 {
		r := filepath.Join(dir, fmt.Sprint("f", k))
		mustRun(t, "train", "--data", prep, "--out", r, "--loss", "dice", "--patch", "8", "--fold", fmt.Sprint(k),
			"--epochs", "1", "--iters-per-epoch", "3", "--filters", "2", "--levels", "2", "--quiet")
		runs = append(runs, r)
	}
	// fess test on one fold and on the ensemble: native space.
	for _, args := range [][]string{{"--run", runs[0]}, {"--runs", strings.Join(runs, ",")}} {
		out := filepath.Join(dir, "test-"+fmt.Sprint(len(args[1])))
		mustRun(t, append(append([]string{"test"}, args...), "--out", out, "--quiet", "--keep-largest")...)
		sum, err := train.ReadSummary(filepath.Join(out, "summary.json"))
		if err != nil || sum.Space != "native" || len(sum.Regions) != 3 {
			t.Fatalf("summary %+v %v", sum, err)
		}
		p, _ := dataset.Open(prep)
		ci := p.Split("test")[0]
		pv, err := volume.Read(filepath.Join(out, "pred", ci.ID+".nii.gz"))
		if err != nil || [3]int(pv.Dims[:3]) != ci.Geometry.Dims || pv.Affine != ci.Geometry.Affine {
			t.Fatalf("prediction grid %v %v, native %v", pv.Dims, err, ci.Geometry.Dims)
		}
	}
	p, err := dataset.Open(prep)
	if err != nil {
		t.Fatal(err)
	}
	ci := p.Split("test")[0]
	caseDir := filepath.Dir(ci.SourceImages[0])
	probsOf := func(extra ...string) []float32 {
		out := filepath.Join(dir, "pp.nii.gz")
		mustRun(t, append([]string{"predict", "--in", caseDir, "--out", filepath.Join(dir, "m.nii.gz"), "--probabilities", out}, extra...)...)
		return readNIfTIData(t, out)
	}
	p0, p1, pe := probsOf("--run", runs[0]), probsOf("--run", runs[1]), probsOf("--runs", strings.Join(runs, ","))
	for i := range pe {
		if d := math.Abs(float64(pe[i] - (p0[i]+p1[i])/2)); d > 1e-6 {
			t.Fatalf("ensemble probability %v, mean of the folds %v", pe[i], (p0[i]+p1[i])/2)
		}
	}

	// The PyTorch peer on the same input and weights.
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import torch, numpy").Run() != nil {
		t.Log("PyTorch not installed: peer comparison skipped")
		return
	}
	img, _, dims, err := p.LoadCase(ci.ID)
	if err != nil {
		t.Fatal(err)
	}
	g := ci.Geometry
	if g.Shape != [3]int{g.CropHi[0] - g.CropLo[0], g.CropHi[1] - g.CropLo[1], g.CropHi[2] - g.CropLo[2]} {
		t.Fatalf("prepared shape %v is not the crop box %v–%v: the grids differ", g.Shape, g.CropLo, g.CropHi)
	}
	c, vox := 2, dims[0]*dims[1]*dims[2]
	npy := make([]float32, len(img))
	for ch := 0; ch < c; ch++ {
		for z := 0; z < dims[2]; z++ {
			for y := 0; y < dims[1]; y++ {
				for x := 0; x < dims[0]; x++ {
					npy[((ch*dims[0]+x)*dims[1]+y)*dims[2]+z] = img[ch*vox+x+dims[0]*(y+dims[1]*z)]
				}
			}
		}
	}
	in := filepath.Join(dir, "x.npy")
	writeNPYf32(t, in, []int{c, dims[0], dims[1], dims[2]}, npy)
	weights := filepath.Join(dir, "w.safetensors")
	mustRun(t, "export", "--run", runs[0], "--format", "safetensors", "--out", weights)
	for _, tta := range []bool{false, true} {
		args := []string{"bench/peer/torch_sliding_window.py", "--module", "model/torch/fess_unet.py", "--weights", weights,
			"--input", in, "--patch", "8", "--overlap", "0.5", "--threads", "1", "--save", filepath.Join(dir, "peer.npy")}
		extra := []string{"--run", runs[0]}
		if tta {
			args = append(args, "--tta")
			extra = append(extra, "--tta")
		}
		cmd := exec.Command(py, args...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("peer: %v\n%s", err, out)
		}
		peer := readNPYf32(t, filepath.Join(dir, "peer.npy")) // K×X×Y×Z, C order
		mine := probsOf(extra...)                             // X×Y×Z×K native, x fastest
		n := g.Dims
		nv := n[0] * n[1] * n[2]
		var worst float64
		for k := 0; k < 3; k++ {
			for x := 0; x < dims[0]; x++ {
				for y := 0; y < dims[1]; y++ {
					for z := 0; z < dims[2]; z++ {
						a := peer[((k*dims[0]+x)*dims[1]+y)*dims[2]+z]
						b := mine[k*nv+(x+g.CropLo[0])+n[0]*((y+g.CropLo[1])+n[1]*(z+g.CropLo[2]))]
						if d := math.Abs(float64(a - b)); d > worst {
							worst = d
						}
					}
				}
			}
		}
		t.Logf("tta=%v: max |fess − peer| probability %.3g over %d voxels × 3 regions", tta, worst, vox)
		if worst > 1e-4 {
			t.Fatalf("tta=%v: fess predict and the PyTorch sliding window differ by %g", tta, worst)
		}
	}
}

package infer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

const python = "/usr/bin/python3"

// needPython skips unless /usr/bin/python3 imports the given modules.
func needPython(t *testing.T, modules string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no Python comparison")
	}
	if err := exec.Command(python, "-c", "import "+modules).Run(); err != nil {
		t.Skipf("%s cannot import %s: %v", python, modules, err)
	}
}

// writeNPY writes float32 data in C order (last axis fastest) as a
// version 1.0 .npy file of the given shape.
func writeNPY(path string, shape []int, data []float32) error {
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = strconv.Itoa(s)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("\x93NUMPY\x01\x00")
	binary.Write(w, binary.LittleEndian, uint16(len(h)))
	w.WriteString(h)
	if err := binary.Write(w, binary.LittleEndian, data); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)

// readNPY reads a little-endian float32 C-order .npy file (version 1–3).
func readNPY(path string) ([]int, []float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	pre := make([]byte, 8)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, nil, err
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, nil, errors.New(path + ": not an .npy file")
	}
	var hl int
	if pre[6] == 1 {
		var n uint16
		err = binary.Read(r, binary.LittleEndian, &n)
		hl = int(n)
	} else {
		var n uint32
		err = binary.Read(r, binary.LittleEndian, &n)
		hl = int(n)
	}
	if err != nil {
		return nil, nil, err
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, err
	}
	h := string(hb)
	if !strings.Contains(h, "'<f4'") || !strings.Contains(h, "'fortran_order': False") {
		return nil, nil, fmt.Errorf("%s: want little-endian float32 in C order, header %s", path, h)
	}
	m := npyShape.FindStringSubmatch(h)
	if m == nil {
		return nil, nil, fmt.Errorf("%s: no shape in %s", path, h)
	}
	var shape []int
	n := 1
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, nil, err
		}
		shape = append(shape, v)
		n *= v
	}
	data := make([]float32, n)
	if err := binary.Read(r, binary.LittleEndian, data); err != nil {
		return nil, nil, err
	}
	return shape, data, nil
}

// toCXYZ turns fess's channel-major, x-fastest blocks into a C×X×Y×Z
// C-order array (nibabel / the peer's order); fromCXYZ is the inverse.
func toCXYZ(a []float32, c int, d [3]int) []float32 {
	X, Y, Z := d[0], d[1], d[2]
	vox := X * Y * Z
	out := make([]float32, len(a))
	for ch := 0; ch < c; ch++ {
		for z := 0; z < Z; z++ {
			for y := 0; y < Y; y++ {
				for x := 0; x < X; x++ {
					out[((ch*X+x)*Y+y)*Z+z] = a[ch*vox+x+X*(y+Y*z)]
				}
			}
		}
	}
	return out
}

func fromCXYZ(a []float32, c int, d [3]int) []float32 {
	X, Y, Z := d[0], d[1], d[2]
	vox := X * Y * Z
	out := make([]float32, len(a))
	for ch := 0; ch < c; ch++ {
		for z := 0; z < Z; z++ {
			for y := 0; y < Y; y++ {
				for x := 0; x < X; x++ {
					out[ch*vox+x+X*(y+Y*z)] = a[((ch*X+x)*Y+y)*Z+z]
				}
			}
		}
	}
	return out
}

// perturb gives the BatchNorm layers non-trivial affine parameters and
// running statistics, so that eval-mode normalisation is exercised.
func perturb(m *model.UNet3D, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".gamma") || strings.HasSuffix(p.Name, ".beta") {
			for i := range p.Value.Data {
				p.Value.Data[i] = float32(r.Float64()) + 0.5
			}
		}
	}
	for _, b := range m.State().BNs {
		for i := range b.St.RunMean.Data {
			b.St.RunMean.Data[i] = float32(r.NormFloat64() * 0.1)
			b.St.RunVar.Data[i] = float32(r.Float64()) + 0.5
		}
	}
}

func newModel(t testing.TB, cfg model.Config) *model.UNet3D {
	t.Helper()
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, cfg.Seed)
	return m
}

func randCase(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func maxAbsDiff(a, b []float32) float64 {
	var w float64
	for i := range a {
		w = math.Max(w, math.Abs(float64(a[i])-float64(b[i])))
	}
	return w
}

func TestStartsHand(t *testing.T) {
	for _, c := range []struct {
		n, p int
		ov   float64
		want []int
	}{
		{40, 16, 0.5, []int{0, 8, 16, 24}},
		{28, 16, 0.5, []int{0, 6, 12}},
		{19, 16, 0.5, []int{0, 3}},
		{16, 16, 0.5, []int{0}},
		{12, 16, 0.5, []int{0}},
		{48, 16, 0, []int{0, 16, 32}},
		{49, 16, 0, []int{0, 11, 22, 33}},
		{9, 4, 0.25, []int{0, 2, 5}}, // 2.5 rounds to even 2
		{23, 8, 0, []int{0, 8, 15}},  // 7.5 rounds to even 8
		{240, 128, 0.5, []int{0, 56, 112}},
		{155, 128, 0.5, []int{0, 27}},
		{20, 8, 0.75, []int{0, 2, 4, 6, 8, 10, 12}},
	} {
		if got := Starts(c.n, c.p, c.ov); !slices.Equal(got, c.want) {
			t.Errorf("Starts(%d, %d, %g) = %v, want %v", c.n, c.p, c.ov, got, c.want)
		}
	}
	for _, c := range [][3]float64{{0, 4, 0.5}, {8, 0, 0.5}, {8, 4, 1}, {8, 4, -0.1}, {8, 4, math.NaN()}} {
		if got := Starts(int(c[0]), int(c[1]), c[2]); got != nil {
			t.Errorf("Starts(%v) = %v, want nil", c, got)
		}
	}
}

// TestStartsNumpy compares Starts with the peer's formula evaluated by
// numpy over a grid of lengths, patches and overlaps.
func TestStartsNumpy(t *testing.T) {
	needPython(t, "numpy")
	overlaps := []float64{0, 0.1, 0.25, 1.0 / 3, 0.5, 0.6, 0.625, 0.7, 0.75, 0.8, 0.9}
	patches := []int{4, 8, 16, 24, 32, 48, 64, 96, 128, 160}
	var ovs []string
	for _, o := range overlaps {
		ovs = append(ovs, strconv.FormatFloat(o, 'g', -1, 64))
	}
	var ps []string
	for _, p := range patches {
		ps = append(ps, strconv.Itoa(p))
	}
	script := `import math, numpy as np
for p in [` + strings.Join(ps, ",") + `]:
  for ov in [` + strings.Join(ovs, ",") + `]:
    for n in range(1, 3*p + 41):
      if n <= p: s = [0]
      else:
        k = math.ceil((n - p) / (p * (1 - ov))) + 1
        s = [int(round(x)) for x in np.linspace(0, n - p, k)]
      print(p, repr(ov), n, *s)
`
	out, err := exec.Command(python, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	lines, bad := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p, _ := strconv.Atoi(f[0])
		ov, _ := strconv.ParseFloat(f[1], 64)
		n, _ := strconv.Atoi(f[2])
		var want []int
		for _, s := range f[3:] {
			v, _ := strconv.Atoi(s)
			want = append(want, v)
		}
		lines++
		if got := Starts(n, p, ov); !slices.Equal(got, want) {
			if bad++; bad <= 10 {
				t.Errorf("Starts(%d, %d, %g) = %v, numpy %v", n, p, ov, got, want)
			}
		}
	}
	t.Logf("%d (n, p, overlap) cases against numpy, %d differ", lines, bad)
	if lines < 1000 {
		t.Fatalf("only %d cases from numpy", lines)
	}
}

func TestGaussian(t *testing.T) {
	if Gaussian(0) != nil {
		t.Error("Gaussian(0) not nil")
	}
	for _, p := range []int{1, 2, 7, 16, 128} {
		g := Gaussian(p)
		sigma := float64(p) / 8
		var mx float64
		for i := range g {
			mx = math.Max(mx, math.Exp(-math.Pow(float64(i)-float64(p-1)/2, 2)/(2*sigma*sigma)))
		}
		for i := range g {
			want := math.Exp(-math.Pow(float64(i)-float64(p-1)/2, 2)/(2*sigma*sigma)) / mx
			if math.Abs(g[i]-want) > 1e-15 || math.Abs(g[i]-g[p-1-i]) > 1e-15 {
				t.Fatalf("p=%d: g[%d] = %g, want %g (mirror %g)", p, i, g[i], want, g[p-1-i])
			}
		}
		if m := slices.Max(g); m != 1 {
			t.Errorf("p=%d: max %g, want 1", p, m)
		}
	}
	// The centre of an even window sits between two samples.
	g := Gaussian(16)
	if want := math.Exp(-(7.5*7.5 - 0.25) / 8); math.Abs(g[0]-want) > 1e-15 {
		t.Errorf("Gaussian(16)[0] = %g, want %g", g[0], want)
	}
}

// TestWindowWeightsNumpy compares the 3-D float32 window weight with the
// peer's gaussian() evaluated by numpy.
func TestWindowWeightsNumpy(t *testing.T) {
	needPython(t, "numpy")
	dir := t.TempDir()
	for _, p := range []int{8, 16, 20} {
		path := filepath.Join(dir, fmt.Sprintf("w%d.npy", p))
		script := fmt.Sprintf(`import numpy as np
p = %d
t = np.arange(p, dtype=np.float64)
sigma = p / 8.0
g = np.exp(-((t - (p - 1) / 2.0) ** 2) / (2 * sigma ** 2))
w = g[:, None, None] * g[None, :, None] * g[None, None, :]
w /= w.max()
w = np.maximum(w, w[w > 0].min())
np.save(%q, w.astype(np.float32))
`, p, path)
		if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("numpy: %v\n%s", err, out)
		}
		_, want, err := readNPY(path)
		if err != nil {
			t.Fatal(err)
		}
		gp := Gaussian(p)
		w := windowWeights([3][]float64{gp, gp, gp}, [3]int{p, p, p})
		// Cubic and symmetric under permutation, so the axis order does not
		// matter; compare relatively (the weights span e^-24..1).
		var worst float64
		for i := range w {
			worst = math.Max(worst, math.Abs(float64(w[i])-float64(want[i]))/float64(want[i]))
		}
		t.Logf("p=%d: max relative weight difference vs numpy %.2g", p, worst)
		if worst > 1e-6 {
			t.Errorf("p=%d: weights differ from numpy by up to %g relative", p, worst)
		}
	}
}

// runPeer runs the PyTorch peer on the case and returns its probabilities
// in fess's layout.
func runPeer(t *testing.T, m *model.UNet3D, img []float32, dims [3]int, patch int, overlap float64, tta bool) []float32 {
	t.Helper()
	dir := t.TempDir()
	wf, xf, pf := filepath.Join(dir, "w.safetensors"), filepath.Join(dir, "x.npy"), filepath.Join(dir, "p.npy")
	cfg, _ := json.Marshal(m.Cfg)
	if err := m.WriteTorchFile(wf, map[string]string{"config": string(cfg), "fess_version": "infer-test", "format": "pt", "outputs": "logits"}); err != nil {
		t.Fatal(err)
	}
	C, K := m.Cfg.InChannels, m.Cfg.OutChannels
	if err := writeNPY(xf, []int{C, dims[0], dims[1], dims[2]}, toCXYZ(img, C, dims)); err != nil {
		t.Fatal(err)
	}
	args := []string{"../bench/peer/torch_sliding_window.py", "--module", "../model/torch/fess_unet.py",
		"--weights", wf, "--input", xf, "--patch", strconv.Itoa(patch),
		"--overlap", strconv.FormatFloat(overlap, 'g', -1, 64), "--save", pf, "--threads", "1"}
	if tta {
		args = append(args, "--tta")
	}
	out, err := exec.Command(python, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, out)
	}
	t.Logf("peer: %s", strings.TrimSpace(string(out)))
	shape, p, err := readNPY(pf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{K, dims[0], dims[1], dims[2]}) {
		t.Fatalf("peer probabilities have shape %v, want %v", shape, []int{K, dims[0], dims[1], dims[2]})
	}
	return fromCXYZ(p, K, dims)
}

// TestMatchesTorchPeer compares whole-case probabilities with the PyTorch
// peer on non-cubic cases with several windows per axis, a padded axis
// and an axis needing one overlapping extra window, with and without TTA.
func TestMatchesTorchPeer(t *testing.T) {
	needPython(t, "torch, numpy")
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, InChannels: 2, OutChannels: 3, Seed: 11})
	for _, dims := range [][3]int{{40, 28, 19}, {21, 12, 35}} {
		img := randCase(uint64(dims[0]), 2*dims[0]*dims[1]*dims[2])
		for _, tta := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v-tta%v", dims, tta), func(t *testing.T) {
				want := runPeer(t, m, img, dims, 16, 0.5, tta)
				for _, batch := range []int{1, 4} {
					got, err := Probabilities(m, img, dims, Options{Patch: [3]int{16, 16, 16}, TTA: tta, Batch: batch})
					if err != nil {
						t.Fatal(err)
					}
					d := maxAbsDiff(got, want)
					t.Logf("batch %d: max |fess − PyTorch| probability = %.2g", batch, d)
					if d > 1e-4 {
						t.Errorf("batch %d: probabilities differ by up to %g (> 1e-4)", batch, d)
					}
				}
			})
		}
	}
}

// TestMatchesTorchPeerSoftmax checks a softmax model: the peer applies a
// sigmoid to the stitched logits whatever the model, so fess's Logits are
// compared through a sigmoid, and Probabilities against the softmax of
// those logits.
func TestMatchesTorchPeerSoftmax(t *testing.T) {
	needPython(t, "torch, numpy")
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, InChannels: 1, OutChannels: 4, Softmax: true, Seed: 12})
	dims := [3]int{33, 12, 20}
	img := randCase(5, dims[0]*dims[1]*dims[2])
	opt := Options{Patch: [3]int{16, 16, 16}, Overlap: 0.6}
	want := runPeer(t, m, img, dims, 16, 0.6, false)
	z, err := Logits(m, img, dims, opt)
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]float32, len(z))
	for i, v := range z {
		sig[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
	d := maxAbsDiff(sig, want)
	t.Logf("max |sigmoid(fess logits) − PyTorch| = %.2g", d)
	if d > 1e-4 {
		t.Errorf("stitched logits differ from the peer's: sigmoids up to %g apart", d)
	}
	p, err := Probabilities(m, img, dims, opt)
	if err != nil {
		t.Fatal(err)
	}
	vox := len(z) / 4
	for v := 0; v < vox; v++ {
		var s, es float64
		for k := 0; k < 4; k++ {
			s += float64(p[k*vox+v])
			es += math.Exp(float64(z[k*vox+v]))
		}
		for k := 0; k < 4; k++ {
			if want := math.Exp(float64(z[k*vox+v])) / es; math.Abs(float64(p[k*vox+v])-want) > 1e-6 {
				t.Fatalf("voxel %d class %d: %g, softmax %g", v, k, p[k*vox+v], want)
			}
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("voxel %d: probabilities sum to %g", v, s)
		}
	}
}

// forwardCase runs the network once on a whole case whose dims are valid
// network input sizes and returns the logits in fess's case layout.
func forwardCase(m *model.UNet3D, img []float32, dims [3]int) []float32 {
	X, Y, Z := dims[0], dims[1], dims[2]
	C, K := m.Cfg.InChannels, m.Cfg.OutChannels
	vox := X * Y * Z
	in := tensor.New(1, Z, Y, X, C)
	for c := 0; c < C; c++ {
		for v := 0; v < vox; v++ {
			in.Data[v*C+c] = img[c*vox+v]
		}
	}
	z, _ := m.ForwardLogits(nil, autodiff.Const(in), false)
	out := make([]float32, K*vox)
	for k := 0; k < K; k++ {
		for v := 0; v < vox; v++ {
			out[k*vox+v] = z.Value.Data[v*K+k]
		}
	}
	return out
}

// flipCase mirrors a channel-major case along the axes in mask (bit 0 x,
// bit 1 y, bit 2 z).
func flipCase(a []float32, c int, d [3]int, mask int) []float32 {
	X, Y, Z := d[0], d[1], d[2]
	vox := X * Y * Z
	out := make([]float32, len(a))
	for ch := 0; ch < c; ch++ {
		for z := 0; z < Z; z++ {
			for y := 0; y < Y; y++ {
				for x := 0; x < X; x++ {
					sx, sy, sz := x, y, z
					if mask&1 != 0 {
						sx = X - 1 - x
					}
					if mask&2 != 0 {
						sy = Y - 1 - y
					}
					if mask&4 != 0 {
						sz = Z - 1 - z
					}
					out[ch*vox+x+X*(y+Y*z)] = a[ch*vox+sx+X*(sy+Y*sz)]
				}
			}
		}
	}
	return out
}

// TestSingleWindowAndTTA: on a case exactly one (non-cubic) window large,
// the stitched logits are the network's logits, and with TTA the mean of
// the network's logits over the 8 explicitly mirrored cases.
func TestSingleWindowAndTTA(t *testing.T) {
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 16, InChannels: 2, OutChannels: 3, Seed: 13})
	dims := [3]int{16, 8, 12}
	img := randCase(3, 2*16*8*12)
	opt := Options{Patch: dims}
	got, err := Logits(m, img, dims, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := forwardCase(m, img, dims)
	if d := maxAbsDiff(got, want); d > 1e-5 {
		t.Errorf("single window: logits differ from the forward by %g", d)
	}
	opt.TTA = true
	got, err = Logits(m, img, dims, opt)
	if err != nil {
		t.Fatal(err)
	}
	mean := make([]float32, len(want))
	for f := 0; f < 8; f++ {
		z := flipCase(forwardCase(m, flipCase(img, 2, dims, f), dims), 3, dims, f)
		for i := range mean {
			mean[i] += z[i] / 8
		}
	}
	d := maxAbsDiff(got, mean)
	t.Logf("TTA vs mean of explicit mirrorings: %.2g", d)
	if d > 1e-5 {
		t.Errorf("TTA logits differ from the mean over mirrorings by %g", d)
	}
	if maxAbsDiff(got, want) < 1e-3 {
		t.Error("TTA logits equal the plain logits: the mirrorings had no effect")
	}
}

// TestStitchFormula checks the stitched logits against a direct per-voxel
// evaluation of Σ w·logits / Σ w over explicitly cut windows (padding an
// axis shorter than the patch), with per-axis patches and overlap 0.
func TestStitchFormula(t *testing.T) {
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 2, Levels: 1, InputSize: 8, InChannels: 1, OutChannels: 2, Seed: 14})
	dims := [3]int{19, 5, 13}
	X, Y, Z := dims[0], dims[1], dims[2]
	img := randCase(9, X*Y*Z)
	for _, c := range []struct {
		patch [3]int
		ov    float64
	}{{[3]int{8, 6, 8}, 0.5}, {[3]int{10, 8, 4}, NoOverlap}, {[3]int{6, 6, 6}, 0.75}} {
		got, err := Logits(m, img, dims, Options{Patch: c.patch, Overlap: c.ov, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		ov := c.ov
		if ov == NoOverlap {
			ov = 0
		}
		P := c.patch
		num := make([]float64, 2*X*Y*Z)
		den := make([]float64, X*Y*Z)
		var g [3][]float64
		for a := range g {
			g[a] = Gaussian(P[a])
		}
		for _, sx := range Starts(max(X, P[0]), P[0], ov) {
			for _, sy := range Starts(max(Y, P[1]), P[1], ov) {
				for _, sz := range Starts(max(Z, P[2]), P[2], ov) {
					win := make([]float32, P[0]*P[1]*P[2])
					for z := 0; z < P[2]; z++ {
						for y := 0; y < P[1]; y++ {
							for x := 0; x < P[0]; x++ {
								if sx+x < X && sy+y < Y && sz+z < Z {
									win[x+P[0]*(y+P[1]*z)] = img[sx+x+X*(sy+y+Y*(sz+z))]
								}
							}
						}
					}
					l := forwardCase(m, win, P)
					pv := P[0] * P[1] * P[2]
					for z := 0; z < P[2] && sz+z < Z; z++ {
						for y := 0; y < P[1] && sy+y < Y; y++ {
							for x := 0; x < P[0] && sx+x < X; x++ {
								w := g[0][x] * g[1][y] * g[2][z]
								v := sx + x + X*(sy+y+Y*(sz+z))
								den[v] += w
								for k := 0; k < 2; k++ {
									num[k*X*Y*Z+v] += w * float64(l[k*pv+x+P[0]*(y+P[1]*z)])
								}
							}
						}
					}
				}
			}
		}
		var worst float64
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i])-num[i]/den[i%(X*Y*Z)]))
		}
		t.Logf("patch %v overlap %g: max deviation from the formula %.2g", P, ov, worst)
		if worst > 1e-5 {
			t.Errorf("patch %v overlap %g: stitched logits deviate from Σw·l/Σw by %g", P, ov, worst)
		}
	}
}

func TestDeterministicAndBatch(t *testing.T) {
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 8, InChannels: 2, OutChannels: 1, Seed: 15})
	dims := [3]int{17, 13, 9}
	img := randCase(4, 2*17*13*9)
	a, err := Probabilities(m, img, dims, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Probabilities(m, img, dims, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Error("two identical runs differ")
	}
	c, err := Probabilities(m, img, dims, Options{Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(a, c); d > 1e-6 {
		t.Errorf("batch 5 differs from batch 1 by %g", d)
	}
}

func TestKeepLargest(t *testing.T) {
	d := [3]int{5, 4, 3}
	at := func(x, y, z int) int { return x + d[0]*(y+d[1]*z) }
	mask := make([]uint8, 60)
	// Component A: 3 voxels in a line along x at z=0.
	for x := 0; x < 3; x++ {
		mask[at(x, 0, 0)] = 1
	}
	// Component B: 4 voxels joined only through corners (26-connected),
	// the diagonal (4,3,0) (3,2,1) (4,1,2) (3,0,2)... built step by step.
	for _, p := range [][3]int{{4, 3, 0}, {3, 2, 1}, {4, 1, 2}, {3, 0, 2}} {
		mask[at(p[0], p[1], p[2])] = 255 // any non-zero is foreground
	}
	got := KeepLargest(mask, d)
	for i := range got {
		want := uint8(0)
		x, y, z := i%5, (i/5)%4, i/20
		for _, p := range [][3]int{{4, 3, 0}, {3, 2, 1}, {4, 1, 2}, {3, 0, 2}} {
			if p == [3]int{x, y, z} {
				want = 1
			}
		}
		if got[i] != want {
			t.Fatalf("voxel (%d,%d,%d): %d, want %d", x, y, z, got[i], want)
		}
	}
	// Tie: two components of 2 voxels; the first in scan order wins even
	// though the second starts at a lower z·y·x index only in x.
	tie := make([]uint8, 60)
	tie[at(4, 0, 1)], tie[at(4, 1, 1)] = 1, 1 // scan index 24, 29
	tie[at(0, 0, 2)], tie[at(1, 0, 2)] = 1, 1 // scan index 40, 41
	got = KeepLargest(tie, d)
	if got[at(4, 0, 1)] != 1 || got[at(4, 1, 1)] != 1 || got[at(0, 0, 2)] != 0 || got[at(1, 0, 2)] != 0 {
		t.Errorf("tie: kept %v", got)
	}
	// Wrap-around must not connect x = X−1 to x = 0 of the next row.
	wrap := make([]uint8, 60)
	wrap[at(4, 0, 0)] = 1
	wrap[at(0, 1, 0)], wrap[at(0, 2, 0)] = 1, 1
	got = KeepLargest(wrap, d)
	if got[at(4, 0, 0)] != 0 || got[at(0, 1, 0)] != 1 {
		t.Errorf("wrap-around: kept %v", got)
	}
	if e := KeepLargest(make([]uint8, 60), d); len(e) != 60 || slices.Max(e) != 0 {
		t.Error("empty mask: want all zeros")
	}
	if KeepLargest(mask, [3]int{5, 4, 2}) != nil || KeepLargest(nil, [3]int{0, 1, 1}) != nil {
		t.Error("bad dims: want nil")
	}
	// Random masks against a union-find reference.
	r := rand.New(rand.NewPCG(1, 2))
	rd := [3]int{9, 7, 6}
	n := rd[0] * rd[1] * rd[2]
	for trial := 0; trial < 30; trial++ {
		m := make([]uint8, n)
		for i := range m {
			if r.Float64() < 0.2 {
				m[i] = 1
			}
		}
		want := keepLargestRef(m, rd)
		if got := KeepLargest(m, rd); !slices.Equal(got, want) {
			t.Fatalf("trial %d: differs from the union-find reference", trial)
		}
	}
}

// keepLargestRef is an independent union-find version of KeepLargest.
func keepLargestRef(m []uint8, d [3]int) []uint8 {
	n := len(m)
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := 0; i < n; i++ {
		if m[i] == 0 {
			continue
		}
		x, y, z := i%d[0], (i/d[0])%d[1], i/(d[0]*d[1])
		for j := 0; j < n; j++ {
			if m[j] == 0 {
				continue
			}
			a, b, c := j%d[0], (j/d[0])%d[1], j/(d[0]*d[1])
			if abs(a-x) <= 1 && abs(b-y) <= 1 && abs(c-z) <= 1 {
				parent[find(i)] = find(j)
			}
		}
	}
	size := map[int]int{}
	first := map[int]int{}
	for i := n - 1; i >= 0; i-- {
		if m[i] != 0 {
			size[find(i)]++
			first[find(i)] = i
		}
	}
	best := -1
	for root, s := range size {
		if best < 0 || s > size[best] || (s == size[best] && first[root] < first[best]) {
			best = root
		}
	}
	out := make([]uint8, n)
	for i := range out {
		if m[i] != 0 && find(i) == best {
			out[i] = 1
		}
	}
	return out
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

func TestBadInputs(t *testing.T) {
	m := newModel(t, model.Config{Preset: "unet3d", Filters: 2, Levels: 2, InputSize: 8, InChannels: 2, OutChannels: 2, Seed: 16})
	dims := [3]int{9, 8, 7}
	img := make([]float32, 2*9*8*7)
	for name, c := range map[string]struct {
		m    *model.UNet3D
		img  []float32
		dims [3]int
		opt  Options
	}{
		"nil model":         {nil, img, dims, Options{}},
		"short image":       {m, img[1:], dims, Options{}},
		"one channel":       {m, img[:9*8*7], dims, Options{}},
		"zero dim":          {m, img, [3]int{0, 8, 7}, Options{}},
		"negative dim":      {m, img, [3]int{-9, -8, 7}, Options{}},
		"huge dims":         {m, img, [3]int{1 << 19, 1 << 19, 1 << 19}, Options{}},
		"patch not 4k":      {m, img, dims, Options{Patch: [3]int{8, 6, 8}}},
		"patch negative":    {m, img, dims, Options{Patch: [3]int{-8, 8, 8}}},
		"patch too small":   {m, img, dims, Options{Patch: [3]int{2, 8, 8}}},
		"overlap 1":         {m, img, dims, Options{Overlap: 1}},
		"overlap negative":  {m, img, dims, Options{Overlap: -0.25}},
		"overlap NaN":       {m, img, dims, Options{Overlap: math.NaN()}},
		"overlap near 1":    {m, img, dims, Options{Overlap: 1 - 1e-15}},
		"batch negative":    {m, img, dims, Options{Batch: -1}},
		"batch huge":        {m, img, dims, Options{Batch: 1 << 20}},
		"patch huge":        {m, img, dims, Options{Patch: [3]int{1 << 12, 1 << 12, 1 << 12}}},
		"batch too large":   {m, img, dims, Options{Patch: [3]int{512, 512, 256}, Batch: 64}},
		"overlap too large": {m, img, dims, Options{Overlap: 1.5}},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", name, r)
				}
			}()
			if _, err := Probabilities(c.m, c.img, c.dims, c.opt); err == nil {
				t.Errorf("%s: no error", name)
			} else {
				t.Logf("%s: %v", name, err)
			}
		}()
	}
	// Sanity: the valid call works, overlap 0 via NoOverlap too.
	for _, o := range []Options{{}, {Overlap: NoOverlap}, {Overlap: 0.9, Batch: 3}} {
		if _, err := Probabilities(m, img, dims, o); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// readHWM returns the process's peak resident set (VmHWM) in MiB.
func readHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return math.NaN()
}

package onnx

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/bench"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// The end-to-end tests need Python's onnx package (Debian: python3-onnx)
// and node with onnxruntime-node installed in testdata/ (npm install
// --ignore-scripts there; the tests try that themselves when node_modules is
// missing). Without them they skip, unless FESS_ONNX_TOOLS=require, which
// makes a missing tool a failure (for CI, where they are installed).

func needTool(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("FESS_ONNX_TOOLS") == "require" {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}

var (
	pythonOnce sync.Once
	pythonExe  string
	pythonErr  string
)

// python returns an interpreter that imports onnx: Debian's /usr/bin/python3
// first (a python3 earlier on PATH, e.g. pyenv's, may lack the package).
func python(t *testing.T) string {
	pythonOnce.Do(func() {
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			if out, err := exec.Command(p, "-c", "import onnx").CombinedOutput(); err == nil {
				pythonExe = p
				return
			} else {
				pythonErr = strings.TrimSpace(string(out))
			}
		}
		if pythonErr == "" {
			pythonErr = "no python3 found"
		}
	})
	if pythonExe == "" {
		needTool(t, "python3 with the onnx package not available (%s); install python3-onnx", pythonErr)
	}
	return pythonExe
}

var (
	nodeOnce sync.Once
	nodeExe  string
	nodeErr  string
)

// node returns the node binary once onnxruntime-node is installed in
// testdata/node_modules, running npm install there if it is not.
func node(t *testing.T) string {
	nodeOnce.Do(func() {
		p, err := exec.LookPath("node")
		if err != nil {
			nodeErr = "node not found"
			return
		}
		dir, _ := filepath.Abs("testdata")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node")); err != nil {
			npm, err := exec.LookPath("npm")
			if err != nil {
				nodeErr = "onnxruntime-node not installed in onnx/testdata and npm not found"
				return
			}
			cmd := exec.Command(npm, "install", "--ignore-scripts", "--no-audit", "--no-fund")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				nodeErr = "npm install --ignore-scripts in onnx/testdata failed: " + lastLines(string(out), 5)
				return
			}
		}
		nodeExe = p
	})
	if nodeExe == "" {
		needTool(t, "onnxruntime-node not available: %s", nodeErr)
	}
	return nodeExe
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// randomize gives every parameter and BatchNorm running statistic a random
// value, so that inference-mode BatchNorm matters. Weights are drawn with
// He-uniform bounds √(6/fan_in) (fan_in: k³·Cin for a conv, Cin for the
// disjoint-window transposed conv), which keeps the activations of the deep
// path from dying out, so the head's values vary from voxel to voxel.
func randomize(m *model.UNet3D, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	u := func(lo, hi float64) float32 { return float32(lo + (hi-lo)*rng.Float64()) }
	for _, p := range m.Params() {
		d := p.Value.Data
		ws := p.Value.Shape
		switch {
		case strings.HasSuffix(p.Name, ".up.w"):
			bound := math.Sqrt(3 / float64(ws[4]))
			for i := range d {
				d[i] = u(-bound, bound)
			}
		case strings.HasSuffix(p.Name, ".w"):
			bound := math.Sqrt(3 / float64(ws[0]*ws[1]*ws[2]*ws[3]))
			for i := range d {
				d[i] = u(-bound, bound)
			}
		case strings.HasSuffix(p.Name, ".gamma"):
			for i := range d {
				d[i] = u(0.5, 1.5)
			}
		case strings.HasSuffix(p.Name, ".b"), strings.HasSuffix(p.Name, ".beta"):
			for i := range d {
				d[i] = u(-0.3, 0.3)
			}
		}
	}
	for _, bn := range m.State().BNs {
		for i := range bn.St.RunMean.Data {
			bn.St.RunMean.Data[i] = u(-0.3, 0.3)
			bn.St.RunVar.Data[i] = u(0.3, 2)
		}
	}
}

// onnxToFess converts ONNX-layout data [N,C,X,Y,Z] to a fess tensor
// [N,Z,Y,X,C].
func onnxToFess(d []float32, n, c, x, y, z int) *tensor.Tensor {
	t := tensor.New(n, z, y, x, c)
	for in := 0; in < n; in++ {
		for ic := 0; ic < c; ic++ {
			for ix := 0; ix < x; ix++ {
				for iy := 0; iy < y; iy++ {
					for iz := 0; iz < z; iz++ {
						t.Data[(((in*z+iz)*y+iy)*x+ix)*c+ic] = d[(((in*c+ic)*x+ix)*y+iy)*z+iz]
					}
				}
			}
		}
	}
	return t
}

// maxDiff returns max |onnx − fess| over all elements, onnx in [N,C,X,Y,Z]
// and fess [N,Z,Y,X,C].
func maxDiff(onnxD []float32, f *tensor.Tensor) float64 {
	n, z, y, x, c := f.Shape[0], f.Shape[1], f.Shape[2], f.Shape[3], f.Shape[4]
	back := onnxToFess(onnxD, n, c, x, y, z)
	worst := 0.0
	for i, v := range back.Data {
		d := math.Abs(float64(v) - float64(f.Data[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}

func writeF32(t *testing.T, path string, d []float32) {
	t.Helper()
	b := make([]byte, 4*len(d))
	for i, v := range d {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t *testing.T, path string, n int) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d float32 values", path, len(b), n)
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return d
}

type checkSummary struct {
	IRVersion       int                      `json:"ir_version"`
	Opset           map[string]int           `json:"opset"`
	ProducerName    string                   `json:"producer_name"`
	ProducerVersion string                   `json:"producer_version"`
	Metadata        map[string]string        `json:"metadata"`
	Inputs          map[string][]interface{} `json:"inputs"`
	Outputs         map[string][]interface{} `json:"outputs"`
	Ops             map[string]int           `json:"ops"`
}

func checkModel(t *testing.T, path string) checkSummary {
	t.Helper()
	py := python(t)
	out, err := exec.Command(py, "testdata/check.py", path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker rejected %s: %v\n%s", path, err, out)
	}
	var s checkSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("check.py output %q: %v", out, err)
	}
	return s
}

type ortRun struct {
	Input   string            `json:"input"`
	Shape   []int             `json:"shape"`
	Outputs map[string]string `json:"outputs"`
}

type tcase struct {
	name   string
	cfg    model.Config
	opt    options
	shapes [][5]int // N, X, Y, Z (and C filled from the config) per run: [N, X, Y, Z, _]
	ops    map[string]int
}

func TestOnnxRuntimeMatchesFess(t *testing.T) {
	cases := []tcase{
		{name: "unet3d_1to1", cfg: model.Config{Filters: 4, Levels: 2, InputSize: 16, Seed: 1},
			shapes: [][5]int{{1, 16, 16, 16}, {2, 16, 16, 16}, {1, 32, 16, 24}},
			ops:    map[string]int{"Conv": 11, "Relu": 10, "MaxPool": 2, "ConvTranspose": 2, "Concat": 2, "Sigmoid": 1}},
		{name: "unet3d_4to3_sigmoid", cfg: model.Config{Filters: 4, Levels: 2, InputSize: 16, InChannels: 4, OutChannels: 3, Seed: 2},
			shapes: [][5]int{{1, 16, 16, 16}, {2, 16, 16, 16}}},
		{name: "unet3d_1to5_softmax", cfg: model.Config{Filters: 4, Levels: 2, InputSize: 16, OutChannels: 5, Softmax: true, Seed: 3},
			shapes: [][5]int{{1, 16, 16, 16}, {2, 16, 16, 16}},
			ops:    map[string]int{"Softmax": 1}},
		{name: "seed_tiny", cfg: model.Config{Preset: "seed", Filters: 2, Levels: 2, BottleneckChannels: 8, InputSize: 16, Seed: 4},
			shapes: [][5]int{{1, 16, 16, 16}, {2, 16, 16, 16}, {1, 32, 16, 24}},
			ops:    map[string]int{"Conv": 9, "Relu": 8, "BatchNormalization": 0}},
		{name: "seed_tiny_keepbn", cfg: model.Config{Preset: "seed", Filters: 2, Levels: 2, BottleneckChannels: 8, InputSize: 16, Seed: 7},
			opt:    options{keepBN: true},
			shapes: [][5]int{{1, 16, 16, 16}, {1, 24, 32, 16}},
			ops:    map[string]int{"BatchNormalization": 10}},
		{name: "unet3d_noupbn", cfg: model.Config{Filters: 2, Levels: 3, InputSize: 16, NoUpBN: true, Seed: 6},
			shapes: [][5]int{{1, 16, 16, 16}, {1, 8, 16, 24}}},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			randomize(m, tc.cfg.Seed+100)
			cin, k := m.Cfg.InChannels, m.Cfg.OutChannels
			meta := map[string]string{"channels": "t1,t2", "config": `{"Preset":"x"}`, "fess_version": "test-1"}
			path := filepath.Join(dir, tc.name+".onnx")
			b, err := encode(m, meta, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			s := checkModel(t, path)
			if s.IRVersion != IRVersion || s.Opset[""] != Opset || s.ProducerName != "fess" || s.ProducerVersion != "test-1" {
				t.Errorf("header: ir %d opset %v producer %q %q", s.IRVersion, s.Opset, s.ProducerName, s.ProducerVersion)
			}
			for key, v := range meta {
				if s.Metadata[key] != v {
					t.Errorf("metadata %q = %q, want %q", key, s.Metadata[key], v)
				}
			}
			wantIO := func(got []interface{}, c int) bool {
				b, _ := json.Marshal(got)
				w, _ := json.Marshal([]interface{}{"N", c, "X", "Y", "Z"})
				return string(b) == string(w)
			}
			if !wantIO(s.Inputs["input"], cin) || !wantIO(s.Outputs["output"], k) || !wantIO(s.Outputs["logits"], k) || len(s.Inputs) != 1 || len(s.Outputs) != 2 {
				t.Errorf("graph inputs %v outputs %v", s.Inputs, s.Outputs)
			}
			for op, n := range tc.ops {
				if s.Ops[op] != n {
					t.Errorf("%d %s nodes, want %d (all: %v)", s.Ops[op], op, n, s.Ops)
				}
			}

			nodeBin := node(t)
			rng := rand.New(rand.NewPCG(tc.cfg.Seed, 7))
			var runs []ortRun
			var wantP, wantZ []*tensor.Tensor
			for r, sh := range tc.shapes {
				n, x, y, z := sh[0], sh[1], sh[2], sh[3]
				in := make([]float32, n*cin*x*y*z)
				for i := range in {
					in[i] = float32(rng.NormFloat64())
				}
				base := filepath.Join(dir, tc.name+"."+string(rune('a'+r)))
				writeF32(t, base+".in.f32", in)
				runs = append(runs, ortRun{Input: base + ".in.f32", Shape: []int{n, cin, x, y, z},
					Outputs: map[string]string{"output": base + ".p.f32", "logits": base + ".z.f32"}})
				xv := autodiff.Const(onnxToFess(in, n, cin, x, y, z))
				var none *autodiff.Tape
				zl, _ := m.ForwardLogits(none, xv, false)
				p, _ := m.Forward(none, xv, false)
				wantZ, wantP = append(wantZ, zl.Value), append(wantP, p.Value)
			}
			job := filepath.Join(dir, tc.name+".job.json")
			jb, _ := json.Marshal(map[string]any{"model": path, "runs": runs})
			if err := os.WriteFile(job, jb, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nodeBin, "testdata/run.js", job).CombinedOutput()
			if err != nil {
				t.Fatalf("onnxruntime-node: %v\n%s", err, out)
			}
			for r, run := range runs {
				cnt := wantP[r].Len()
				gotP := readF32(t, run.Outputs["output"], cnt)
				gotZ := readF32(t, run.Outputs["logits"], cnt)
				dp, dz := maxDiff(gotP, wantP[r]), maxDiff(gotZ, wantZ[r])
				lo, hi := slices.Min(wantZ[r].Data), slices.Max(wantZ[r].Data)
				t.Logf("input %v: max |Δ| probabilities %.2g, logits %.2g (fess logits in [%.3g, %.3g])", run.Shape, dp, dz, lo, hi)
				if hi-lo < 0.5 {
					t.Errorf("input %v: fess logits span only [%g, %g]; the comparison would not exercise the network", run.Shape, lo, hi)
				}
				if dp > 1e-4 || dz > 1e-4 {
					t.Errorf("input %v: onnxruntime differs from fess by %.3g (probabilities), %.3g (logits); tolerance 1e-4",
						run.Shape, dp, dz)
				}
			}
		})
	}
}

// wireFields splits one encoded message into its fields.
type wireField struct {
	num protowire.Number
	v   uint64
	b   []byte
}

func wireFields(t *testing.T, b []byte) []wireField {
	t.Helper()
	var fs []wireField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := wireField{num: num}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("unexpected wire type %d", typ)
		}
		if n < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		fs = append(fs, f)
	}
	return fs
}

func field(fs []wireField, num protowire.Number) []wireField {
	var out []wireField
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// TestEncodeStructure decodes the file with protowire alone (no external
// tools): header, metadata, node sequence and one permuted, folded weight.
func TestEncodeStructure(t *testing.T) {
	m, err := model.New(model.Config{Filters: 2, Levels: 2, InputSize: 8, InChannels: 2, OutChannels: 3, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	randomize(m, 10)
	meta := map[string]string{"regions": "WT,TC,ET", "channels": "t1,t2", "fess_version": "v0"}
	b, err := Encode(m, meta)
	if err != nil {
		t.Fatal(err)
	}
	top := wireFields(t, b)
	if f := field(top, modelIRVersion); len(f) != 1 || f[0].v != IRVersion {
		t.Fatalf("ir_version %v", f)
	}
	if f := field(top, modelProducerName); len(f) != 1 || string(f[0].b) != "fess" {
		t.Fatalf("producer_name %v", f)
	}
	ops := field(top, modelOpsetImport)
	if len(ops) != 1 {
		t.Fatalf("%d opset imports", len(ops))
	}
	if f := field(wireFields(t, ops[0].b), opsetVersion); len(f) != 1 || f[0].v != Opset {
		t.Fatalf("opset %v", f)
	}
	got := map[string]string{}
	var keys []string
	for _, e := range field(top, modelMetadataProps) {
		ef := wireFields(t, e.b)
		k, v := string(field(ef, stringEntryKey)[0].b), string(field(ef, stringEntryValue)[0].b)
		got[k] = v
		keys = append(keys, k)
	}
	if len(got) != len(meta) || strings.Join(keys, ",") != "channels,fess_version,regions" {
		t.Fatalf("metadata %v (order %v), want %v sorted", got, keys, meta)
	}
	g := wireFields(t, field(top, modelGraph)[0].b)
	var seq []string
	for _, n := range field(g, graphNode) {
		seq = append(seq, string(field(wireFields(t, n.b), nodeOpType)[0].b))
	}
	want := "Conv Relu Conv Relu MaxPool Conv Relu Conv Relu MaxPool Conv Relu Conv Relu " +
		"ConvTranspose Concat Conv Relu Conv Relu ConvTranspose Concat Conv Relu Conv Relu Conv Sigmoid"
	if strings.Join(seq, " ") != want {
		t.Fatalf("node sequence\n%s\nwant\n%s", strings.Join(seq, " "), want)
	}

	// enc0.0's folded weight: ONNX [co,ci,kx,ky,kz] = fess [kz,ky,kx,ci,co]·s[co].
	var w []float32
	var dims []uint64
	for _, it := range field(g, graphInitializer) {
		tf := wireFields(t, it.b)
		if string(field(tf, tensorName)[0].b) != "enc0.0.conv_bn.w" {
			continue
		}
		for _, d := range field(tf, tensorDims) {
			dims = append(dims, d.v)
		}
		raw := field(tf, tensorRawData)[0].b
		for i := 0; i < len(raw); i += 4 {
			w = append(w, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
		}
	}
	if len(dims) != 5 || dims[0] != 2 || dims[1] != 2 || dims[2] != 3 {
		t.Fatalf("enc0.0.conv_bn.w dims %v, want [2 2 3 3 3]", dims)
	}
	pm := m.State().ParamMap()
	fw, gam := pm["enc0.0.conv.w"].Value, pm["enc0.0.bn.gamma"].Value.Data
	var st *autodiff.BNState
	for _, nb := range m.State().BNs {
		if nb.Name == "enc0.0.bn" {
			st = nb.St
		}
	}
	for _, ix := range [][5]int{{0, 0, 0, 0, 0}, {2, 1, 0, 1, 0}, {0, 2, 1, 0, 1}, {1, 0, 2, 1, 1}} {
		kz, ky, kx, ci, co := ix[0], ix[1], ix[2], ix[3], ix[4]
		s := float64(gam[co]) / math.Sqrt(float64(st.RunVar.Data[co])+float64(st.Eps))
		want := float32(float64(fw.Data[(((kz*3+ky)*3+kx)*2+ci)*2+co]) * s)
		if g := w[(((co*2+ci)*3+kx)*3+ky)*3+kz]; g != want {
			t.Errorf("weight [kz%d ky%d kx%d ci%d co%d]: %g, want %g", kz, ky, kx, ci, co, g, want)
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	m, err := model.New(model.Config{Filters: 2, Levels: 1, InputSize: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "m.onnx")
	if err := Write(p, m, map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	want, _ := Encode(m, map[string]string{"a": "b"})
	got, err := os.ReadFile(p)
	if err != nil || string(got) != string(want) {
		t.Fatalf("written file differs from Encode (%v)", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only m.onnx", len(ents))
	}
	if err := Write(filepath.Join(dir, "missing", "m.onnx"), m, nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if _, err := Encode(nil, nil); err == nil {
		t.Fatal("Encode(nil) succeeded")
	}
}

// TestExportBenchConfig writes benchmark configuration d's network (the
// network `fess bench` times: unet3d with NoUpBN, dropout 0, initial
// weights) as ONNX to $FESS_ONNX_BENCH_OUT, for bench/peer/onnx_anchor.sh;
// it skips when the variable is unset.
func TestExportBenchConfig(t *testing.T) {
	out := os.Getenv("FESS_ONNX_BENCH_OUT")
	if out == "" {
		t.Skip("FESS_ONNX_BENCH_OUT not set (bench/peer/onnx_anchor.sh sets it)")
	}
	name := os.Getenv("FESS_ONNX_BENCH_CONFIG")
	if name == "" {
		name = "d"
	}
	c, ok := bench.Lookup(name)
	if !ok {
		t.Fatalf("no bench configuration %q", name)
	}
	m, err := model.New(model.Config{Preset: "unet3d", Filters: c.F, Levels: c.L, InputSize: c.S, NoUpBN: true, Dropout: -1})
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"bench_config": c.Name, "bench_description": c.Description}
	if err := Write(out, m, meta); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (config %s: %s)", out, c.Name, c.Description)
}

package main

import (
	"encoding/json"
	"fmt"
	"github.com/fess-seg/fess/train"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/volume"
)

// mustRun runs fess with args and fails the test on a non-zero exit.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := runStd(t, args...)
	if code != 0 {
		t.Fatalf("fess %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// embedCase writes the case folder src (one BraTS case) into dst with every
// volume centred in a 240×240×155 grid of 1 mm voxels, the BraTS grid.
func embedCase(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dst, 0o755)
	full := [3]int{240, 240, 155}
	for _, e := range ents {
		v, err := volume.Read(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out := &volume.Volume{Dims: [4]int{full[0], full[1], full[2], 1}, Data: make([]float32, full[0]*full[1]*full[2]),
			Spacing: [3]float64{1, 1, 1}, Affine: [4][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 239}, {0, 0, 1, 0}, {0, 0, 0, 1}}}
		var off [3]int
		for a := range 3 {
			off[a] = (full[a] - v.Dims[a]) / 2
		}
		for z := 0; z < v.Dims[2]; z++ {
			for y := 0; y < v.Dims[1]; y++ {
				for x := 0; x < v.Dims[0]; x++ {
					out.Data[((z+off[2])*full[1]+y+off[1])*full[0]+x+off[0]] = v.Data[(z*v.Dims[1]+y)*v.Dims[0]+x]
				}
			}
		}
		dt := "int16"
		if strings.Contains(e.Name(), "seg") {
			dt = "uint8"
		}
		if err := volume.WriteNIfTI(filepath.Join(dst, e.Name()), out, dt); err != nil {
			t.Fatal(err)
		}
	}
}

// nibabelView reads a NIfTI file with nibabel (if installed) and returns
// its shape, affine and sorted unique values.
func nibabelView(t *testing.T, path string) (shape []int, affine [][]float64, values []float64, ok bool) {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return nil, nil, nil, false
	}
	if exec.Command(py, "-c", "import nibabel").Run() != nil {
		return nil, nil, nil, false
	}
	script := `import json, sys, numpy as np, nibabel as nib
img = nib.load(sys.argv[1]); a = np.asarray(img.dataobj)
print(json.dumps({"shape": list(a.shape), "affine": img.affine.tolist(), "values": sorted(float(v) for v in np.unique(a))}))`
	b, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("nibabel on %s: %v", path, err)
	}
	var r struct {
		Shape  []int       `json:"shape"`
		Affine [][]float64 `json:"affine"`
		Values []float64   `json:"values"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Shape, r.Affine, r.Values, true
}

// TestBraTSPredictionsInTheirConvention trains a tiny four-channel,
// three-region run on BraTS 2023 and on BraTS 2021 synthetic layouts and
// predicts a case in the 240×240×155 BraTS grid: the label map has the
// input's shape and affine (checked with nibabel where installed) and only
// the convention's label values.
func TestBraTSPredictionsInTheirConvention(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny runs")
	}
	for _, tc := range []struct {
		layout, caseDir, mods string
		allowed               map[float64]bool
	}{
		{"brats2023", "BraTS-GLI-00001-000", "t2f,t1n,t1c,t2w", map[float64]bool{0: true, 1: true, 2: true, 3: true}},
		{"brats2021", "BraTS17_Synth_001", "flair,t1,t1ce,t2", map[float64]bool{0: true, 1: true, 2: true, 4: true}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			dir := t.TempDir()
			raw, prep, run := filepath.Join(dir, "raw"), filepath.Join(dir, "prep"), filepath.Join(dir, "run")
			mustRun(t, "synth", "--kind", "brain", "--layout", tc.layout, "--cases", "6", "--size", "24", "--seed", "5", "--out", raw, "--quiet")
			mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--modalities", tc.mods, "--target", "wt,tc,et",
				"--split", "0.7,0,0.3", "--quiet")
			mustRun(t, "train", "--data", prep, "--out", run, "--loss", "fess", "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet")
			native := filepath.Join(dir, "native", tc.caseDir)
			embedCase(t, filepath.Join(raw, tc.caseDir), native)
			out := filepath.Join(dir, "pred.nii.gz")
			probs := filepath.Join(dir, "probs.nii.gz")
			mustRun(t, "predict", "--run", run, "--in", native, "--out", out, "--probabilities", probs)
			got, err := volume.Read(out)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := volume.Read(filepath.Join(native, tc.caseDir+map[string]string{"brats2023": "-t2f.nii.gz", "brats2021": "_flair.nii.gz"}[tc.layout]))
			if got.Dims != [4]int{240, 240, 155, 1} || got.Affine != in.Affine {
				t.Fatalf("prediction grid %v %v, input %v %v", got.Dims, got.Affine, in.Dims, in.Affine)
			}
			for _, v := range got.Data {
				if !tc.allowed[float64(v)] {
					t.Fatalf("label value %v outside %v", v, tc.allowed)
				}
			}
			pv, err := volume.Read(probs)
			if err != nil || pv.Dims != [4]int{240, 240, 155, 3} {
				t.Fatalf("probabilities %v %v", pv, err)
			}
			shape, aff, vals, ok := nibabelView(t, out)
			if !ok {
				t.Log("nibabel not installed: fess's own reader checked only")
				return
			}
			if len(shape) != 3 || shape[0] != 240 || shape[1] != 240 || shape[2] != 155 {
				t.Fatalf("nibabel shape %v", shape)
			}
			for r := range 4 {
				for c := range 4 {
					if d := aff[r][c] - in.Affine[r][c]; d > 1e-6 || d < -1e-6 {
						t.Fatalf("nibabel affine %v, input %v", aff, in.Affine)
					}
				}
			}
			for _, v := range vals {
				if !tc.allowed[v] {
					t.Fatalf("nibabel reads label value %v outside %v", v, tc.allowed)
				}
			}
		})
	}
}

// TestPredictTakesTheRunsChannels: a run trained on MSD's T1ce frame
// predicts from frame 2 of a 4-D file without --frame, and a four-channel
// run refuses an input that lacks channels.
func TestPredictTakesTheRunsChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny runs")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "msd")
	mustRun(t, "synth", "--kind", "brain", "--layout", "msd", "--cases", "5", "--size", "24", "--seed", "2", "--out", raw, "--quiet")
	prep, run := filepath.Join(dir, "prep"), filepath.Join(dir, "run")
	mustRun(t, "prepare", "--in", raw, "--out", prep, "--size", "16", "--modality", "t1ce", "--quiet")
	mustRun(t, "train", "--data", prep, "--out", run, "--loss", "dice", "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet")
	in := filepath.Join(raw, "imagesTr", "BRATS_001.nii.gz")
	read := func(p string) []float32 {
		v, err := volume.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		return v.Data
	}
	var probs [3][]float32
	for i, extra := range [][]string{nil, {"--frame", "2"}, {"--frame", "0"}} {
		p := filepath.Join(dir, "p.nii.gz")
		mustRun(t, append([]string{"predict", "--run", run, "--in", in, "--out", filepath.Join(dir, "m.nii.gz"), "--probabilities", p}, extra...)...)
		probs[i] = read(p)
	}
	same := func(a, b []float32) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return len(a) == len(b)
	}
	if !same(probs[0], probs[1]) {
		t.Fatal("without --frame the run did not predict from its own frame (2, T1ce)")
	}
	if same(probs[0], probs[2]) {
		t.Fatal("frame 0 (FLAIR) gave the same probabilities as frame 2: the test cannot tell frames apart")
	}

	// Four channels: a single 3-D file lacks three of them.
	prep4, run4 := filepath.Join(dir, "prep4"), filepath.Join(dir, "run4")
	mustRun(t, "prepare", "--in", raw, "--out", prep4, "--size", "16", "--modalities", "flair,t1,t1ce,t2", "--target", "wt,tc,et", "--quiet")
	mustRun(t, "train", "--data", prep4, "--out", run4, "--loss", "dice", "--epochs", "1", "--filters", "2", "--levels", "2", "--quiet")
	flair := filepath.Join(dir, "flair.nii.gz")
	v, _ := volume.Read(in)
	f0, _ := v.Volume3D(0)
	volume.WriteNIfTI(flair, f0, "float32")
	code, _, stderr := runStd(t, "predict", "--run", run4, "--in", flair, "--out", filepath.Join(dir, "x.nii.gz"))
	if code != 2 || !strings.Contains(stderr, "flair.nii.gz") || !strings.Contains(stderr, "4 channels") {
		t.Fatalf("one 3-D file for a four-channel run: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.nii.gz")); err == nil {
		t.Fatal("a refused prediction wrote its output")
	}
	// The 4-D file itself works, and so does a comma list of four files.
	mustRun(t, "predict", "--run", run4, "--in", in, "--out", filepath.Join(dir, "y.nii.gz"))
	code, _, stderr = runStd(t, "predict", "--run", run4, "--in", flair+","+flair, "--out", filepath.Join(dir, "z.nii.gz"))
	if code != 2 || !strings.Contains(stderr, "4 channels") {
		t.Fatalf("two files for four channels: exit %d, %q", code, stderr)
	}
}

func TestDemoVerdict(t *testing.T) {
	mk := func(d ...float64) []train.CaseMetrics {
		var out []train.CaseMetrics
		for i, v := range d {
			r := train.CaseMetrics{ID: fmt.Sprint("c", i), Region: "wt"}
			r.Dice = v
			out = append(out, r)
		}
		return out
	}
	better := []float64{.9, .8, .85, .7, .95, .9, .88, .91, .79, .83}
	worse := make([]float64, len(better))
	for i, v := range better {
		worse[i] = v - 0.05 - 0.001*float64(i)
	}
	for _, tc := range []struct {
		fess, dice []float64
		want       string
	}{
		{better, worse, "FESS beat Dice"},
		{worse, better, "FESS did not beat Dice: Dice was better"},
		{[]float64{.8, .7, .9}, []float64{.79, .72, .9}, "not significant"},
		{better, better, "neither beat"},
	} {
		got, err := verdict(mk(tc.fess...), mk(tc.dice...))
		if err != nil || !strings.Contains(got, tc.want) {
			t.Errorf("verdict = %q, %v; want %q", got, err, tc.want)
		}
	}
}

// TestMetricsRegions scores two BraTS 2023 label maps per region with the
// lesion-wise columns, and refuses a label the convention lacks.
func TestMetricsRegions(t *testing.T) {
	dir := t.TempDir()
	d := [3]int{20, 20, 20}
	truth := &volume.Volume{Dims: [4]int{d[0], d[1], d[2], 1}, Data: make([]float32, 8000), Spacing: [3]float64{1, 1, 1}}
	truth.Affine = [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	pred := &volume.Volume{Dims: truth.Dims, Data: make([]float32, 8000), Spacing: truth.Spacing, Affine: truth.Affine}
	for z := 4; z < 16; z++ {
		for y := 4; y < 16; y++ {
			for x := 4; x < 16; x++ {
				i := (z*20+y)*20 + x
				v := float32(2) // oedema
				if x >= 7 && x < 13 && y >= 7 && y < 13 && z >= 7 && z < 13 {
					v = 3 // enhancing
					if x >= 9 && x < 11 && y >= 9 && y < 11 && z >= 9 && z < 11 {
						v = 1 // necrosis
					}
				}
				truth.Data[i], pred.Data[i] = v, v
			}
		}
	}
	pred.Data[(1*20+1)*20+1] = 3 // a one-voxel false positive lesion of ET
	tp, pp := filepath.Join(dir, "BraTS-GLI-00009-000-seg.nii.gz"), filepath.Join(dir, "pred.nii.gz")
	volume.WriteNIfTI(tp, truth, "uint8")
	volume.WriteNIfTI(pp, pred, "uint8")
	code, out := captureRun(t, "metrics", "--pred", pp, "--truth", tp, "--regions", "wt,tc,et", "--convention", "brats2023", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var got map[string]map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err, out)
	}
	if got["wt"]["dice"] < 0.999 || got["wt"]["lesion_fp"] != 1 || got["tc"]["lesion_tp"] != 1 || got["et"]["lesion_fn"] != 0 {
		t.Fatalf("%v", got)
	}
	// Lesion-wise Dice of ET: one perfectly matched lesion and the far
	// one-voxel component, a false positive: (1 + 0) / 2.
	if l := got["et"]["lesion_dice"]; l < 0.49 || l > 0.51 {
		t.Fatalf("ET lesion-wise Dice %v, want 0.5 (one perfect lesion, one false positive)", l)
	}
	code, out = captureRun(t, "metrics", "--pred", pp, "--truth", tp, "--regions", "wt,tc,et", "--convention", "brats2021")
	if code != 0 {
		t.Fatalf("brats2021 on 2023 labels: exit %d %s", code, out)
	}
	pred.Data[0] = 7
	volume.WriteNIfTI(pp, pred, "uint8")
	code, out = captureRun(t, "metrics", "--pred", pp, "--truth", tp, "--regions", "wt,tc,et", "--convention", "brats2023")
	if code != 2 {
		t.Fatalf("label 7 in brats2023: exit %d %s", code, out)
	}
}

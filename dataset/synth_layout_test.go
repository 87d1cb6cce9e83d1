package dataset

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// listFiles returns every regular file under dir, relative, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readVol(t *testing.T, path string) *volume.Volume {
	t.Helper()
	v, err := volume.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// synthRegions counts the whole tumour, tumour core and enhancing tumour
// voxels of a label map under a layout's label convention.
func synthRegions(lab []float32, tc, et []float32) [3]int {
	var n [3]int
	in := func(x float32, set []float32) bool {
		for _, s := range set {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, x := range lab {
		if x != 0 {
			n[0]++
		}
		if in(x, tc) {
			n[1]++
		}
		if in(x, et) {
			n[2]++
		}
	}
	return n
}

func TestSynthLayoutsBrain(t *testing.T) {
	const n, size, seed = 2, 24, 3
	type layoutCase struct {
		layout  string
		files   []string
		labels  []float32 // allowed non-zero values
		tc, et  []float32
		seg     func(i int) string
		readImg func(t *testing.T, dir string, i int) map[string]*volume.Volume
	}
	four := func(dir string, names [4]string) map[string]*volume.Volume {
		m := map[string]*volume.Volume{}
		for k, mod := range brainModalities {
			m[mod] = readVol(t, filepath.Join(dir, names[k]))
		}
		return m
	}
	cases := []layoutCase{
		{
			layout: "brats2021",
			files: []string{
				"BraTS17_Synth_000/BraTS17_Synth_000_flair.nii.gz", "BraTS17_Synth_000/BraTS17_Synth_000_seg.nii.gz",
				"BraTS17_Synth_000/BraTS17_Synth_000_t1.nii.gz", "BraTS17_Synth_000/BraTS17_Synth_000_t1ce.nii.gz",
				"BraTS17_Synth_000/BraTS17_Synth_000_t2.nii.gz",
				"BraTS17_Synth_001/BraTS17_Synth_001_flair.nii.gz", "BraTS17_Synth_001/BraTS17_Synth_001_seg.nii.gz",
				"BraTS17_Synth_001/BraTS17_Synth_001_t1.nii.gz", "BraTS17_Synth_001/BraTS17_Synth_001_t1ce.nii.gz",
				"BraTS17_Synth_001/BraTS17_Synth_001_t2.nii.gz",
			},
			labels: []float32{1, 2, 4}, tc: []float32{1, 4}, et: []float32{4},
			seg: func(i int) string { id := synthBrainID(i); return id + "/" + id + "_seg.nii.gz" },
			readImg: func(t *testing.T, dir string, i int) map[string]*volume.Volume {
				id := synthBrainID(i)
				return four(dir, [4]string{id + "/" + id + "_flair.nii.gz", id + "/" + id + "_t1.nii.gz", id + "/" + id + "_t1ce.nii.gz", id + "/" + id + "_t2.nii.gz"})
			},
		},
		{
			layout: "brats2023",
			files: []string{
				"BraTS-GLI-00000-000/BraTS-GLI-00000-000-seg.nii.gz", "BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1c.nii.gz",
				"BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz", "BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2f.nii.gz",
				"BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2w.nii.gz",
				"BraTS-GLI-00001-000/BraTS-GLI-00001-000-seg.nii.gz", "BraTS-GLI-00001-000/BraTS-GLI-00001-000-t1c.nii.gz",
				"BraTS-GLI-00001-000/BraTS-GLI-00001-000-t1n.nii.gz", "BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz",
				"BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2w.nii.gz",
			},
			labels: []float32{1, 2, 3}, tc: []float32{1, 3}, et: []float32{3},
			seg: func(i int) string { id := synthCaseID("brats2023", i); return id + "/" + id + "-seg.nii.gz" },
			readImg: func(t *testing.T, dir string, i int) map[string]*volume.Volume {
				p := synthCaseID("brats2023", i)
				p = p + "/" + p
				return four(dir, [4]string{p + "-t2f.nii.gz", p + "-t1n.nii.gz", p + "-t1c.nii.gz", p + "-t2w.nii.gz"})
			},
		},
		{
			layout: "msd",
			files: []string{"dataset.json", "imagesTr/BRATS_001.nii.gz", "imagesTr/BRATS_002.nii.gz",
				"labelsTr/BRATS_001.nii.gz", "labelsTr/BRATS_002.nii.gz"},
			labels: []float32{1, 2, 3}, tc: []float32{2, 3}, et: []float32{3},
			seg: func(i int) string { return "labelsTr/" + synthCaseID("msd", i) + ".nii.gz" },
			readImg: func(t *testing.T, dir string, i int) map[string]*volume.Volume {
				v := readVol(t, filepath.Join(dir, "imagesTr", synthCaseID("msd", i)+".nii.gz"))
				if v.Dims[3] != 4 {
					t.Fatalf("MSD image has %d frames, want 4", v.Dims[3])
				}
				m := map[string]*volume.Volume{}
				for k, mod := range brainModalities {
					f, err := v.Volume3D(k)
					if err != nil {
						t.Fatal(err)
					}
					m[mod] = f
				}
				return m
			},
		},
		{
			layout: "nnunet",
			files: []string{"dataset.json",
				"imagesTr/BraTS_001_0000.nii.gz", "imagesTr/BraTS_001_0001.nii.gz", "imagesTr/BraTS_001_0002.nii.gz", "imagesTr/BraTS_001_0003.nii.gz",
				"imagesTr/BraTS_002_0000.nii.gz", "imagesTr/BraTS_002_0001.nii.gz", "imagesTr/BraTS_002_0002.nii.gz", "imagesTr/BraTS_002_0003.nii.gz",
				"labelsTr/BraTS_001.nii.gz", "labelsTr/BraTS_002.nii.gz"},
			labels: []float32{1, 2, 3}, tc: []float32{2, 3}, et: []float32{3},
			seg: func(i int) string { return "labelsTr/" + synthCaseID("nnunet", i) + ".nii.gz" },
			readImg: func(t *testing.T, dir string, i int) map[string]*volume.Volume {
				p := "imagesTr/" + synthCaseID("nnunet", i)
				return four(dir, [4]string{p + "_0000.nii.gz", p + "_0001.nii.gz", p + "_0002.nii.gz", p + "_0003.nii.gz"})
			},
		},
	}
	root := t.TempDir()
	regions := map[int][3]int{}
	var ref []map[string]*volume.Volume // brats2021 images per case
	for _, lc := range cases {
		dir := filepath.Join(root, lc.layout)
		if err := WriteSynthLayout("brain", lc.layout, dir, n, size, seed, 2, nil); err != nil {
			t.Fatalf("%s: %v", lc.layout, err)
		}
		if got := listFiles(t, dir); !reflect.DeepEqual(got, lc.files) {
			t.Errorf("%s: files\n%v\nwant\n%v", lc.layout, got, lc.files)
			continue
		}
		for i := 0; i < n; i++ {
			lab := readVol(t, filepath.Join(dir, lc.seg(i)))
			seen := map[float32]bool{}
			for _, x := range lab.Data {
				seen[x] = true
			}
			for x := range seen {
				ok := x == 0
				for _, a := range lc.labels {
					ok = ok || x == a
				}
				if !ok {
					t.Errorf("%s case %d: label value %v not in %v", lc.layout, i, x, lc.labels)
				}
			}
			// A tiny phantom may lack necrosis; edema (whole tumour
			// less core) and the enhancing rim are always there.
			for _, a := range lc.labels {
				if !seen[a] && (a == lc.et[0] || !slices.Contains(lc.tc, a)) {
					t.Errorf("%s case %d: label %v missing", lc.layout, i, a)
				}
			}
			r := synthRegions(lab.Data, lc.tc, lc.et)
			if old, ok := regions[i]; ok && old != r {
				t.Errorf("%s case %d: WT/TC/ET voxels %v, brats2021 has %v", lc.layout, i, r, old)
			} else if !ok {
				regions[i] = r
			}
			imgs := lc.readImg(t, dir, i)
			if ref == nil || len(ref) <= i {
				ref = append(ref, imgs)
				continue
			}
			for _, mod := range brainModalities {
				a, b := ref[i][mod], imgs[mod]
				if a.Dims != b.Dims || a.Affine != b.Affine || !reflect.DeepEqual(a.Data, b.Data) {
					t.Errorf("%s case %d: %s differs from the brats2021 image (dims %v vs %v)", lc.layout, i, mod, b.Dims, a.Dims)
				}
			}
			if lab.Affine != ref[i]["flair"].Affine {
				t.Errorf("%s case %d: label affine differs from the image's", lc.layout, i)
			}
		}
	}
	t.Logf("WT/TC/ET voxels per case: %v", regions)

	// The data set descriptions.
	var msd struct {
		Modality    map[string]string `json:"modality"`
		Labels      map[string]string `json:"labels"`
		NumTraining int               `json:"numTraining"`
		Training    []struct {
			Image string `json:"image"`
			Label string `json:"label"`
		} `json:"training"`
		TensorImageSize string `json:"tensorImageSize"`
	}
	readJSON(t, filepath.Join(root, "msd", "dataset.json"), &msd)
	if !reflect.DeepEqual(msd.Modality, map[string]string{"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}) ||
		!reflect.DeepEqual(msd.Labels, map[string]string{"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}) ||
		msd.NumTraining != n || len(msd.Training) != n || msd.TensorImageSize != "4D" ||
		msd.Training[1].Image != "./imagesTr/BRATS_002.nii.gz" || msd.Training[1].Label != "./labelsTr/BRATS_002.nii.gz" {
		t.Errorf("msd dataset.json: %+v", msd)
	}
	var nn struct {
		ChannelNames      map[string]string `json:"channel_names"`
		Labels            map[string]any    `json:"labels"`
		RegionsClassOrder []int             `json:"regions_class_order"`
		NumTraining       int               `json:"numTraining"`
		FileEnding        string            `json:"file_ending"`
	}
	readJSON(t, filepath.Join(root, "nnunet", "dataset.json"), &nn)
	wantLabels := map[string]any{"background": 0.0, "whole tumor": []any{1.0, 2.0, 3.0}, "tumor core": []any{2.0, 3.0}, "enhancing tumor": 3.0}
	if !reflect.DeepEqual(nn.ChannelNames, map[string]string{"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"}) ||
		!reflect.DeepEqual(nn.Labels, wantLabels) || !reflect.DeepEqual(nn.RegionsClassOrder, []int{1, 2, 3}) ||
		nn.NumTraining != n || nn.FileEnding != ".nii.gz" {
		t.Errorf("nnunet dataset.json: %+v", nn)
	}
	raw, _ := os.ReadFile(filepath.Join(root, "nnunet", "dataset.json"))
	if i, j := strings.Index(string(raw), `"background"`), strings.Index(string(raw), `"enhancing tumor"`); i < 0 || j < i {
		t.Errorf("nnunet labels out of order:\n%s", raw)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The default layouts are WriteSynth's output, brats2017 is brats2021, and
// a bad layout is a usage error naming the value.
func TestSynthLayoutDefaultsAndErrors(t *testing.T) {
	root := t.TempDir()
	a, b, c := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	if err := WriteSynth("brain", a, 1, 16, 9, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSynthLayout("brain", "brats2017", b, 1, 16, 9, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSynthLayout("brain", "", c, 1, 16, 9, 1, nil); err != nil {
		t.Fatal(err)
	}
	fa := listFiles(t, a)
	if !reflect.DeepEqual(fa, listFiles(t, b)) || !reflect.DeepEqual(fa, listFiles(t, c)) {
		t.Errorf("default/brats2017/WriteSynth layouts differ: %v %v %v", fa, listFiles(t, b), listFiles(t, c))
	}
	for _, f := range fa {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if string(x) != string(y) {
			t.Errorf("%s differs between WriteSynth and brats2017", f)
		}
	}
	for _, bad := range []struct{ kind, layout string }{{"brain", "brats2019"}, {"brain", "abdomenct1k"}, {"abdomen", "msd"}} {
		err := WriteSynthLayout(bad.kind, bad.layout, filepath.Join(root, "bad"), 1, 16, 1, 1, nil)
		var ue *errs.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), `"`+bad.layout+`"`) || !strings.Contains(err.Error(), "--layout") {
			t.Errorf("kind %s layout %s: error %v, want a usage error naming the layout", bad.kind, bad.layout, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "bad")); err == nil {
		t.Error("a bad layout still created the output folder")
	}
}

// The abdomen layout writes the four organs with their own labels, and the
// files hold what SynthAbdomen made.
func TestSynthLayoutAbdomen(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSynthLayout("abdomen", "abdomenct1k", dir, 2, 24, 4, 2, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"Case_00001_0000.nii.gz", "Case_00002_0000.nii.gz", "Mask/Case_00001.nii.gz", "Mask/Case_00002.nii.gz"}
	if got := listFiles(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	for i := 0; i < 2; i++ {
		c := SynthAbdomen(4, i, 24)
		lab := readVol(t, filepath.Join(dir, "Mask", c.ID+".nii.gz"))
		img := readVol(t, filepath.Join(dir, c.ID+"_0000.nii.gz"))
		if !reflect.DeepEqual(lab.Data, c.Label.Data) || !reflect.DeepEqual(img.Data, c.Images["ct"].Data) {
			t.Errorf("case %d: files differ from the generator's volumes", i)
		}
		hist := map[float32]int{}
		for _, x := range lab.Data {
			hist[x]++
		}
		for _, l := range []float32{LabelLiver, LabelKidney, LabelSpleen, LabelPancreas} {
			if hist[l] == 0 {
				t.Errorf("case %d: organ label %v missing: %v", i, l, hist)
			}
		}
		if len(hist) != 5 {
			t.Errorf("case %d: label values %v, want exactly 0–4", i, hist)
		}
	}
}

package dataset

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// layoutFixtures are the tiny data sets written by testdata/gen_layouts.py
// (nibabel), one per layout, with numpy's WT/TC/ET (or organ) counts in
// testdata/layouts/expected.json.
var layoutFixtures = []struct {
	dir, layout, conv string
}{
	{"brats2021", LayoutBraTS2017, ConvBraTS2021},
	{"brats2023", LayoutBraTS2023, ConvBraTS2023},
	{"msd", LayoutMSD, ConvMSD},
	{"nnunet/Dataset001_BrainTumour", LayoutNNUNet, ConvNNUNet},
	{"abdomenct1k", LayoutAbdomenCT1K, ConvAbdomen},
}

type convFixtureCase struct {
	Regions map[string]int `json:"regions"`
	Organs  map[string]int `json:"organs"`
	Dims    []int          `json:"dims"`
	Spacing [3]float64     `json:"spacing"`
}

func readExpected(t *testing.T) map[string]map[string]convFixtureCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "layouts", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]convFixtureCase{}
	for _, l := range []string{"brats2021", "brats2023", "msd", "nnunet", "abdomenct1k"} {
		var m map[string]convFixtureCase
		if err := json.Unmarshal(raw[l], &m); err != nil {
			t.Fatal(l, err)
		}
		out[l] = m
	}
	return out
}

// TestConventionsMatchNumpy detects each fixture layout, resolves its
// default convention's regions (wt,tc,et; the abdomen's organs as classes)
// and checks every case's native region voxel counts against numpy's.
func TestConventionsMatchNumpy(t *testing.T) {
	exp := readExpected(t)
	for _, f := range layoutFixtures {
		t.Run(f.layout, func(t *testing.T) {
			dir := filepath.Join("testdata", "layouts", f.dir)
			layout, err := Detect(dir)
			if err != nil || layout != f.layout {
				t.Fatalf("Detect = %q, %v; want %s", layout, err, f.layout)
			}
			sources, meta, err := scan(dir, layout)
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Layout: layout}.Defaults()
			names := []string{"wt", "tc", "et"}
			if layout == LayoutAbdomenCT1K {
				o.Target, o.Classes = "", "liver,kidney,spleen,pancreas"
				names = strings.Split(o.Classes, ",")
			} else {
				o.Target = "wt,tc,et"
			}
			if layout == LayoutNNUNet {
				o.Modality = strings.Join(meta.channels, ",")
			}
			task, err := resolveTask(o, meta, "")
			if err != nil {
				t.Fatal(err)
			}
			if task.Convention != f.conv {
				t.Errorf("convention %s, want %s", task.Convention, f.conv)
			}
			key := strings.Split(f.dir, "/")[0]
			if len(sources) != len(exp[key]) {
				t.Fatalf("%d cases, expected.json has %d", len(sources), len(exp[key]))
			}
			for _, c := range sources {
				want, ok := exp[key][c.ID]
				if !ok {
					t.Fatalf("case %s not in expected.json", c.ID)
				}
				lab, err := volume.Read(c.Label)
				if err != nil {
					t.Fatal(err)
				}
				masks, err := task.RegionMasks(lab.Data)
				if err != nil {
					t.Fatal(err)
				}
				for k, n := range names {
					got := 0
					for _, b := range masks[k] {
						got += int(b)
					}
					w := want.Regions[strings.ToUpper(n)]
					if want.Organs != nil {
						w = want.Organs[n]
					}
					if got != w || w == 0 {
						t.Errorf("case %s region %s: %d voxels, numpy %d", c.ID, n, got, w)
					}
				}
				// The label map written back in the same convention is
				// the original label map (regions are nested).
				back := task.LabelMap(masks)
				for i, v := range lab.Data {
					if float32(back[i]) != v {
						t.Fatalf("case %s: voxel %d label %v written back as %d", c.ID, i, v, back[i])
					}
				}
			}
			// The whole preparation runs and keeps the task.
			out := t.TempDir()
			o.Size, o.Split, o.Workers = 8, [3]float64{1, 0, 0}, 1
			m, _, err := Prepare(dir, out, o)
			if err != nil {
				t.Fatal(err)
			}
			if m.Task == nil || !slices.Equal(m.Task.RegionNames(), names) || m.Task.Convention != f.conv {
				t.Fatalf("manifest task %+v", m.Task)
			}
		})
	}
}

func TestPaintValues(t *testing.T) {
	for _, tc := range []struct {
		conv string
		want []int
	}{{ConvBraTS2021, []int{2, 1, 4}}, {ConvBraTS2023, []int{2, 1, 3}}, {ConvMSD, []int{1, 2, 3}}} {
		task, err := NewTask("wt,tc,et", "", tc.conv)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range task.Regions {
			if r.Paint != tc.want[i] {
				t.Errorf("%s: %s paints %d, want %d", tc.conv, r.Name, r.Paint, tc.want[i])
			}
		}
		// Given in another order, the nesting still decides.
		rev, _ := NewTask("et,tc,wt", "", tc.conv)
		if rev.Regions[0].Paint != tc.want[2] || rev.Regions[2].Paint != tc.want[0] {
			t.Errorf("%s reversed: %+v", tc.conv, rev.Regions)
		}
	}
	// Converting a BraTS 2021 prediction to BraTS 2023 values.
	t21, _ := NewTask("wt,tc,et", "", ConvBraTS2021)
	t23, err := t21.InConvention(ConvBraTS2023)
	if err != nil || t23.Regions[2].Paint != 3 || t23.Regions[1].Paint != 1 || t23.Regions[0].Paint != 2 {
		t.Fatalf("InConvention: %+v %v", t23.Regions, err)
	}
}

func TestTargetErrors(t *testing.T) {
	for _, tc := range []struct{ target, classes, conv, want string }{
		{"wt,xx", "", ConvBraTS2023, `--target xx is not defined in convention brats2023`},
		{"et", "", "brats2019", `--convention "brats2019"`},
		{"wt,wt", "", ConvMSD, "named twice"},
		{"", "liver,liver", ConvAbdomen, "named twice"},
		{"", "1+2,2", ConvAbdomen, "share label 2"},
		{"9", "", ConvBraTS2023, "label 9 does not occur"},
		{"", "any", ConvAbdomen, "not one class"},
	} {
		_, err := NewTask(tc.target, tc.classes, tc.conv)
		if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	// The legacy numeric list is one region, the union.
	task, err := NewTask("1,4", "", ConvBraTS2021)
	if err != nil || len(task.Regions) != 1 || !slices.Equal(task.Regions[0].Labels, []int{1, 4}) {
		t.Fatalf("1,4: %+v %v", task.Regions, err)
	}
	// A label value the convention lacks is an error, not background.
	t23, _ := NewTask("wt", "", ConvBraTS2023)
	if _, err := t23.RegionMasks([]float32{0, 1, 4}); err == nil || !strings.Contains(err.Error(), "label value 4") {
		t.Fatalf("label 4 in brats2023: %v", err)
	}
}

// copyTree copies a fixture folder so a test can damage it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestPrepareBadInputs: each fault is exit 2 naming the file and the fault,
// and leaves no manifest and no case files.
func TestPrepareBadInputs(t *testing.T) {
	fix := filepath.Join("testdata", "layouts")
	type bad struct {
		name   string
		dir    string
		opts   Options
		break_ func(dir string)
		want   []string
	}
	for _, tc := range []bad{
		{"missing modality", "brats2023", Options{Modality: "flair,t1,t1ce,t2", Target: "wt,tc,et"},
			func(d string) { os.Remove(filepath.Join(d, "BraTS-GLI-00002-000", "BraTS-GLI-00002-000-t1c.nii.gz")) },
			[]string{"BraTS-GLI-00002-000 has no t1ce image"}},
		{"channels of different shapes", "brats2021", Options{Modality: "flair,t2", Target: "wt,tc,et"},
			func(d string) {
				src := filepath.Join(d, "BraTS2021_00002", "BraTS2021_00002_t2.nii.gz")
				other := filepath.Join(d, "BraTS2021_00003", "BraTS2021_00003_t2.nii.gz")
				b, _ := os.ReadFile(other)
				os.WriteFile(src, b, 0o644)
			},
			[]string{"BraTS2021_00002_t2.nii.gz", "has shape"}},
		{"2023 data read as 2021", "brats2023", Options{Target: "wt,tc,et", Convention: ConvBraTS2021}, nil,
			[]string{"target et", "convention brats2021", "selects no voxel"}},
		{"dataset.json without channel_names", "nnunet/Dataset001_BrainTumour", Options{},
			func(d string) {
				rewriteJSON(t, filepath.Join(d, "dataset.json"), func(m map[string]any) { delete(m, "channel_names"); m["file_ending"] = ".nii.gz" })
			},
			[]string{"dataset.json", `"channel_names"`}},
		{"dataset.json with a bad label", "nnunet/Dataset001_BrainTumour", Options{},
			func(d string) {
				rewriteJSON(t, filepath.Join(d, "dataset.json"), func(m map[string]any) { m["labels"].(map[string]any)["tumor core"] = "two" })
			},
			[]string{"dataset.json", `"tumor core"`}},
		{"dataset.json without regions_class_order", "nnunet/Dataset001_BrainTumour", Options{},
			func(d string) {
				rewriteJSON(t, filepath.Join(d, "dataset.json"), func(m map[string]any) { delete(m, "regions_class_order") })
			},
			[]string{"dataset.json", "regions_class_order"}},
		{"dataset.json without file_ending", "nnunet/Dataset001_BrainTumour", Options{Layout: LayoutNNUNet},
			func(d string) {
				rewriteJSON(t, filepath.Join(d, "dataset.json"), func(m map[string]any) { delete(m, "file_ending") })
			},
			[]string{"dataset.json", "file_ending"}},
		{"region naming an unknown label", "nnunet/Dataset001_BrainTumour", Options{Target: "whole tumor,necrosis"}, nil,
			[]string{"--target necrosis is not defined"}},
		{"nnU-Net case lacking a channel", "nnunet/Dataset001_BrainTumour", Options{},
			func(d string) { os.Remove(filepath.Join(d, "imagesTr", "BraTS_002_0003.nii.gz")) },
			[]string{"imagesTr", "BraTS_002 has no channel 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t, filepath.Join(fix, tc.dir))
			if tc.break_ != nil {
				tc.break_(dir)
			}
			out := t.TempDir()
			o := tc.opts
			o.Size, o.Workers = 8, 1
			_, _, err := Prepare(dir, out, o)
			if errs.ExitCode(err) != 2 {
				t.Fatalf("exit %d: %v", errs.ExitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(out, ManifestName)); err == nil {
				t.Error("a manifest was written")
			}
			if ents, _ := os.ReadDir(filepath.Join(out, "cases")); len(ents) > 0 {
				t.Errorf("%d case files left behind", len(ents))
			}
		})
	}
}

func rewriteJSON(t *testing.T, path string, f func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

package dataset

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/fess-seg/fess/volume"
)

// fixtureCase is one case of testdata/layouts/expected.json.
type fixtureCase struct {
	Dims      [3]int         `json:"dims"`
	Frames    int            `json:"frames"`
	Affine    [4][4]float64  `json:"affine"`
	Spacing   [3]float64     `json:"spacing"`
	SformCode int            `json:"sform_code"`
	QformCode int            `json:"qform_code"`
	Regions   map[string]int `json:"regions"`
	Organs    map[string]int `json:"organs"`
	Labels    map[string]int `json:"labels"`
}

// The nibabel-written fixtures read back in Go as nibabel saw them: dims,
// frames, affine (to float32 precision) and label counts per region.
func TestSynthFixtureLayouts(t *testing.T) {
	root := filepath.Join("testdata", "layouts")
	b, err := os.ReadFile(filepath.Join(root, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]json.RawMessage
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	var conv map[string]map[string][]float32
	var organs map[string]float32
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(exp["conventions"], &raw)
	_ = json.Unmarshal(raw["abdomenct1k"], &organs)
	delete(raw, "abdomenct1k")
	conv = map[string]map[string][]float32{}
	for k, v := range raw {
		var m map[string][]float32
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		conv[k] = m
	}
	// Where each layout keeps a case's first image and its label map.
	paths := map[string]func(id string) (img, lab string){
		"brats2021": func(id string) (string, string) {
			return id + "/" + id + "_flair.nii.gz", id + "/" + id + "_seg.nii.gz"
		},
		"brats2023": func(id string) (string, string) { return id + "/" + id + "-t2f.nii.gz", id + "/" + id + "-seg.nii.gz" },
		"msd":       func(id string) (string, string) { return "imagesTr/" + id + ".nii.gz", "labelsTr/" + id + ".nii.gz" },
		"nnunet": func(id string) (string, string) {
			return "Dataset001_BrainTumour/imagesTr/" + id + "_0000.nii.gz", "Dataset001_BrainTumour/labelsTr/" + id + ".nii.gz"
		},
		"abdomenct1k": func(id string) (string, string) { return id + "_0000.nii.gz", "Mask/" + id + ".nii.gz" },
	}
	for layout, where := range paths {
		var cases map[string]fixtureCase
		if err := json.Unmarshal(exp[layout], &cases); err != nil || len(cases) != 3 {
			t.Fatalf("%s: %d cases, %v", layout, len(cases), err)
		}
		for id, want := range cases {
			ip, lp := where(id)
			img, err := volume.Read(filepath.Join(root, layout, ip))
			if err != nil {
				t.Fatal(err)
			}
			lab, err := volume.Read(filepath.Join(root, layout, lp))
			if err != nil {
				t.Fatal(err)
			}
			frames := max(want.Frames, 1)
			if [3]int(img.Dims[:3]) != want.Dims || img.Dims[3] != frames || [3]int(lab.Dims[:3]) != want.Dims {
				t.Errorf("%s %s: dims %v / %v, want %v × %d", layout, id, img.Dims, lab.Dims, want.Dims, frames)
			}
			if img.Datatype != "int16" || lab.Datatype != "uint8" {
				t.Errorf("%s %s: datatypes %s, %s", layout, id, img.Datatype, lab.Datatype)
			}
			for r := 0; r < 4; r++ {
				for c := 0; c < 4; c++ {
					if math.Abs(img.Affine[r][c]-want.Affine[r][c]) > 1e-4 || math.Abs(lab.Affine[r][c]-want.Affine[r][c]) > 1e-4 {
						t.Errorf("%s %s: affine %v, nibabel %v", layout, id, img.Affine, want.Affine)
						r, c = 4, 4
					}
				}
			}
			head := img.Data[:img.NumVoxels()]
			counts := map[string]int{}
			for k, x := range lab.Data {
				if x != 0 && head[k] == 0 && layout != "abdomenct1k" {
					t.Errorf("%s %s: label voxel %d outside the non-zero image", layout, id, k)
					break
				}
				if layout == "abdomenct1k" {
					for name, v := range organs {
						if x == v {
							counts[name]++
						}
					}
					continue
				}
				for region, set := range conv[layout] {
					for _, v := range set {
						if x == v {
							counts[region]++
						}
					}
				}
			}
			wantCounts := want.Regions
			if layout == "abdomenct1k" {
				wantCounts = want.Organs
			}
			for k, n := range wantCounts {
				if counts[k] != n || n == 0 {
					t.Errorf("%s %s: %s has %d voxels, expected.json %d", layout, id, k, counts[k], n)
				}
			}
		}
	}
}

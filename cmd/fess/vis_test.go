package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// visFixture writes a prepared folder with one 24×20×16 case (2 mm slices)
// holding a box lesion, and two runs: runs/fess with test/pred and a log,
// runs/dice with pred/ directly.
func visFixture(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	dims := [4]int{24, 20, 16, 1}
	n := 24 * 20 * 16
	mk := func(data []float32) *volume.Volume {
		v := &volume.Volume{Dims: dims, Data: data, Spacing: [3]float64{1, 1, 2}}
		v.Affine = [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}
		return v
	}
	img, mask, predA, predB := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for z := 0; z < 16; z++ {
		for y := 0; y < 20; y++ {
			for x := 0; x < 24; x++ {
				i := x + 24*(y+20*z)
				img[i] = float32(x*y) / 100
				if x >= 10 && x < 16 && y >= 8 && y < 12 && z >= 4 && z < 9 {
					mask[i], img[i] = 1, img[i]+5
				}
				if x >= 12 && x < 18 && y >= 8 && y < 12 && z >= 4 && z < 9 {
					predA[i] = 1
				}
			}
		}
	}
	write := func(rel string, data []float32, dt string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := volume.WriteNIfTI(p, mk(data), dt); err != nil {
			t.Fatal(err)
		}
	}
	write("prep/cases/c1_image.nii.gz", img, "float32")
	write("prep/cases/c1_mask.nii.gz", mask, "uint8")
	write("runs/fess/test/pred/c1.nii.gz", predA, "uint8")
	write("runs/dice/pred/c1.nii.gz", predB, "uint8")
	m := dataset.Manifest{Version: dataset.ManifestVersion, Cases: []dataset.CaseInfo{
		{ID: "c1", Split: "test", Image: "cases/c1_image.nii.gz", Mask: "cases/c1_mask.nii.gz"}}}
	m.Options.Size = 24
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(root, "prep", "manifest.json"), b, 0o644)
	os.WriteFile(filepath.Join(root, "runs", "fess", "log.jsonl"),
		[]byte(`{"epoch":1,"loss":0.8,"dice_loss":0.7,"con_loss":0.0009,"train_dice":0.3}
{"epoch":2,"loss":0.6,"dice_loss":0.5,"con_loss":0.0008,"train_dice":0.5,"val_dice":0.45,"val_loss":0.55}
`), 0o644)
	return root
}

func TestVisCases(t *testing.T) {
	root := visFixture(t)
	out := filepath.Join(root, "figs")
	var stdout bytes.Buffer
	err := runVis([]string{"--data", filepath.Join(root, "prep"), "--runs",
		filepath.Join(root, "runs", "fess") + "," + filepath.Join(root, "runs", "dice"),
		"--cases", "c1", "--views", "axial,coronal,sagittal", "--out", out}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	// Lesion centre: x 12.5 -> 13 (round half away from zero), y 9.5 -> 10, z 6.
	if !strings.Contains(stdout.String(), "c1.png (axial 6, coronal 10, sagittal 13)") {
		t.Errorf("stdout %q", stdout.String())
	}
	f, err := os.Open(filepath.Join(out, "c1.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 4*200 || b.Dy() < 3*100 {
		t.Errorf("figure size %v for 4 columns × 3 rows", b)
	}
	// --preds with the test folder (pred/ found inside) and an explicit slice.
	stdout.Reset()
	err = runVis([]string{"--data", filepath.Join(root, "prep"), "--preds", filepath.Join(root, "runs", "fess", "test"),
		"--cases", "c1", "--slice", "15", "--out", out}, &stdout)
	if err != nil || !strings.Contains(stdout.String(), "(axial 15)") {
		t.Errorf("explicit slice: %v %q", err, stdout.String())
	}
}

func TestVisCurves(t *testing.T) {
	root := visFixture(t)
	out := filepath.Join(root, "figs")
	var stdout bytes.Buffer
	if err := runVis([]string{"--curves", filepath.Join(root, "runs", "fess"), "--out", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fess-curves.png", "fess-curves.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestVisBadInput: every fault is a usage or input error (exit status 2)
// whose message names the offending file.
func TestVisBadInput(t *testing.T) {
	root := visFixture(t)
	prep := filepath.Join(root, "prep")
	fess := filepath.Join(root, "runs", "fess")
	out := filepath.Join(root, "figs")
	// A prediction on another grid.
	small := &volume.Volume{Dims: [4]int{8, 8, 8, 1}, Data: make([]float32, 512), Spacing: [3]float64{1, 1, 1}}
	small.Affine = [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	os.MkdirAll(filepath.Join(root, "bad", "pred"), 0o755)
	badPred := filepath.Join(root, "bad", "pred", "c1.nii.gz")
	if err := volume.WriteNIfTI(badPred, small, "uint8"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		names string // expected in the message
	}{
		{"slice out of range", []string{"--data", prep, "--runs", fess, "--cases", "c1", "--slice", "16", "--out", out}, "c1_image.nii.gz"},
		{"slice out of range for sagittal", []string{"--data", prep, "--runs", fess, "--cases", "c1", "--views", "sagittal", "--slice", "24", "--out", out}, "out of range [0, 23]"},
		{"mismatched prediction", []string{"--data", prep, "--preds", filepath.Join(root, "bad"), "--cases", "c1", "--out", out}, badPred},
		{"missing prediction", []string{"--data", prep, "--preds", filepath.Join(root, "runs"), "--cases", "c1", "--out", out}, filepath.Join(root, "runs", "c1.nii.gz")},
		{"run without predictions", []string{"--data", prep, "--runs", root, "--cases", "c1", "--out", out}, root},
		{"unknown case", []string{"--data", prep, "--runs", fess, "--cases", "c9", "--out", out}, "manifest.json"},
		{"not prepared", []string{"--data", root, "--runs", fess, "--cases", "c1", "--out", out}, root},
		{"bad view", []string{"--data", prep, "--runs", fess, "--views", "oblique", "--out", out}, "oblique"},
		{"no output", []string{"--data", prep, "--runs", fess}, "--out"},
		{"missing log", []string{"--curves", root, "--out", out}, filepath.Join(root, "log.jsonl")},
	}
	for _, c := range cases {
		err := runVis(c.args, &bytes.Buffer{})
		if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s: exit %d, error %v (want exit 2 naming %q)", c.name, errs.ExitCode(err), err, c.names)
		}
		var ie *errs.InputError
		var ue *errs.UsageError
		if !errors.As(err, &ie) && !errors.As(err, &ue) {
			t.Errorf("%s: %T is neither input nor usage error", c.name, err)
		}
	}
}

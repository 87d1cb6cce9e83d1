package metric

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// readMaskNIfTI reads the uint8 NIfTI-1 .nii.gz fixtures written by
// testdata/gen_reference.py. It is deliberately minimal (little-endian,
// uint8, 3-D) so that this test does not depend on package volume.
func readMaskNIfTI(t *testing.T, path string) ([]uint8, [3]int, [3]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	le := binary.LittleEndian
	if len(b) < 352 || le.Uint32(b[0:]) != 348 || le.Uint16(b[70:]) != 2 || le.Uint16(b[40:]) != 3 {
		t.Fatalf("%s: not a little-endian 3-D uint8 NIfTI-1 file", path)
	}
	var dims [3]int
	var sp [3]float64
	n := 1
	for i := range 3 {
		dims[i] = int(le.Uint16(b[42+2*i:]))
		sp[i] = float64(math.Float32frombits(le.Uint32(b[80+4*i:])))
		n *= dims[i]
	}
	off := int(math.Float32frombits(le.Uint32(b[108:])))
	if off+n != len(b) {
		t.Fatalf("%s: %d data bytes at %d, file has %d", path, n, off, len(b))
	}
	return b[off:], dims, sp
}

type crossRef struct {
	Pairs map[string]struct {
		Pred, Truth                                    string
		Dims                                           [3]int
		TP, FP, FN, TN                                 int64
		Dice, IoU, Precision, Sensitivity, Specificity float64
		HD, HD95, ASSD                                 float64
		NSurfacePred                                   int                `json:"n_surface_pred"`
		NSurfaceTruth                                  int                `json:"n_surface_truth"`
		PlastimatchConventions                         map[string]float64 `json:"plastimatch_conventions"`
		Plastimatch                                    map[string]any
	}
}

// TestAgreesWithScipyAndPlastimatchOnBrainMasks compares Compute with the
// independent numpy/scipy values (and plastimatch's, where its conventions
// are the same) on mask pairs built from the Colin27 brain of mricron-data;
// see testdata/gen_reference.py.
func TestAgreesWithScipyAndPlastimatchOnBrainMasks(t *testing.T) {
	dir := filepath.Join("testdata", "crosscheck")
	raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref crossRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Pairs) < 4 {
		t.Fatalf("only %d reference pairs", len(ref.Pairs))
	}
	for name, w := range ref.Pairs {
		t.Run(name, func(t *testing.T) {
			pred, dims, sp := readMaskNIfTI(t, filepath.Join(dir, w.Pred))
			truth, dims2, _ := readMaskNIfTI(t, filepath.Join(dir, w.Truth))
			if dims != dims2 || dims != w.Dims {
				t.Fatalf("dims %v / %v, reference %v", dims, dims2, w.Dims)
			}
			r, err := Compute(pred, truth, dims, sp)
			if err != nil {
				t.Fatal(err)
			}
			if r.TP != w.TP || r.FP != w.FP || r.FN != w.FN || r.TN != w.TN {
				t.Errorf("counts %d %d %d %d, scipy %d %d %d %d", r.TP, r.FP, r.FN, r.TN, w.TP, w.FP, w.FN, w.TN)
			}
			for _, c := range []struct {
				name      string
				got, want float64
				tol       float64 // absolute
			}{
				{"dice", r.Dice, w.Dice, 1e-12},
				{"iou", r.IoU, w.IoU, 1e-12},
				{"precision", r.Precision, w.Precision, 1e-12},
				{"sensitivity", r.Sensitivity, w.Sensitivity, 1e-12},
				{"specificity", r.Specificity, w.Specificity, 1e-12},
				{"hd", r.HD, w.HD, 1e-6},
				{"hd95", r.HD95, w.HD95, 1e-6},
				{"assd", r.ASSD, w.ASSD, 1e-6},
			} {
				if !(math.Abs(c.got-c.want) <= c.tol) {
					t.Errorf("%s = %.15g, scipy %.15g", c.name, c.got, c.want)
				}
			}
			d, _ := SurfaceDistances(pred, truth, dims, sp)
			if len(d.PredToTruth) != w.NSurfacePred || len(d.TruthToPred) != w.NSurfaceTruth {
				t.Errorf("surface voxels %d, %d; scipy %d, %d", len(d.PredToTruth), len(d.TruthToPred), w.NSurfacePred, w.NSurfaceTruth)
			}

			pm := w.Plastimatch
			if pm == nil {
				t.Log("no plastimatch values in the fixture")
				return
			}
			// plastimatch prints "%f" (6 decimals) of float32 values.
			num := func(k string) float64 { v, _ := pm[k].(float64); return v }
			for k, v := range map[string]int64{"tp": r.TP, "fp": r.FP, "fn": r.FN, "tn": r.TN} {
				if num(k) != float64(v) {
					t.Errorf("plastimatch %s = %v, ours %d", k, pm[k], v)
				}
			}
			for k, v := range map[string]float64{"dice": r.Dice, "sensitivity": r.Sensitivity, "specificity": r.Specificity} {
				if math.Abs(num(k)-v) > 1e-6 { // float32 arithmetic, then %f
					t.Errorf("plastimatch %s = %v, ours %.9f", k, pm[k], v)
				}
			}
			// plastimatch's "Hausdorff distance (boundary)" is the maximum
			// over each mask's 6-connected boundary voxels of the distance
			// to the other mask's boundary: the same quantity as our HD.
			if math.Abs(num("hd_boundary")-r.HD) > 1e-5*math.Max(1, r.HD) {
				t.Errorf("plastimatch boundary HD %v, ours %.9f", pm["hd_boundary"], r.HD)
			}
			// Its average and 95 % values use other conventions (mean of
			// the two directed means; mean of two order statistics; image
			// edge not a boundary; its own inside distance map) and are
			// logged, not compared.
			t.Logf("plastimatch avg boundary HD %v (ours under its averaging %.6f), 95%% boundary HD %v (ours under its order statistic %.6f)",
				pm["avg_hd_boundary"], plastiAvg(d), pm["pct95_hd_boundary"], plastiPct(d))
		})
	}
}

// plastiAvg is plastimatch's "Avg average Hausdorff distance (boundary)"
// applied to our directed distances: the mean of the two directed means.
func plastiAvg(d Distances) float64 {
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	return 0.5 * (mean(d.PredToTruth) + mean(d.TruthToPred))
}

// plastiPct is plastimatch's "Percent (0.95) Hausdorff distance (boundary)"
// applied to our directed distances: the mean over both directions of the
// order statistic of rank floor(0.95·n − 1) (0-based).
func plastiPct(d Distances) float64 {
	kth := func(v []float64) float64 {
		k := min(int(math.Floor(0.95*float64(len(v))-1)), len(v)-1)
		a := append([]float64(nil), v...)
		slices.Sort(a)
		return a[k]
	}
	return 0.5 * (kth(d.PredToTruth) + kth(d.TruthToPred))
}

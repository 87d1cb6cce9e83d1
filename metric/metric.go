// Package metric scores binary segmentations per case, as docs/metrics.md defines:
// the overlap metrics from the confusion counts (Dice, IoU, precision,
// sensitivity, specificity), the surface-distance metrics in millimetres (HD,
// HD95, ASSD, computed with an exact Euclidean distance transform), and the
// aggregates over cases (mean, std, SEM, median, n).
//
// Masks are flat []uint8 volumes in NIfTI voxel order (x fastest, then y, then
// z; see volume.Volume); any nonzero voxel is foreground. Scores are computed
// per case, never pooled over a batch.
//
// Conventions, chosen to match MONAI (monai.metrics) and BraTS scoring:
//
//   - Both masks empty: Dice = IoU = 1 and HD = HD95 = ASSD = 0 (a perfect
//     prediction of "nothing there").
//   - Exactly one mask empty: Dice = IoU = 0, and HD = HD95 = ASSD = the image
//     diagonal in mm, sqrt(Σ_i (dims_i·spacing_i)²) — the BraTS convention
//     (373.13 mm for a 240×240×155 image at 1 mm).
//   - Any other ratio whose denominator is zero (precision with no predicted
//     voxel, sensitivity with no true voxel, specificity with no true
//     background) is NaN; Aggregate leaves NaNs out of the statistics and
//     counts them.
package metric

import (
	"encoding/json"
	"fmt"
	"math"
)

// Result holds the metrics of one case. Distances are in millimetres.
type Result struct {
	// Dice = 2TP / (2TP + FP + FN) (Sørensen–Dice coefficient, F1 score).
	Dice float64
	// IoU = TP / (TP + FP + FN) (Jaccard index).
	IoU float64
	// Precision = TP / (TP + FP) (positive predictive value).
	Precision float64
	// Sensitivity = TP / (TP + FN) (recall, true-positive rate).
	Sensitivity float64
	// Specificity = TN / (TN + FP) (true-negative rate).
	Specificity float64
	// HD is the symmetric Hausdorff distance between the two surfaces:
	// max(max_a d(a,∂B), max_b d(b,∂A)).
	HD float64
	// HD95 = max(P95{d(a,∂B) : a ∈ ∂A}, P95{d(b,∂A) : b ∈ ∂B}), the larger
	// of the two directed 95th percentiles (MONAI's
	// compute_hausdorff_distance(percentile=95)), with the percentile of
	// NumPy's default "linear" method (see Percentile).
	HD95 float64
	// ASSD is the average symmetric surface distance: the mean over the
	// union (concatenation) of both directed distance sets,
	// (Σ_a d(a,∂B) + Σ_b d(b,∂A)) / (|∂A| + |∂B|), as MONAI's
	// compute_average_surface_distance(symmetric=True).
	ASSD float64
	// Confusion counts (foreground = positive).
	TP, FP, FN, TN int64
}

// Confusion counts the voxels of pred against truth: tp (both foreground),
// fp (pred only), fn (truth only) and tn (neither). Nonzero is foreground.
// It panics if the slices differ in length (a programming error).
func Confusion(pred, truth []uint8) (tp, fp, fn, tn int64) {
	if len(pred) != len(truth) {
		panic(fmt.Sprintf("metric.Confusion: %d predicted voxels, %d true voxels", len(pred), len(truth)))
	}
	var c [4]int64 // indexed by 2*truth + pred
	for i, p := range pred {
		k := 0
		if truth[i] != 0 {
			k = 2
		}
		if p != 0 {
			k++
		}
		c[k]++
	}
	return c[3], c[1], c[2], c[0]
}

// ratio returns num/den, or NaN when den is 0 (0/0 is NaN; docs/metrics.md).
func ratio(num, den int64) float64 {
	if den == 0 {
		return math.NaN()
	}
	return float64(num) / float64(den)
}

// FromCounts fills the overlap metrics of a Result from confusion counts
// (distances are left zero). Dice and IoU are 1 when both masks are empty
// (tp = fp = fn = 0); the other ratios are NaN when their denominator is 0.
func FromCounts(tp, fp, fn, tn int64) Result {
	r := Result{TP: tp, FP: fp, FN: fn, TN: tn}
	if tp+fp+fn == 0 {
		r.Dice, r.IoU = 1, 1
	} else {
		r.Dice = float64(2*tp) / float64(2*tp+fp+fn)
		r.IoU = float64(tp) / float64(tp+fp+fn)
	}
	r.Precision = ratio(tp, tp+fp)
	r.Sensitivity = ratio(tp, tp+fn)
	r.Specificity = ratio(tn, tn+fp)
	return r
}

// Compute scores pred against truth, two masks of dims[0]×dims[1]×dims[2]
// voxels (x fastest) with voxel size spacing (mm along x, y, z). It returns
// the overlap metrics of FromCounts and the surface distances of
// SurfaceDistances, with the empty-mask conventions of the package comment.
// It fails if the slice lengths do not match dims or the spacing is not
// positive and finite.
func Compute(pred, truth []uint8, dims [3]int, spacing [3]float64) (Result, error) {
	if err := checkGeometry(len(pred), len(truth), dims, spacing); err != nil {
		return Result{}, err
	}
	r := FromCounts(Confusion(pred, truth))
	d, err := SurfaceDistances(pred, truth, dims, spacing)
	if err != nil {
		return Result{}, err
	}
	predEmpty, truthEmpty := r.TP+r.FP == 0, r.TP+r.FN == 0
	switch {
	case predEmpty && truthEmpty:
		r.HD, r.HD95, r.ASSD = 0, 0, 0
	case predEmpty || truthEmpty:
		diag := Diagonal(dims, spacing)
		r.HD, r.HD95, r.ASSD = diag, diag, diag
	default:
		r.HD = math.Max(maxOf(d.PredToTruth), maxOf(d.TruthToPred))
		r.HD95 = math.Max(Percentile(d.PredToTruth, 95), Percentile(d.TruthToPred, 95))
		var sum float64
		for _, v := range d.PredToTruth {
			sum += v
		}
		for _, v := range d.TruthToPred {
			sum += v
		}
		r.ASSD = sum / float64(len(d.PredToTruth)+len(d.TruthToPred))
	}
	return r, nil
}

// Diagonal returns the length in mm of the image's diagonal,
// sqrt(Σ_i (dims_i·spacing_i)²): the distance BraTS assigns when exactly one
// of the masks is empty.
func Diagonal(dims [3]int, spacing [3]float64) float64 {
	var s float64
	for i := range 3 {
		e := float64(dims[i]) * spacing[i]
		s += e * e
	}
	return math.Sqrt(s)
}

func checkGeometry(npred, ntruth int, dims [3]int, spacing [3]float64) error {
	n := 1
	for i := range 3 {
		if dims[i] <= 0 {
			return fmt.Errorf("metric: dims %v: sizes must be positive", dims)
		}
		if !(spacing[i] > 0) || math.IsInf(spacing[i], 0) {
			return fmt.Errorf("metric: spacing %v: must be positive and finite", spacing)
		}
		n *= dims[i]
	}
	if npred != n || ntruth != n {
		return fmt.Errorf("metric: dims %v need %d voxels; prediction has %d, truth %d", dims, n, npred, ntruth)
	}
	return nil
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// FromProbabilities binarises a probability map: voxel i is foreground (1)
// when prob[i] ≥ threshold (MONAI's AsDiscrete(threshold=…) rule), background
// (0) otherwise, NaN included. fess test uses threshold 0.5.
func FromProbabilities(prob []float32, threshold float32) []uint8 {
	m := make([]uint8, len(prob))
	for i, p := range prob {
		if p >= threshold {
			m[i] = 1
		}
	}
	return m
}

// jsonFloat encodes NaN and ±Inf as null, which encoding/json rejects.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// MarshalJSON writes the `fess metrics --json` keys {"dice","iou","precision",
// "sensitivity","specificity","hd","hd95","assd"} plus the counts
// "tp","fp","fn","tn"; NaN is written as null.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Dice        jsonFloat `json:"dice"`
		IoU         jsonFloat `json:"iou"`
		Precision   jsonFloat `json:"precision"`
		Sensitivity jsonFloat `json:"sensitivity"`
		Specificity jsonFloat `json:"specificity"`
		HD          jsonFloat `json:"hd"`
		HD95        jsonFloat `json:"hd95"`
		ASSD        jsonFloat `json:"assd"`
		TP          int64     `json:"tp"`
		FP          int64     `json:"fp"`
		FN          int64     `json:"fn"`
		TN          int64     `json:"tn"`
	}{jsonFloat(r.Dice), jsonFloat(r.IoU), jsonFloat(r.Precision), jsonFloat(r.Sensitivity),
		jsonFloat(r.Specificity), jsonFloat(r.HD), jsonFloat(r.HD95), jsonFloat(r.ASSD),
		r.TP, r.FP, r.FN, r.TN})
}

// Names lists the metrics of a Result in the order of its JSON keys (docs/cli.md).
var Names = []string{"dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd"}

// Get returns the metric called name (one of Names) and whether it exists.
func (r Result) Get(name string) (float64, bool) {
	switch name {
	case "dice":
		return r.Dice, true
	case "iou":
		return r.IoU, true
	case "precision":
		return r.Precision, true
	case "sensitivity":
		return r.Sensitivity, true
	case "specificity":
		return r.Specificity, true
	case "hd":
		return r.HD, true
	case "hd95":
		return r.HD95, true
	case "assd":
		return r.ASSD, true
	}
	return 0, false
}

package dataset

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// Options control preparation. The zero value of a field means its default
// (see Defaults). Every field except Workers and Progress is recorded in the
// manifest and must match for a cached preparation to be reused.
type Options struct {
	// Layout is one of Layouts, or "" / "auto" to detect it.
	Layout string `json:"layout"`
	// Modality picks the input channel: flair (default for MRI), t1, t1ce,
	// t2; CT datasets have only "ct" and npy datasets only "image".
	Modality string `json:"modality"`
	// Target binarises the label; see TargetLabels.
	Target string `json:"target"`
	// Size is the edge S of the prepared cube (default 64).
	Size int `json:"size"`
	// Seed drives the train/val/test split (default 42).
	Seed int64 `json:"seed"`
	// Split holds the train, val and test fractions (default 0.7, 0.1,
	// 0.2); they are normalised to sum to 1.
	Split [3]float64 `json:"split"`
	// Window is the CT intensity window in HU (default −200, 300).
	Window [2]float64 `json:"ct_window"`
	// Workers is the number of cases prepared in parallel (default 2).
	Workers int `json:"-"`
	// Progress, if not nil, receives a progress bar.
	Progress io.Writer `json:"-"`
}

// ctBodyHU is the threshold of the CT body mask used for cropping: voxels
// above −500 HU are body (air is about −1000 HU, fat −100 HU).
const ctBodyHU = -500

// Defaults returns o with its zero fields set to their defaults for layout
// (which must already be resolved, not "auto").
func (o Options) Defaults() Options {
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.Split == [3]float64{} {
		o.Split = [3]float64{0.7, 0.1, 0.2}
	}
	if o.Window == [2]float64{} {
		o.Window = [2]float64{-200, 300}
	}
	if o.Target == "" {
		o.Target = "wt"
		if o.Layout == LayoutAbdomenCT1K || o.Layout == LayoutNPY {
			o.Target = "any"
		}
	}
	if o.Modality == "" {
		switch o.Layout {
		case LayoutAbdomenCT1K:
			o.Modality = "ct"
		case LayoutNPY:
			o.Modality = "image"
		default:
			o.Modality = "flair"
		}
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	return o
}

// Validate reports option values that cannot work, as usage errors.
func (o Options) Validate() error {
	if o.Size < 4 || o.Size > 1024 {
		return errs.Usage("--size %d out of range [4, 1024]", o.Size)
	}
	s := 0.0
	for _, f := range o.Split {
		if f < 0 || math.IsNaN(f) {
			return errs.Usage("split fractions must be ≥ 0, got %v", o.Split)
		}
		s += f
	}
	if s <= 0 {
		return errs.Usage("split fractions sum to 0")
	}
	if !(o.Window[1] > o.Window[0]) {
		return errs.Usage("CT window [%g, %g] is empty", o.Window[0], o.Window[1])
	}
	if _, err := TargetLabels(o.Layout, o.Target); err != nil {
		return err
	}
	return nil
}

// isCT says whether the modality is CT in Hounsfield units.
func (o Options) isCT() bool { return o.Modality == "ct" }

// TargetLabels returns the set of raw label values that make up the
// foreground for target in layout; nil means "every label > 0".
//
//   - wt, any: every label > 0 (whole tumour; any organ).
//   - tc (tumour core): BraTS 1, 3, 4 (2015: necrosis, non-enhancing,
//     enhancing; 2017–2021 has no label 3, so 1 and 4); MSD 2, 3
//     (MSD relabels 1 edema, 2 non-enhancing, 3 enhancing).
//   - et (enhancing tumour): BraTS 4; MSD 3.
//   - liver, kidney, spleen, pancreas: AbdomenCT-1K labels 1, 2, 3, 4.
//   - a comma list of integers, e.g. "1,4": those raw values.
func TargetLabels(layout, target string) ([]int, error) {
	t := strings.ToLower(strings.TrimSpace(target))
	brats := layout == LayoutBraTS2015 || layout == LayoutBraTS2017
	switch t {
	case "wt", "any", "":
		return nil, nil
	case "tc":
		if brats {
			return []int{1, 3, 4}, nil
		}
		if layout == LayoutMSD {
			return []int{2, 3}, nil
		}
	case "et":
		if brats {
			return []int{4}, nil
		}
		if layout == LayoutMSD {
			return []int{3}, nil
		}
	case "liver", "kidney", "spleen", "pancreas":
		if layout == LayoutAbdomenCT1K {
			return []int{map[string]int{"liver": 1, "kidney": 2, "spleen": 3, "pancreas": 4}[t]}, nil
		}
	default:
		var out []int
		for _, f := range strings.Split(t, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, errs.Usage("--target %q: want wt, tc, et, any, an organ name or a comma list of label values", target)
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, errs.Usage("--target %s is not defined for layout %s", target, layout)
}

// labelMapper returns the function that binarises a raw label value.
func labelMapper(labels []int) func(float32) uint8 {
	if labels == nil {
		return func(v float32) uint8 {
			if math.Round(float64(v)) > 0 {
				return 1
			}
			return 0
		}
	}
	return func(v float32) uint8 {
		r := int(math.Round(float64(v)))
		for _, l := range labels {
			if r == l {
				return 1
			}
		}
		return 0
	}
}

// modalityFrame returns which 3-D volume of a 4-D input holds the modality:
// MSD's channel order (FLAIR, T1w, T1gd, T2w) for MRI names, else 0.
func modalityFrame(modality string) int { return msdModalities[modality] }

// frameData returns the voxels of 3-D volume t of v.
func frameData(v *volume.Volume, t int) ([]float32, error) {
	n := v.NumVoxels()
	if n <= 0 || v.Dims[3] < 1 || len(v.Data) < n*v.Dims[3] {
		return nil, fmt.Errorf("volume has dims %v but %d voxels", v.Dims, len(v.Data))
	}
	if t < 0 || t >= v.Dims[3] {
		return nil, fmt.Errorf("volume %d requested but the file holds %d", t, v.Dims[3])
	}
	return v.Data[t*n : (t+1)*n], nil
}

// PreprocessVolume applies the preparation of opts to one native image:
// for a 4-D image it takes the modality's volume (MSD channel order);
// crops to the foreground box (MRI: voxels ≠ 0; CT: per axial slice the
// largest connected region above −500 HU, the body without the table; the
// whole volume if none); resamples the box to S³ trilinearly (see
// CaseGeometry for the grid convention); and normalises:
//
//   - MRI and npy: z-score (v − μ)/σ with μ, σ over the brain voxels of the
//     resampled box (those whose nearest native voxel is ≠ 0), and 0
//     elsewhere;
//   - CT: clip to the window [a, b] and scale, (clamp(v, a, b) − a)/(b − a) ∈ [0, 1].
//
// It returns the S³ array (x fastest) and the geometry for RestoreMask.
// Zero fields of opts take their defaults (Options.Defaults); pass the
// prepared data set's options (Prepared.Options) to match its cases.
func PreprocessVolume(img *volume.Volume, opts Options) ([]float32, CaseGeometry, error) {
	opts = opts.Defaults()
	if opts.Size < 1 {
		return nil, CaseGeometry{}, fmt.Errorf("prepared size %d < 1", opts.Size)
	}
	t := 0
	if img.Dims[3] > 1 {
		t = modalityFrame(opts.Modality)
	}
	data, err := frameData(img, t)
	if err != nil {
		return nil, CaseGeometry{}, err
	}
	d := [3]int{img.Dims[0], img.Dims[1], img.Dims[2]}
	for _, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, CaseGeometry{}, fmt.Errorf("image holds NaN or Inf voxel values")
		}
	}
	var lo, hi [3]int
	var ok bool
	if opts.isCT() {
		lo, hi, ok = bodyBox(data, d)
	} else {
		lo, hi, ok = foregroundBox(d, func(i int) bool { return data[i] != 0 })
	}
	if !ok {
		lo, hi = [3]int{}, d
	}
	g := newGeometry(img, lo, hi, opts.Size)
	out := resampleLinear(data, d, lo, hi, opts.Size)
	if opts.isCT() {
		a, b := opts.Window[0], opts.Window[1]
		g.Offset, g.Scale = a, b-a
		for i, v := range out {
			out[i] = float32((math.Max(a, math.Min(b, float64(v))) - a) / (b - a))
		}
		return out, g, nil
	}
	// z-score over the brain voxels of the resampled box (the native
	// brain mask carried over by nearest neighbour), 0 outside.
	brain := resampleNearest(data, d, lo, hi, opts.Size, func(v float32) bool { return v != 0 })
	var n int
	var sum, sum2 float64
	for i, v := range out {
		if brain[i] {
			n++
			sum += float64(v)
			sum2 += float64(v) * float64(v)
		}
	}
	mean, std := 0.0, 1.0
	if n > 0 {
		mean = sum / float64(n)
		if vr := sum2/float64(n) - mean*mean; vr > 1e-12 {
			std = math.Sqrt(vr)
		}
	}
	g.Offset, g.Scale = mean, std
	for i, v := range out {
		if brain[i] {
			out[i] = float32((float64(v) - mean) / std)
		} else {
			out[i] = 0
		}
	}
	return out, g, nil
}

// PrepareLabel binarises a native label volume (3-D) with the target's label
// set and resamples it onto the prepared grid of g by nearest neighbour.
func PrepareLabel(label *volume.Volume, labels []int, g CaseGeometry) ([]uint8, error) {
	data, err := frameData(label, 0)
	if err != nil {
		return nil, err
	}
	d := [3]int{label.Dims[0], label.Dims[1], label.Dims[2]}
	if d != g.Dims {
		return nil, fmt.Errorf("label dims %d×%d×%d do not match image dims %d×%d×%d",
			d[0], d[1], d[2], g.Dims[0], g.Dims[1], g.Dims[2])
	}
	return resampleNearest(data, d, g.CropLo, g.CropHi, g.Size, labelMapper(labels)), nil
}

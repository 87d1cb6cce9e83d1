package dataset

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// Options control preparation. The zero value of a field means its default
// (see Defaults). Every field except Workers and Progress is recorded in the
// manifest and must match for a cached preparation to be reused (except
// Folds, whose change rewrites only splits.json, and the Spacing that
// the median spacing mode computes).
type Options struct {
	// Layout is one of Layouts, or "" / "auto" to detect it.
	Layout string `json:"layout"`
	// Modality picks the input channels, a comma list in channel order
	// (--modalities): flair (default for MRI), t1, t1ce, t2, or the BraTS
	// 2023 names t2f, t1n, t1c, t2w (read as flair, t1, t1ce, t2); CT
	// datasets have only "ct" and npy datasets only "image"; nnU-Net data
	// sets name theirs in dataset.json's channel_names (default: all).
	Modality string `json:"modality"`
	// Target lists the output regions, a comma list (each one sigmoid
	// channel): wt, tc, et, any, an organ or region name, or label values
	// joined by "+" (a list of plain label values is one region, their
	// union, as before). See resolveTask.
	Target string `json:"target"`
	// Classes lists mutually exclusive output classes (softmax), e.g.
	// liver,kidney,spleen,pancreas or label values; empty for regions.
	Classes string `json:"classes,omitempty"`
	// Convention names the label convention (brats2021, brats2023, msd,
	// abdomenct1k, binary); empty means the layout's own.
	Convention string `json:"convention,omitempty"`
	// Size is the edge S of the prepared cube (default 64 in the cube
	// mode; 0 in the spacing mode, which has no cube).
	Size int `json:"size"`
	// SpacingMode selects the spacing mode (--spacing): "" is the cube
	// mode (Size), "fixed" resamples every crop box to Spacing, "median"
	// to the data set's median native spacing per axis, which Prepare
	// computes and records in Spacing. A non-zero Spacing with an empty
	// SpacingMode means "fixed".
	SpacingMode string `json:"spacing_mode,omitempty"`
	// Spacing is the target voxel spacing in mm per axis (x, y, z) of the
	// spacing mode.
	Spacing [3]float64 `json:"spacing,omitzero"`
	// Folds is the number of cross-validation folds Prepare writes to
	// splits.json (--folds; 0: none).
	Folds int `json:"folds,omitempty"`
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
	// caseName names the case in PreprocessChannels' warnings (ForCase).
	caseName string
}

// ForCase returns o with name as the case named in PreprocessChannels'
// warnings (a case ID or an input file).
func (o Options) ForCase(name string) Options { o.caseName = name; return o }

// Warnings receives PreprocessChannels' warnings (a constant image); nil:
// the os.Stderr of the moment. A variable so that tests can capture them.
var Warnings io.Writer

// ctBodyHU is the threshold of the CT body mask used for cropping: voxels
// above −500 HU are body (air is about −1000 HU, fat −100 HU).
const ctBodyHU = -500

// Defaults returns o with its zero fields set to their defaults for layout
// (which must already be resolved, not "auto").
func (o Options) Defaults() Options {
	if o.SpacingMode == "" && o.Spacing != [3]float64{} {
		o.SpacingMode = SpacingFixed
	}
	if o.Size == 0 && o.SpacingMode == "" {
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
	if o.Target == "" && o.Classes == "" {
		o.Target = defaultTarget(o.Layout)
	}
	if o.Modality == "" {
		switch o.Layout {
		case LayoutNNUNet:
			// Filled from dataset.json's channel_names by Prepare.
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
	switch o.SpacingMode {
	case "":
		if o.Size < 4 || o.Size > 1024 {
			return errs.Usage("--size %d out of range [4, 1024]", o.Size)
		}
	case SpacingFixed, SpacingMedian:
		if o.Size != 0 {
			return errs.Usage("--size and --spacing are exclusive (the cube mode or the spacing mode)")
		}
		if o.SpacingMode == SpacingFixed || o.Spacing != [3]float64{} {
			if err := checkSpacing(o.Spacing); err != nil {
				return errs.Usage("--spacing: %v", err)
			}
		}
	default:
		return errs.Usage("spacing mode %q: want %s or %s", o.SpacingMode, SpacingFixed, SpacingMedian)
	}
	if o.Folds < 0 || o.Folds == 1 || o.Folds > maxFolds {
		return errs.Usage("--folds %d: want 0 (none) or 2 to %d", o.Folds, maxFolds)
	}
	s := 0.0
	for _, f := range o.Split {
		if !(f >= 0) || math.IsInf(f, 0) {
			return errs.Usage("--split %g,%g,%g: fractions must be finite and ≥ 0", o.Split[0], o.Split[1], o.Split[2])
		}
		s += f
	}
	if s <= 0 {
		return errs.Usage("--split %g,%g,%g: fractions sum to 0", o.Split[0], o.Split[1], o.Split[2])
	}
	if math.IsNaN(o.Window[0]) || math.IsNaN(o.Window[1]) || math.IsInf(o.Window[0], 0) || math.IsInf(o.Window[1], 0) {
		return errs.Usage("--window %g,%g: want two finite HU values", o.Window[0], o.Window[1])
	}
	if !(o.Window[1] > o.Window[0]) {
		return errs.Usage("--window %g,%g: the CT window is empty (want low < high)", o.Window[0], o.Window[1])
	}
	if o.Workers < 0 {
		return errs.Usage("--workers %d: want ≥ 1", o.Workers)
	}
	return nil
}

// The spacing modes (Options.SpacingMode).
const (
	SpacingFixed  = "fixed"
	SpacingMedian = "median"
)

// maxFolds bounds --folds.
const maxFolds = 100

// Patched says whether o is the spacing mode: cases keep their own dims
// (the crop box at the target spacing) and are trained on in patches.
func (o Options) Patched() bool { return o.SpacingMode != "" || o.Spacing != [3]float64{} }

// checkSpacing reports a spacing that is not positive and finite per axis.
func checkSpacing(s [3]float64) error {
	for _, v := range s {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("spacing %g×%g×%g mm: every value must be positive and finite", s[0], s[1], s[2])
		}
	}
	return nil
}

// isCT says whether the (first) modality is CT in Hounsfield units.
func (o Options) isCT() bool { return o.Modality == "ct" || strings.HasPrefix(o.Modality, "ct,") }

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

// PreprocessVolume applies the preparation of opts to one native image
// with one channel, opts.Modality: for a 4-D image it takes the modality's
// volume (MSD channel order). See PreprocessChannels for the steps.
// Zero fields of opts take their defaults (Options.Defaults); pass the
// prepared data set's options (Prepared.Options) to match its cases.
func PreprocessVolume(img *volume.Volume, opts Options) ([]float32, CaseGeometry, error) {
	opts = opts.Defaults()
	t := 0
	if img.Dims[3] > 1 {
		t = modalityFrame(opts.Modality)
	}
	data, err := frameData(img, t)
	if err != nil {
		return nil, CaseGeometry{}, err
	}
	v3 := *img
	v3.Dims[3] = 1
	v3.Data = data
	mod := opts.Modality
	if chans := splitList(mod); len(chans) > 0 {
		mod = CanonicalModality(chans[0])
	}
	return PreprocessChannels([]*volume.Volume{&v3}, []string{mod}, opts)
}

// PreprocessChannels applies the preparation of opts to the channels of
// one case (3-D volumes of one grid, named by channels): crops to the
// foreground box (MRI: voxels ≠ 0 in any channel; CT: per axial slice the
// largest connected region above −500 HU, the body without the table; the
// whole volume if none); resamples the box trilinearly to S³ in the cube
// mode, or in the spacing mode to opts.Spacing, R_a = max(1,
// round(n_a·spacing_a/target_a)) voxels per axis (see CaseGeometry for the
// grid convention); and normalises each channel on its own:
//
//   - MRI and npy: z-score (v − μ)/σ with μ, σ over the channel's non-zero
//     voxels of the resampled box (those whose nearest native voxel is
//     ≠ 0), and 0 elsewhere;
//   - CT: clip to the window [a, b] and scale, (clamp(v, a, b) − a)/(b − a) ∈ [0, 1].
//
// It returns the C·R0·R1·R2 values (channel after channel, x fastest; C·S³
// in the cube mode) and the geometry for RestoreMask (its Shape gives the
// prepared dims). Channels of different dims are an error. In the spacing
// mode opts.Spacing must be set: pass the prepared data set's options
// (Prepared.Options), which hold the median spacing Prepare computed.
func PreprocessChannels(vols []*volume.Volume, channels []string, opts Options) ([]float32, CaseGeometry, error) {
	opts = opts.Defaults()
	if opts.Patched() {
		if opts.Spacing == [3]float64{} {
			return nil, CaseGeometry{}, fmt.Errorf("spacing mode %s without a target spacing (use the prepared data set's options, which record it)", opts.SpacingMode)
		}
	} else if opts.Size < 1 {
		return nil, CaseGeometry{}, fmt.Errorf("prepared size %d < 1", opts.Size)
	}
	if len(vols) == 0 || len(vols) != len(channels) {
		return nil, CaseGeometry{}, fmt.Errorf("%d volumes for %d channels", len(vols), len(channels))
	}
	d := [3]int{vols[0].Dims[0], vols[0].Dims[1], vols[0].Dims[2]}
	datas := make([][]float32, len(vols))
	for c, v := range vols {
		if [3]int{v.Dims[0], v.Dims[1], v.Dims[2]} != d {
			return nil, CaseGeometry{}, fmt.Errorf("channel %s has dims %d×%d×%d but channel %s has %d×%d×%d",
				channels[c], v.Dims[0], v.Dims[1], v.Dims[2], channels[0], d[0], d[1], d[2])
		}
		data, err := frameData(v, 0)
		if err != nil {
			return nil, CaseGeometry{}, fmt.Errorf("channel %s: %w", channels[c], err)
		}
		for _, x := range data {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, CaseGeometry{}, fmt.Errorf("channel %s holds NaN or Inf voxel values", channels[c])
			}
		}
		datas[c] = data
	}
	if d[0] < 2 || d[1] < 2 || d[2] < 2 {
		return nil, CaseGeometry{}, fmt.Errorf("%d×%d×%d voxels: a 2-D image; fess segments 3-D volumes", d[0], d[1], d[2])
	}
	for c, data := range datas {
		if v, ok := constant(data); ok {
			name := opts.caseName
			if name == "" {
				name = "input"
			}
			w := Warnings
			if w == nil {
				w = os.Stderr
			}
			fmt.Fprintf(w, "warning: %s: channel %s is a constant image (every voxel is %g); it carries no information and its prediction will be meaningless\n",
				name, channels[c], v)
		}
	}
	var lo, hi [3]int
	var ok bool
	ct := -1
	for c, name := range channels {
		if name == "ct" {
			ct = c
			break
		}
	}
	if ct >= 0 {
		lo, hi, ok = bodyBox(datas[ct], d)
	} else if len(datas) == 1 {
		data := datas[0]
		lo, hi, ok = foregroundBox(d, func(i int) bool { return data[i] != 0 })
	} else {
		lo, hi, ok = foregroundBox(d, func(i int) bool {
			for _, data := range datas {
				if data[i] != 0 {
					return true
				}
			}
			return false
		})
	}
	if !ok {
		lo, hi = [3]int{}, d
	}
	shape := [3]int{opts.Size, opts.Size, opts.Size}
	if opts.Patched() {
		var err error
		if shape, err = spacingShape(vols[0].Spacing, lo, hi, opts.Spacing); err != nil {
			return nil, CaseGeometry{}, err
		}
	}
	g := newGeometry(vols[0], lo, hi, shape, opts.Size)
	n := shape[0] * shape[1] * shape[2]
	out := make([]float32, 0, n*len(datas))
	for c, data := range datas {
		x, off, scale := normaliseChannel(data, d, lo, hi, shape, opts, channels[c] == "ct")
		out = append(out, x...)
		g.Norm = append(g.Norm, [2]float64{off, scale})
		if c == 0 {
			g.Offset, g.Scale = off, scale
		}
	}
	if len(datas) == 1 {
		g.Norm = nil
	}
	return out, g, nil
}

// constant reports whether every value of data is the same, and which.
func constant(data []float32) (float32, bool) {
	if len(data) == 0 {
		return 0, false
	}
	for _, v := range data[1:] {
		if v != data[0] {
			return 0, false
		}
	}
	return data[0], true
}

// normaliseChannel resamples one channel's box to shape and normalises it,
// returning the values and the offset and scale used.
func normaliseChannel(data []float32, d, lo, hi, shape [3]int, opts Options, ct bool) ([]float32, float64, float64) {
	out := resampleLinearTo(data, d, lo, hi, shape)
	if ct {
		a, b := opts.Window[0], opts.Window[1]
		for i, v := range out {
			out[i] = float32((math.Max(a, math.Min(b, float64(v))) - a) / (b - a))
		}
		return out, a, b - a
	}
	// z-score over the non-zero voxels of the resampled box (the native
	// mask carried over by nearest neighbour), 0 outside.
	brain := resampleNearestTo(data, d, lo, hi, shape, func(v float32) bool { return v != 0 })
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
	for i, v := range out {
		if brain[i] {
			out[i] = float32((float64(v) - mean) / std)
		} else {
			out[i] = 0
		}
	}
	return out, mean, std
}

// PrepareRegions splits a native label volume (3-D) into the task's region
// masks and resamples each onto the prepared grid of g by nearest
// neighbour; the K·R0·R1·R2 result (K·S³ in the cube mode) is region
// after region.
func PrepareRegions(label *volume.Volume, t Task, g CaseGeometry) ([]uint8, error) {
	data, d, err := labelOnGrid(label, g)
	if err != nil {
		return nil, err
	}
	masks, err := t.RegionMasks(data)
	if err != nil {
		return nil, err
	}
	var out []uint8
	for _, m := range masks {
		f := make([]float32, len(m))
		for i, b := range m {
			f[i] = float32(b)
		}
		out = append(out, resampleNearestTo(f, d, g.CropLo, g.CropHi, g.PreparedDims(), func(v float32) uint8 { return uint8(v) })...)
	}
	return out, nil
}

// PrepareLabel binarises a native label volume (3-D) with the target's label
// set and resamples it onto the prepared grid of g by nearest neighbour.
func PrepareLabel(label *volume.Volume, labels []int, g CaseGeometry) ([]uint8, error) {
	data, d, err := labelOnGrid(label, g)
	if err != nil {
		return nil, err
	}
	return resampleNearestTo(data, d, g.CropLo, g.CropHi, g.PreparedDims(), labelMapper(labels)), nil
}

// labelOnGrid returns the voxels of a 3-D label volume and its dims,
// checking that they match the native grid of g.
func labelOnGrid(label *volume.Volume, g CaseGeometry) ([]float32, [3]int, error) {
	d := [3]int{label.Dims[0], label.Dims[1], label.Dims[2]}
	data, err := frameData(label, 0)
	if err != nil {
		return nil, d, err
	}
	if d != g.Dims {
		return nil, d, fmt.Errorf("label dims %d×%d×%d do not match image dims %d×%d×%d",
			d[0], d[1], d[2], g.Dims[0], g.Dims[1], g.Dims[2])
	}
	return data, d, nil
}

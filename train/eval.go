package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/infer"
	"github.com/fess-seg/fess/internal/atomicio"
	prog "github.com/fess-seg/fess/internal/progress"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/volume"
)

// CaseMetrics is one row of metrics.csv: one test case and one region.
type CaseMetrics struct {
	ID     string
	Region string
	metric.Result
	// Lesion holds the BraTS 2023 lesion-wise metrics (brain regions of
	// the BraTS conventions only).
	Lesion *metric.LesionResult
}

// Summary is summary.json: per-metric aggregates over the test cases
// (NaNs, e.g. precision of an empty prediction, are excluded and counted).
// Metrics holds the one region's aggregates, or with several regions the
// aggregates of each case's mean over its regions; Regions holds each
// region's own aggregates (lesion-wise metrics included where computed).
type Summary struct {
	Run     string                               `json:"run"`
	Data    string                               `json:"data"`
	Cases   int                                  `json:"cases"`
	Metrics map[string]metric.Summary            `json:"metrics"`
	Regions map[string]map[string]metric.Summary `json:"regions,omitempty"`
	// RegionOrder lists the regions in output-channel order.
	RegionOrder []string `json:"region_order,omitempty"`
	// Space is where the metrics were computed: "prepared" (the prepared
	// grid) or "native" (each case's own grid and spacing).
	Space string `json:"space,omitempty"`
	// Checkpoint is the weights tested when not the default best: "last"
	// or "ema" (fess test --checkpoint).
	Checkpoint string `json:"checkpoint,omitempty"`
}

// lesionNames are the extra metrics.csv columns of the lesion-wise metrics.
var lesionNames = []string{"lesion_dice", "lesion_hd95", "lesion_tp", "lesion_fn", "lesion_fp"}

func (r CaseMetrics) get(name string) float64 {
	if v, ok := r.Get(name); ok {
		return v
	}
	if r.Lesion == nil {
		return math.NaN()
	}
	switch name {
	case "lesion_dice":
		return r.Lesion.Dice
	case "lesion_hd95":
		return r.Lesion.HD95
	case "lesion_tp":
		return float64(r.Lesion.TP)
	case "lesion_fn":
		return float64(r.Lesion.FN)
	case "lesion_fp":
		return float64(r.Lesion.FP)
	}
	return math.NaN()
}

// lesionRegion says whether region r gets lesion-wise metrics: the WT, TC
// and ET regions of a BraTS-convention task.
func lesionRegion(t dataset.Task, name string) bool {
	if !t.IsBraTS() || t.Softmax {
		return false
	}
	switch name {
	case "wt", "tc", "et":
		return true
	}
	return false
}

// Evaluate runs a trained model on the test split of a prepared data set
// and writes, in out, metrics.csv (one row per case and region),
// summary.json and the predictions pred/<id>.nii.gz (uint8: a 0/1 mask for
// one region, else a label map in the data set's convention). Metrics are
// per case and region (never pooled over a batch) on the prediction
// thresholded at 0.5 (softmax classes: the arg-max), with surface
// distances in millimetres (docs/metrics.md); BraTS regions WT, TC and ET
// also get the BraTS 2023 lesion-wise metrics. A cube-mode run is scored
// on the prepared grid (the paper's setting); a patch-trained run predicts
// each whole case by sliding window and is scored in native space (see
// EvaluateRuns).
func Evaluate(run, data, out string, progress io.Writer) (*Summary, []CaseMetrics, error) {
	return EvaluateRuns([]string{run}, data, out, InferOptions{}, progress)
}

// EvaluateRuns is Evaluate for an ensemble of runs (e.g. the folds of a
// cross-validation): the case's probabilities are the mean over the runs'
// probabilities. With opt.Native, or for patch-trained runs, predictions
// are put back into each case's native grid (the crop restored, the
// spacing undone) and scored there against the raw label file, and
// pred/<id>.nii.gz is written in the native grid and affine; otherwise on
// the prepared grid.
func EvaluateRuns(runs []string, data, out string, opt InferOptions, progress io.Writer) (*Summary, []CaseMetrics, error) {
	ens, err := loadEnsemble(runs, opt.Checkpoint)
	if err != nil {
		return nil, nil, err
	}
	if data == "" {
		data = ens.cfg.Data
	}
	p, err := dataset.Open(data)
	if err != nil {
		return nil, nil, err
	}
	m := ens.models[0]
	if !ens.cfg.Patched() && (p.Patched() || p.Size() != m.Cfg.InputSize) {
		return nil, nil, errs.Input(data, "prepared data (%s) does not match the run's %d³ cube input", prepDesc(p), m.Cfg.InputSize)
	}
	task := p.Task()
	if len(task.Channels) != m.Cfg.InChannels || task.OutChannels() != m.Cfg.OutChannels || task.Softmax != m.Cfg.Softmax {
		return nil, nil, errs.Input(data, "prepared data has channels %s and outputs %s, which the run's model (%d in, %d out) does not match",
			strings.Join(task.Channels, ","), strings.Join(task.RegionNames(), ","), m.Cfg.InChannels, m.Cfg.OutChannels)
	}
	cases := p.Split("test")
	if len(cases) == 0 {
		return nil, nil, errs.Input(data, "prepared data has no test cases")
	}
	if err := os.MkdirAll(filepath.Join(out, "pred"), 0o755); err != nil {
		return nil, nil, err
	}
	native := opt.Native || ens.cfg.Patched()
	var rows []CaseMetrics
	bar := prog.New(progress, int64(len(cases)), "test")
	defer bar.Finish()
	for _, ci := range cases {
		img, mask, dims, err := p.LoadCase(ci.ID)
		if err != nil {
			return nil, nil, err
		}
		probs, err := ens.probabilities(img, dims, opt)
		if err != nil {
			return nil, nil, fmt.Errorf("case %s: %w", ci.ID, err)
		}
		vox := dims[0] * dims[1] * dims[2]
		preds := regionMasksCM(probs, vox, m.Cfg.OutChannels, m.Cfg.Softmax, 0.5)
		if opt.KeepLargest {
			for r := range preds {
				preds[r] = infer.KeepLargest(preds[r], dims)
			}
		}
		g := ci.Geometry
		sdims, spacing := dims, g.PreparedSpacing
		truths := make([][]uint8, len(preds))
		for r := range truths {
			truths[r] = mask[r*vox : (r+1)*vox]
		}
		if native {
			if truths, err = nativeTruth(task, ci); err != nil {
				return nil, nil, err
			}
			for r := range preds {
				preds[r] = volumeMask(dataset.RestoreMask(preds[r], g))
			}
			sdims, spacing = g.Dims, g.Spacing
		}
		var line []string
		for r, reg := range task.Regions {
			res, err := metric.Compute(preds[r], truths[r], sdims, spacing)
			if err != nil {
				return nil, nil, fmt.Errorf("case %s region %s: %w", ci.ID, reg.Name, err)
			}
			row := CaseMetrics{ID: ci.ID, Region: reg.Name, Result: res}
			if lesionRegion(task, reg.Name) {
				lopt, err := metric.LesionOptionsFor(ci.Challenge)
				if err != nil {
					return nil, nil, errs.Input(data, "case %s: %v", ci.ID, err)
				}
				lw, err := metric.LesionWise(preds[r], truths[r], sdims, spacing, lopt)
				if err != nil {
					return nil, nil, fmt.Errorf("case %s region %s: %w", ci.ID, reg.Name, err)
				}
				row.Lesion = &lw
			}
			rows = append(rows, row)
			line = append(line, fmt.Sprintf("%s %.3f", reg.Name, res.Dice))
		}
		var labels []uint8
		if task.Binary() {
			labels = preds[0]
		} else {
			labels = task.LabelMap(preds)
		}
		v := &volume.Volume{Dims: [4]int{sdims[0], sdims[1], sdims[2], 1}, Data: make([]float32, len(labels)),
			Spacing: g.PreparedSpacing, Affine: g.PreparedAffine}
		if native {
			v.Spacing, v.Affine = g.Spacing, g.Affine
		}
		for j, b := range labels {
			v.Data[j] = float32(b)
		}
		if err := volume.WriteNIfTI(filepath.Join(out, "pred", ci.ID+".nii.gz"), v, "uint8"); err != nil {
			return nil, nil, err
		}
		bar.Describe(fmt.Sprintf("test %s dice %s", ci.ID, strings.Join(line, " ")))
		bar.Add(1)
	}
	bar.Finish()
	sum := summarise(strings.Join(runs, ","), data, len(cases), task, rows)
	sum.Space = "prepared"
	if opt.Checkpoint != "best" {
		sum.Checkpoint = opt.Checkpoint
	}
	if native {
		sum.Space = "native"
	}
	if err := writeMetricsCSV(filepath.Join(out, "metrics.csv"), rows, hasLesion(rows)); err != nil {
		return nil, nil, err
	}
	if err := atomicio.WriteJSON(filepath.Join(out, "summary.json"), sum); err != nil {
		return nil, nil, err
	}
	return sum, rows, nil
}

func hasLesion(rows []CaseMetrics) bool {
	for _, r := range rows {
		if r.Lesion != nil {
			return true
		}
	}
	return false
}

// summarise aggregates rows (cases × regions, case-major) per region and,
// for Metrics, per case over its regions.
func summarise(run, data string, cases int, task dataset.Task, rows []CaseMetrics) *Summary {
	k := len(task.Regions)
	sum := &Summary{Run: run, Data: data, Cases: cases, Metrics: map[string]metric.Summary{}}
	names := append([]string(nil), metric.Names...)
	if hasLesion(rows) {
		names = append(names, lesionNames...)
	}
	if k > 1 {
		sum.Regions = map[string]map[string]metric.Summary{}
		sum.RegionOrder = task.RegionNames()
		for r, reg := range task.Regions {
			per := map[string]metric.Summary{}
			for _, name := range names {
				var vals []float64
				for i := r; i < len(rows); i += k {
					vals = append(vals, rows[i].get(name))
				}
				per[name] = metric.Aggregate(vals)
			}
			sum.Regions[reg.Name] = per
		}
	}
	for _, name := range names {
		vals := make([]float64, 0, cases)
		for c := 0; c+k <= len(rows); c += k {
			// The case's mean over its regions (NaN if any region's is).
			var s float64
			for r := 0; r < k; r++ {
				s += rows[c+r].get(name)
			}
			vals = append(vals, s/float64(k))
		}
		sum.Metrics[name] = metric.Aggregate(vals)
	}
	return sum
}

func writeMetricsCSV(path string, rows []CaseMetrics, lesion bool) error {
	var b strings.Builder
	b.WriteString("case,region," + strings.Join(metric.Names, ",") + ",tp,fp,fn,tn")
	if lesion {
		b.WriteString("," + strings.Join(lesionNames, ","))
	}
	b.WriteByte('\n')
	num := func(v float64) {
		b.WriteByte(',')
		if math.IsNaN(v) {
			b.WriteString("NaN")
		} else {
			b.WriteString(strconv.FormatFloat(v, 'g', 10, 64))
		}
	}
	for _, r := range rows {
		b.WriteString(r.ID + "," + r.Region)
		for _, n := range metric.Names {
			num(r.get(n))
		}
		fmt.Fprintf(&b, ",%d,%d,%d,%d", r.TP, r.FP, r.FN, r.TN)
		if lesion {
			for _, n := range lesionNames {
				num(r.get(n))
			}
		}
		b.WriteByte('\n')
	}
	return atomicio.WriteFile(path, []byte(b.String()), 0o644)
}

// ReadSummary reads a summary.json written by Evaluate.
func ReadSummary(path string) (*Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Input(path, "cannot read summary: %v", err)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errs.Input(path, "bad summary: %v", err)
	}
	return &s, nil
}

// PredictOptions are fess predict's settings.
type PredictOptions struct {
	// Frame picks the volume of a 4-D single-channel input; −1 means the
	// run's own (the frame its channel had in the training data).
	Frame int
	// Threshold binarises sigmoid outputs (default 0.5 when 0).
	Threshold float32
	// Probabilities, if set, is a float32 NIfTI written with the
	// per-region probabilities, X×Y×Z×K in the input's grid.
	Probabilities string
	// Convention, if set, writes the label map in that convention
	// instead of the training data's.
	Convention string
	// Infer sets test-time augmentation, the sliding window's overlap and
	// the largest-component postprocessing.
	Infer InferOptions
}

// PredictFile segments one native case with a trained run; see PredictRuns.
func PredictFile(run string, inputs []string, out string, opt PredictOptions) error {
	return PredictRuns([]string{run}, inputs, out, opt)
}

// PredictRuns segments one native case with a trained run, or an ensemble
// of runs (probabilities averaged), and writes the prediction, resampled
// back into the input's grid and affine, as NIfTI: a 0/1 mask for one
// region, else a label map in the data set's (or opt.Convention's) label
// convention. inputs are the case's files: one file per channel in the
// run's channel order, or one 4-D file holding every channel (frames as in
// the training data), or one case folder of a BraTS layout. The input goes
// through the same crop/resample/normalise as the run's prepared data
// (RUN/data_options.json, RUN/task.json): the S³ cube of a cube-mode run,
// or the target spacing of a patch-trained run, whose whole case is then
// predicted by sliding window.
func PredictRuns(runs []string, inputs []string, out string, opt PredictOptions) error {
	p, err := NewPredictor(runs, opt)
	if err != nil {
		return err
	}
	return p.Predict(inputs, out)
}

// Predictor is a loaded run or ensemble that segments case after case
// (fess predict's whole-folder mode) without reloading the weights.
type Predictor struct {
	runs   []string
	ens    *ensemble
	opt    PredictOptions
	labels dataset.Task // the task in opt.Convention's labels (else ens.task)
}

// NewPredictor loads runs (their opt.Infer.Checkpoint) for PredictRuns'
// predictions with opt.
func NewPredictor(runs []string, opt PredictOptions) (*Predictor, error) {
	ens, err := loadEnsemble(runs, opt.Infer.Checkpoint)
	if err != nil {
		return nil, err
	}
	if opt.Threshold == 0 {
		opt.Threshold = 0.5
	}
	if !(opt.Threshold > 0 && opt.Threshold < 1) {
		return nil, errs.Usage("--threshold %g: want a probability in (0, 1)", opt.Threshold)
	}
	labels := ens.task
	if opt.Convention != "" {
		if labels, err = labels.InConvention(opt.Convention); err != nil {
			return nil, err
		}
	}
	return &Predictor{runs: runs, ens: ens, opt: opt, labels: labels}, nil
}

// Predict segments the case given by inputs into out (and
// opt.Probabilities); see PredictRuns.
func (p *Predictor) Predict(inputs []string, out string) error {
	ens, opt := p.ens, p.opt
	m, task := ens.models[0], ens.task
	vols, err := readChannels(task, inputs, opt.Frame)
	if err != nil {
		return err
	}
	x, g, err := dataset.PreprocessChannels(vols, task.Channels, ens.opts.ForCase(strings.Join(inputs, ",")))
	if err != nil {
		return errs.Input(inputs[0], "%v", err)
	}
	dims := g.PreparedDims()
	if !ens.cfg.Patched() && dims != [3]int{m.Cfg.InputSize, m.Cfg.InputSize, m.Cfg.InputSize} {
		return errs.Input(p.runs[0], "data options give a %v grid but the model takes %d³", dims, m.Cfg.InputSize)
	}
	vox := dims[0] * dims[1] * dims[2]
	probs, err := ens.probabilities(x, dims, opt.Infer)
	if err != nil {
		return errs.Input(inputs[0], "%v", err)
	}
	masks := regionMasksCM(probs, vox, m.Cfg.OutChannels, m.Cfg.Softmax, opt.Threshold)
	if opt.Infer.KeepLargest {
		for r := range masks {
			masks[r] = infer.KeepLargest(masks[r], dims)
		}
	}
	if opt.Probabilities != "" {
		pr := regionProbsCM(probs, vox, m.Cfg.OutChannels, m.Cfg.Softmax)
		pv := dataset.RestoreProbabilities(pr, g)
		if err := volume.WriteNIfTI(opt.Probabilities, pv, "float32"); err != nil {
			return err
		}
	}
	var labels []uint8
	if p.labels.Binary() {
		labels = masks[0]
	} else {
		labels = p.labels.LabelMap(masks)
	}
	return volume.WriteNIfTI(out, dataset.RestoreMask(labels, g), "uint8")
}

// readChannels reads the run's channels from inputs (see PredictFile).
func readChannels(task dataset.Task, inputs []string, frame int) ([]*volume.Volume, error) {
	c := len(task.Channels)
	need := strings.Join(task.Channels, ",")
	if len(inputs) == 1 {
		if st, err := os.Stat(inputs[0]); err == nil && st.IsDir() {
			files, err := dataset.FindChannelFiles(inputs[0], task.Channels)
			if err != nil {
				return nil, err
			}
			inputs = files
		}
	}
	if len(inputs) != 1 && len(inputs) != c {
		return nil, errs.Usage("predict: the run takes %d channels (%s); --in gave %d files (give one file per channel in that order, one 4-D file, or a case folder)", c, need, len(inputs))
	}
	vols := make([]*volume.Volume, c)
	if len(inputs) == c && (c > 1 || frame < 0 || true) && len(inputs) > 1 {
		for i, f := range inputs {
			v, err := volume.Read(f)
			if err != nil {
				return nil, err
			}
			if v.Dims[3] > 1 {
				return nil, errs.Input(f, "holds %d volumes; with one file per channel each must be 3-D (%s)", v.Dims[3], task.Channels[i])
			}
			vols[i] = v
		}
		return vols, nil
	}
	f := inputs[0]
	v, err := volume.Read(f)
	if err != nil {
		return nil, err
	}
	frames := make([]int, c)
	for i := range frames {
		switch {
		case c == 1 && frame >= 0:
			frames[i] = frame
		case i < len(task.Frames):
			frames[i] = task.Frames[i]
		case c > 1:
			frames[i] = i
		}
	}
	if c > 1 && v.Dims[3] < c {
		return nil, errs.Input(f, "holds %d volume(s) but the run takes %d channels (%s): give a 4-D file with every channel, one file per channel, or a case folder", v.Dims[3], c, need)
	}
	for i, t := range frames {
		if v.Dims[3] == 1 && t == 0 {
			vols[i] = v
			continue
		}
		if t >= v.Dims[3] {
			return nil, errs.Input(f, "the run's channel %s is volume %d, but the file holds %d volume(s)", task.Channels[i], t, v.Dims[3])
		}
		vi, err := v.Volume3D(t)
		if err != nil {
			return nil, errs.Input(f, "%v", err)
		}
		vols[i] = vi
	}
	return vols, nil
}

// taskFile keeps, in the run folder, the data set's channels, regions and
// label convention (dataset.Task).
const taskFile = "task.json"

// loadTask reads RUN/task.json; runs from before it existed take one
// channel and one region from their data options.
func loadTask(run string, o dataset.Options) (dataset.Task, error) {
	path := filepath.Join(run, taskFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return dataset.LegacyTask(o), nil
	}
	if err != nil {
		return dataset.Task{}, errs.Input(path, "cannot read the run's task: %v", err)
	}
	var t dataset.Task
	if err := json.Unmarshal(data, &t); err != nil {
		return t, errs.Input(path, "bad task: %v", err)
	}
	if len(t.Channels) == 0 || len(t.Regions) == 0 {
		return t, errs.Input(path, "task names no channel or no region")
	}
	return t, nil
}

// LoadTask returns a run's task (channels, regions, convention).
func LoadTask(run string) (dataset.Task, error) {
	o, err := loadDataOptions(run)
	if err != nil {
		return dataset.Task{}, err
	}
	return loadTask(run, o)
}

// dataOptionsFile keeps, in the run folder, the preparation options of the
// data it was trained on, so prediction needs the run folder alone.
const dataOptionsFile = "data_options.json"

func saveDataOptions(run string, o dataset.Options) error {
	return atomicio.WriteJSON(filepath.Join(run, dataOptionsFile), o)
}

func loadDataOptions(run string) (dataset.Options, error) {
	var o dataset.Options
	path := filepath.Join(run, dataOptionsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return o, errs.Input(path, "cannot read the run's data options: %v", err)
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, errs.Input(path, "bad data options: %v", err)
	}
	return o, nil
}

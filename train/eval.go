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
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/volume"
)

// CaseMetrics is one test case's row of metrics.csv.
type CaseMetrics struct {
	ID string
	metric.Result
}

// Summary is summary.json: per-metric aggregates over the test cases
// (NaNs, e.g. precision of an empty prediction, are excluded and counted).
type Summary struct {
	Run     string                    `json:"run"`
	Data    string                    `json:"data"`
	Cases   int                       `json:"cases"`
	Metrics map[string]metric.Summary `json:"metrics"`
}

// Evaluate runs a trained model on the test split of a prepared data set
// and writes, in out, metrics.csv (one row per case), summary.json and the
// predicted masks pred/<id>.nii.gz (uint8 in the prepared grid, with its
// affine). Metrics are per case (never pooled over a batch) on the
// prediction thresholded at 0.5, with surface distances in millimetres on
// the prepared grid's spacing (SPEC §2).
func Evaluate(run, data, out string, progress io.Writer) (*Summary, []CaseMetrics, error) {
	m, cfg, err := LoadModel(run)
	if err != nil {
		return nil, nil, err
	}
	if data == "" {
		data = cfg.Data
	}
	p, err := dataset.Open(data)
	if err != nil {
		return nil, nil, err
	}
	if p.Size() != m.Cfg.InputSize {
		return nil, nil, errs.Input(data, "prepared size %d differs from the model's input size %d", p.Size(), m.Cfg.InputSize)
	}
	cases := p.Split("test")
	if len(cases) == 0 {
		return nil, nil, errs.Input(data, "prepared data has no test cases")
	}
	if err := os.MkdirAll(filepath.Join(out, "pred"), 0o755); err != nil {
		return nil, nil, err
	}
	var rows []CaseMetrics
	for i, ci := range cases {
		img, mask, err := p.Load(ci.ID)
		if err != nil {
			return nil, nil, err
		}
		pred := metric.FromProbabilities(Predict(m, img, p.Size()), 0.5)
		s := p.Size()
		r, err := metric.Compute(pred, mask, [3]int{s, s, s}, ci.Geometry.PreparedSpacing)
		if err != nil {
			return nil, nil, fmt.Errorf("case %s: %w", ci.ID, err)
		}
		rows = append(rows, CaseMetrics{ID: ci.ID, Result: r})
		v := &volume.Volume{Dims: [4]int{s, s, s, 1}, Data: make([]float32, len(pred)),
			Spacing: ci.Geometry.PreparedSpacing, Affine: ci.Geometry.PreparedAffine}
		for j, b := range pred {
			v.Data[j] = float32(b)
		}
		if err := volume.WriteNIfTI(filepath.Join(out, "pred", ci.ID+".nii.gz"), v, "uint8"); err != nil {
			return nil, nil, err
		}
		if progress != nil {
			fmt.Fprintf(progress, "\rtest %d/%d  %s dice %.3f", i+1, len(cases), ci.ID, r.Dice)
		}
	}
	if progress != nil {
		fmt.Fprintln(progress)
	}
	sum := &Summary{Run: run, Data: data, Cases: len(rows), Metrics: map[string]metric.Summary{}}
	for _, name := range metric.Names {
		vals := make([]float64, len(rows))
		for i, r := range rows {
			vals[i], _ = r.Get(name)
		}
		sum.Metrics[name] = metric.Aggregate(vals)
	}
	if err := writeMetricsCSV(filepath.Join(out, "metrics.csv"), rows); err != nil {
		return nil, nil, err
	}
	if err := atomicio.WriteJSON(filepath.Join(out, "summary.json"), sum); err != nil {
		return nil, nil, err
	}
	return sum, rows, nil
}

func writeMetricsCSV(path string, rows []CaseMetrics) error {
	var b strings.Builder
	b.WriteString("case," + strings.Join(metric.Names, ",") + ",tp,fp,fn,tn\n")
	for _, r := range rows {
		b.WriteString(r.ID)
		for _, n := range metric.Names {
			v, _ := r.Get(n)
			b.WriteByte(',')
			if math.IsNaN(v) {
				b.WriteString("NaN")
			} else {
				b.WriteString(strconv.FormatFloat(v, 'g', 10, 64))
			}
		}
		fmt.Fprintf(&b, ",%d,%d,%d,%d\n", r.TP, r.FP, r.FN, r.TN)
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

// PredictFile segments one native image file with a trained run and writes
// the mask, resampled back into the input's grid and affine, as NIfTI. The
// input goes through the same crop/resample/normalise as the run's prepared
// data (the options are read from the run's data_options.json).
func PredictFile(run, in, out string, frame int, threshold float32) error {
	m, _, err := LoadModel(run)
	if err != nil {
		return err
	}
	opts, err := loadDataOptions(run)
	if err != nil {
		return err
	}
	v, err := volume.Read(in)
	if err != nil {
		return err
	}
	if v.Dims[3] > 1 || frame != 0 {
		if v, err = v.Volume3D(frame); err != nil {
			return errs.Input(in, "%v", err)
		}
	}
	x, g, err := dataset.PreprocessVolume(v, opts)
	if err != nil {
		return err
	}
	if g.Size != m.Cfg.InputSize {
		return errs.Input(run, "data options give size %d but the model takes %d", g.Size, m.Cfg.InputSize)
	}
	mask := metric.FromProbabilities(Predict(m, x, g.Size), threshold)
	return volume.WriteNIfTI(out, dataset.RestoreMask(mask, g), "uint8")
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

package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

// File is an experiment file (see the package documentation for its JSON
// form).
type File struct {
	Name     string    `json:"name"`
	Out      string    `json:"out"`
	Datasets []Dataset `json:"datasets"`
	Losses   []string  `json:"losses"`
	Pairings []string  `json:"pairings,omitempty"`
	// ContrastiveScales and Lambdas, when given, are grid axes for the
	// contrastive losses (fess, simclr, infonce): each such loss runs once
	// per (pairing ×) scale × λ; the other losses run once.
	ContrastiveScales []float64 `json:"contrastive_scales,omitempty"`
	Lambdas           []float64 `json:"lambdas,omitempty"`
	// CompareTo names the reference of the paired comparisons: a loss
	// (its first variant) or a variant name; empty: the first FESS variant.
	CompareTo   string     `json:"compare_to,omitempty"`
	TrainSizes  []int      `json:"train_sizes"`
	Seeds       []uint64   `json:"seeds"`
	DataSeed    int64      `json:"data_seed,omitempty"`
	Split       [3]float64 `json:"split,omitzero"`
	Jobs        int        `json:"jobs,omitempty"`
	FigureCases int        `json:"figure_cases,omitempty"`
	Train       Recipe     `json:"train"`
}

// Dataset is one data set of the grid: synthetic (Kind) or real (Path).
type Dataset struct {
	Name string `json:"name"`
	// Kind "brain" or "abdomen" asks for synthetic data: Cases cases with
	// edge SynthSize.
	Kind      string `json:"kind,omitempty"`
	Cases     int    `json:"cases,omitempty"`
	SynthSize int    `json:"synth_size,omitempty"`
	// Path is a raw data set folder and Layout its layout (default auto).
	Path   string `json:"path,omitempty"`
	Layout string `json:"layout,omitempty"`
	// Preparation: prepared edge, input channels (a comma list), output
	// regions or classes and label convention (dataset.Options).
	Size       int    `json:"size,omitempty"`
	Modality   string `json:"modality,omitempty"`
	Target     string `json:"target,omitempty"`
	Classes    string `json:"classes,omitempty"`
	Convention string `json:"convention,omitempty"`
}

// Recipe is the training recipe shared by every run; zero fields take
// train.Config's defaults, except Threads (default 1).
type Recipe struct {
	Preset         string  `json:"preset,omitempty"`
	Filters        int     `json:"filters,omitempty"`
	Levels         int     `json:"levels,omitempty"`
	Dropout        float32 `json:"dropout,omitempty"`
	Epochs         int     `json:"epochs,omitempty"`
	Batch          int     `json:"batch,omitempty"`
	LR             float64 `json:"lr,omitempty"`
	ValEvery       int     `json:"val_every,omitempty"`
	ClipNorm       float64 `json:"clip_norm,omitempty"`
	WeightDecay    float64 `json:"weight_decay,omitempty"`
	DecoupledDecay bool    `json:"decoupled_weight_decay,omitempty"`
	Lambda         float64 `json:"lambda,omitempty"`
	Scale          float64 `json:"contrastive_scale,omitempty"`
	Temperature    float64 `json:"temperature,omitempty"`
	ProjectionDim  int     `json:"projection_dim,omitempty"`
	QueueLen       int     `json:"queue_len,omitempty"`
	Threads        int     `json:"threads,omitempty"`
	// LRSchedule, WarmupEpochs, EMA and Augment are fess train's
	// --lr-schedule, --warmup-epochs, --ema and --augment (docs/training.md).
	LRSchedule   string  `json:"lr_schedule,omitempty"`
	WarmupEpochs int     `json:"warmup_epochs,omitempty"`
	EMA          float64 `json:"ema,omitempty"`
	Augment      *bool   `json:"augment,omitempty"`
	// TestCheckpoint is the weights each run is tested with: best
	// (default), last or ema (fess test --checkpoint).
	TestCheckpoint string `json:"test_checkpoint,omitempty"`
	// Precision is fess train's --precision (fp32 or bf16) for training
	// and testing.
	Precision string `json:"precision,omitempty"`
}

// Load reads and validates an experiment file and fills its defaults.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Input(path, "cannot read experiment file: %v", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, errs.Input(path, "bad experiment file: %v", err)
	}
	if dec.More() {
		return nil, errs.Input(path, "bad experiment file: data after the JSON object")
	}
	f = f.Defaults()
	if err := f.Validate(); err != nil {
		return nil, errs.Input(path, "%v", err)
	}
	return &f, nil
}

// Defaults fills zero fields: name "experiment", out "<name>-out", pairing
// previous-batch, train size 0 (all), seed 42, data seed 42, threads 1,
// jobs = max(1, cores / threads), 3 figure cases; per data set, size 64,
// synth_size 64, layout auto (brats2017 / abdomenct1k for synthetic data)
// and target wt (any for abdomen).
func (f File) Defaults() File {
	if f.Name == "" {
		f.Name = "experiment"
	}
	if f.Out == "" {
		f.Out = f.Name + "-out"
	}
	if len(f.Pairings) == 0 {
		f.Pairings = []string{"previous-batch"}
	}
	if len(f.TrainSizes) == 0 {
		f.TrainSizes = []int{0}
	}
	if len(f.Seeds) == 0 {
		f.Seeds = []uint64{42}
	}
	if f.DataSeed == 0 {
		f.DataSeed = 42
	}
	if f.Train.Threads == 0 {
		f.Train.Threads = 1
	}
	if f.Jobs == 0 {
		f.Jobs = max(1, runtime.NumCPU()/f.Train.Threads)
	}
	if f.FigureCases == 0 {
		f.FigureCases = 3
	}
	f.Datasets = slices.Clone(f.Datasets)
	for i := range f.Datasets {
		d := &f.Datasets[i]
		if d.Size == 0 {
			d.Size = 64
		}
		if d.Kind != "" {
			if d.SynthSize == 0 {
				d.SynthSize = 64
			}
			switch d.Kind {
			case "brain":
				d.Layout = dataset.LayoutBraTS2017
			case "abdomen":
				d.Layout = dataset.LayoutAbdomenCT1K
			}
		}
		if d.Layout == "" {
			d.Layout = "auto"
		}
		if d.Target == "" && d.Classes == "" {
			d.Target = "wt"
			if d.Kind == "abdomen" || d.Layout == dataset.LayoutAbdomenCT1K {
				d.Target = "any"
			}
		}
	}
	return f
}

// Validate checks a defaulted File.
func (f File) Validate() error {
	if len(f.Datasets) == 0 {
		return fmt.Errorf("no datasets")
	}
	if len(f.Losses) == 0 {
		return fmt.Errorf("no losses")
	}
	seen := map[string]bool{}
	for _, d := range f.Datasets {
		if d.Name == "" || safeName(d.Name) != d.Name {
			return fmt.Errorf("dataset name %q: use letters, digits, '.', '-' or '_'", d.Name)
		}
		if seen[d.Name] {
			return fmt.Errorf("dataset name %q appears twice", d.Name)
		}
		seen[d.Name] = true
		switch {
		case d.Kind != "" && d.Path != "":
			return fmt.Errorf("dataset %s: give either kind (synthetic) or path (real data), not both", d.Name)
		case d.Kind != "":
			if d.Kind != "brain" && d.Kind != "abdomen" {
				return fmt.Errorf("dataset %s: kind %q (want brain or abdomen)", d.Name, d.Kind)
			}
			if d.Cases < 3 {
				return fmt.Errorf("dataset %s: need cases ≥ 3 for a train/val/test split", d.Name)
			}
			if d.SynthSize < 8 {
				return fmt.Errorf("dataset %s: synth_size %d < 8", d.Name, d.SynthSize)
			}
		case d.Path != "":
			if d.Layout != "auto" && !slices.Contains(dataset.Layouts, d.Layout) {
				return fmt.Errorf("dataset %s: layout %q (want auto or one of %s)", d.Name, d.Layout, strings.Join(dataset.Layouts, ", "))
			}
		default:
			return fmt.Errorf("dataset %s: needs kind (synthetic brain|abdomen) or path", d.Name)
		}
		if d.Size < 8 {
			return fmt.Errorf("dataset %s: size %d < 8", d.Name, d.Size)
		}
	}
	seen = map[string]bool{}
	for _, l := range f.Losses {
		if !slices.Contains(train.Losses, l) {
			return fmt.Errorf("unknown loss %q (want one of %s)", l, strings.Join(train.Losses, ", "))
		}
		if seen[l] {
			return fmt.Errorf("loss %q appears twice", l)
		}
		seen[l] = true
	}
	for i, p := range f.Pairings {
		if !slices.Contains(train.Pairings, p) {
			return fmt.Errorf("unknown pairing %q (want one of %s)", p, strings.Join(train.Pairings, ", "))
		}
		if slices.Contains(f.Pairings[:i], p) {
			return fmt.Errorf("pairings: %q appears twice", p)
		}
	}
	if err := f.validateWeights(); err != nil {
		return err
	}
	for _, n := range f.TrainSizes {
		if n < 0 {
			return fmt.Errorf("train size %d < 0", n)
		}
	}
	seeds := map[uint64]bool{}
	for _, s := range f.Seeds {
		if s == 0 {
			return fmt.Errorf("seed 0 is reserved (it means the default); use seeds ≥ 1")
		}
		if seeds[s] {
			return fmt.Errorf("seed %d appears twice", s)
		}
		seeds[s] = true
	}
	if f.Jobs < 1 || f.Train.Threads < 1 || f.FigureCases < 0 {
		return fmt.Errorf("need jobs ≥ 1, train.threads ≥ 1 and figure_cases ≥ 0")
	}
	if f.Split != [3]float64{} {
		sum := 0.0
		for _, v := range f.Split {
			if !(v >= 0) || math.IsInf(v, 0) {
				return fmt.Errorf("split %v: every fraction must be finite and ≥ 0", f.Split)
			}
			sum += v
		}
		if sum == 0 {
			return fmt.Errorf("split %v: fractions sum to 0", f.Split)
		}
	}
	if d := float64(f.Train.Dropout); !(d >= 0 && d < 1) {
		return fmt.Errorf("train.dropout %g: want a probability in [0, 1)", d)
	}
	// Check the recipe the way train will, with a stand-in data folder.
	cfg := f.Train.config("x", "fess", "previous-batch", 0, 1).Defaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("train recipe: %v", err)
	}
	switch f.Train.TestCheckpoint {
	case "", "best", "last":
	case "ema":
		if f.Train.EMA == 0 {
			return fmt.Errorf("train.test_checkpoint \"ema\": the recipe trains without EMA (set train.ema, e.g. 0.99)")
		}
	default:
		return fmt.Errorf("train.test_checkpoint %q: want one of %s", f.Train.TestCheckpoint, strings.Join(train.Checkpoints, ", "))
	}
	if f.CompareTo != "" && f.reference() < 0 {
		var names []string
		for _, v := range f.Variants() {
			names = append(names, v.Variant)
		}
		return fmt.Errorf("compare_to %q: not a loss of the experiment nor one of its variants (%s)", f.CompareTo, strings.Join(names, ", "))
	}
	return nil
}

// ContrastiveLosses are the losses weighted by λ and contrastive_scale
// (total = λ·Dice + (1−λ)·scale·L_contrastive), the ones the
// contrastive_scales and lambdas axes apply to.
var ContrastiveLosses = []string{"fess", "simclr", "infonce"}

// validateWeights checks the contrastive_scales and lambdas axes: finite
// values, scale > 0, 0 < λ ≤ 1, no duplicates, not together with the
// recipe's single value, and a contrastive loss to apply them to.
func (f File) validateWeights() error {
	for _, ax := range []struct {
		key, recipeKey string
		vals           []float64
		recipe         float64
		ok             func(float64) bool
		want           string
	}{
		{"contrastive_scales", "train.contrastive_scale", f.ContrastiveScales, f.Train.Scale,
			func(v float64) bool { return v > 0 }, "a finite scale > 0"},
		{"lambdas", "train.lambda", f.Lambdas, f.Train.Lambda,
			func(v float64) bool { return v > 0 && v <= 1 }, "a finite λ with 0 < λ ≤ 1 (the Dice weight)"},
	} {
		if ax.vals == nil {
			continue
		}
		if len(ax.vals) == 0 {
			return fmt.Errorf("%s: empty list (leave the key out for the recipe's single value)", ax.key)
		}
		if ax.recipe != 0 {
			return fmt.Errorf("%s %v and %s %g: give the list or the single value, not both", ax.key, ax.vals, ax.recipeKey, ax.recipe)
		}
		for i, v := range ax.vals {
			if math.IsNaN(v) || math.IsInf(v, 0) || !ax.ok(v) {
				return fmt.Errorf("%s: value %g: want %s", ax.key, v, ax.want)
			}
			if slices.Contains(ax.vals[:i], v) {
				return fmt.Errorf("%s: value %g appears twice", ax.key, v)
			}
		}
		if !slices.ContainsFunc(f.Losses, isContrastive) {
			return fmt.Errorf("%s %v: no contrastive loss (%s) in losses %v to apply it to", ax.key, ax.vals, strings.Join(ContrastiveLosses, ", "), f.Losses)
		}
	}
	return nil
}

func isContrastive(loss string) bool { return slices.Contains(ContrastiveLosses, loss) }

// config builds one run's train.Config from the recipe.
func (r Recipe) config(data, loss, pairing string, trainCases int, seed uint64) train.Config {
	c := train.Config{
		Data: data, Loss: loss, Pairing: pairing,
		Epochs: r.Epochs, Batch: r.Batch, LR: r.LR, Seed: seed, TrainCases: trainCases,
		ValEvery: r.ValEvery, ClipNorm: r.ClipNorm, WeightDecay: r.WeightDecay, DecoupledDecay: r.DecoupledDecay,
		Lambda: r.Lambda, Scale: r.Scale, Temperature: r.Temperature,
		ProjectionDim: r.ProjectionDim, QueueLen: r.QueueLen, Threads: r.Threads,
		LRSchedule: r.LRSchedule, WarmupEpochs: r.WarmupEpochs, EMA: r.EMA, Augment: r.Augment, Precision: r.Precision,
	}
	c.Model.Preset, c.Model.Filters, c.Model.Levels, c.Model.Dropout = r.Preset, r.Filters, r.Levels, r.Dropout
	return c
}

// safeName keeps letters, digits, '.', '-' and '_' and replaces the rest.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

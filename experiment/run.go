package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/internal/lock"
	"github.com/fess-seg/fess/train"
)

// Options are per-invocation settings that do not change results.
type Options struct {
	// Log receives one line per step and per run (nil: discard).
	Log io.Writer
	// Progress receives the training progress bars when runs go one at a
	// time (nil: none).
	Progress io.Writer
	// Jobs, if > 0, overrides the file's jobs.
	Jobs int
	// DryRun prepares the data sets and lists the runs and their state
	// without training or aggregating anything.
	DryRun bool
	// Command is shown in the report's "generated" line.
	Command string
}

// Stats counts what an invocation did with the grid's runs.
type Stats struct {
	// Runs is the size of the grid.
	Runs int
	// Skipped runs were already complete (test/summary.json present).
	Skipped int
	// Resumed runs continued from their last checkpoint; Trained runs started afresh.
	Resumed, Trained int
	// Failed runs returned an error (listed in the returned error).
	Failed int
	// Elapsed is the wall time of the whole invocation.
	Elapsed time.Duration
}

// Job is one cell of the grid: one training run and its test.
type Job struct {
	Dataset string
	// Loss is the loss name; Pairing is set for FESS only.
	Loss, Pairing string
	// Scale and Lambda are the contrastive weights taken from the
	// contrastive_scales and lambdas axes (0: the recipe's value), set for
	// the contrastive losses only.
	Scale, Lambda float64
	// Variant is Loss, "fess-<pairing>" for FESS, with "-s<scale>" and
	// "-l<λ>" appended for a contrastive loss when the experiment lists
	// several scales or λs: the folder name and the key of the results.
	Variant   string
	TrainSize int
	Seed      uint64
	// Dir is OUT/runs/<dataset>/<variant>/n<size>/s<seed>.
	Dir string
	// Config is what the run is trained with.
	Config train.Config
	// TestCheckpoint is the checkpoint it is tested with ("" = best).
	TestCheckpoint string
}

// TestDir is the run's test output folder.
func (j *Job) TestDir() string { return filepath.Join(j.Dir, "test") }

// Complete reports whether the run's test summary exists.
func (j *Job) Complete() bool {
	_, err := os.Stat(filepath.Join(j.TestDir(), "summary.json"))
	return err == nil
}

// jobRecord is job.json: what the experiment asked of a run folder, free of
// paths so that the output folder can be moved.
type jobRecord struct {
	Dataset    string `json:"dataset"`
	Loss       string `json:"loss"`
	Pairing    string `json:"pairing,omitempty"`
	TrainCases int    `json:"train_cases"`
	Seed       uint64 `json:"seed"`
	Recipe     Recipe `json:"train"`
}

const jobFile = "job.json"

// Run carries out the experiment: it synthesises and prepares the data
// sets, trains and tests every run that is not complete (resuming those
// that have a checkpoint), then aggregates all complete runs into
// OUT/results and OUT/report. Failed runs do not stop the others; they are
// reported in the error after aggregation.
func Run(f *File, opts Options) (Stats, error) {
	start := time.Now()
	var st Stats
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	jobs := f.Jobs
	if opts.Jobs > 0 {
		jobs = opts.Jobs
	}
	if err := f.Validate(); err != nil {
		return st, errs.Usage("experiment: %v", err)
	}
	if err := os.MkdirAll(f.Out, 0o755); err != nil {
		return st, err
	}
	if slices.Contains(f.Losses, "fess") && slices.Contains(f.Pairings, "same-batch") && f.Train.Dropout == 0 &&
		(f.Train.Preset == "" || f.Train.Preset == "unet3d") {
		fmt.Fprintln(log, "warning: FESS same-batch runs without dropout: the two passes of a batch are equal, the contrastive term is the constant log(N·C) with zero gradient, and those runs train λ·Dice alone (set train.dropout to make the views differ)")
	}
	preps := map[string]*dataset.Prepared{}
	for i, d := range f.Datasets {
		fmt.Fprintf(log, "data %d/%d: %s\n", i+1, len(f.Datasets), d.Name)
		p, err := prepareDataset(f, d, opts.Progress, log)
		if err != nil {
			return st, err
		}
		preps[d.Name] = p
	}
	grid, err := Plan(f, preps)
	if err != nil {
		return st, err
	}
	st.Runs = len(grid)
	var pending []*Job
	for _, j := range grid {
		if j.Complete() {
			if err := checkJobRecord(j); err != nil {
				return st, err
			}
			st.Skipped++
			continue
		}
		pending = append(pending, j)
	}
	if len(pending) == 0 {
		fmt.Fprintf(log, "grid: %d runs, %d complete (skipped), 0 to run\n", st.Runs, st.Skipped)
	} else {
		fmt.Fprintf(log, "grid: %d runs, %d complete (skipped), %d to run, %d at a time with %d thread(s) each\n",
			st.Runs, st.Skipped, len(pending), min(jobs, len(pending)), f.Train.Threads)
	}
	if opts.DryRun {
		for _, j := range grid {
			state := "to train"
			if j.Complete() {
				state = "complete"
			} else if train.HasCheckpoint(j.Dir) {
				state = "to resume"
			}
			fmt.Fprintf(log, "  %-60s %s\n", j.Dir, state)
		}
		return st, nil
	}
	for _, j := range pending {
		if err := checkJobRecord(j); err != nil {
			return st, err
		}
	}
	// Written once the file is validated and every run folder accepts its
	// recipe, so a refused experiment leaves the recorded one as it was.
	if err := atomicio.WriteJSON(filepath.Join(f.Out, "experiment.json"), f); err != nil {
		return st, err
	}
	// Longest runs first (training cost grows with the training size), so
	// that parallel workers finish together and an interrupted experiment
	// already has the largest size, the one the table reports.
	slices.SortStableFunc(pending, func(a, b *Job) int { return b.TrainSize - a.TrainSize })

	var (
		mu       sync.Mutex
		failures []string
		done     int
		next     = make(chan *Job)
		wg       sync.WaitGroup
	)
	progress := opts.Progress
	if jobs > 1 {
		progress = nil // interleaved bars from several runs would be unreadable
	}
	for range min(jobs, len(pending)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				t0 := time.Now()
				resumed, dice, err := runJob(j, progress, log, nil)
				mu.Lock()
				done++
				rel := relPath(f.Out, j.Dir)
				switch {
				case err != nil:
					st.Failed++
					failures = append(failures, fmt.Sprintf("%s: %v", rel, err))
					fmt.Fprintf(log, "[%d/%d] %s FAILED after %s: %v\n", done, len(pending), rel, since(t0), err)
				default:
					if resumed {
						st.Resumed++
					} else {
						st.Trained++
					}
					how := "trained"
					if resumed {
						how = "resumed"
					}
					fmt.Fprintf(log, "[%d/%d] %s %s in %s, test Dice %.3f (elapsed %s)\n", done, len(pending), rel, how, since(t0), dice, since(start))
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range pending {
		next <- j
	}
	close(next)
	wg.Wait()

	fmt.Fprintf(log, "aggregating into %s and %s\n", filepath.Join(f.Out, "results"), filepath.Join(f.Out, "report", "index.html"))
	if err := Aggregate(f, grid, preps, opts.Command, log); err != nil {
		return st, err
	}
	st.Elapsed = time.Since(start)
	fmt.Fprintf(log, "done in %s: %d runs, %d skipped, %d resumed, %d trained, %d failed\n",
		since(start), st.Runs, st.Skipped, st.Resumed, st.Trained, st.Failed)
	if len(failures) > 0 {
		return st, fmt.Errorf("%d of %d runs failed (the results leave them out):\n  %s", len(failures), st.Runs, strings.Join(failures, "\n  "))
	}
	return st, nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Second) }

func relPath(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}

// synthRecord is raw/.synth.json: the parameters the synthetic sources were
// written with, written after the last case.
type synthRecord struct {
	Kind  string `json:"kind"`
	Cases int    `json:"cases"`
	Size  int    `json:"synth_size"`
	Seed  int64  `json:"seed"`
}

// prepareDataset synthesises (if needed) and prepares one data set.
func prepareDataset(f *File, d Dataset, progress, log io.Writer) (*dataset.Prepared, error) {
	base := filepath.Join(f.Out, "data", d.Name)
	raw := d.Path
	if d.Kind != "" {
		raw = filepath.Join(base, "raw")
		want := synthRecord{d.Kind, d.Cases, d.SynthSize, f.DataSeed}
		marker := filepath.Join(raw, ".synth.json")
		if data, err := os.ReadFile(marker); err == nil {
			var have synthRecord
			if err := json.Unmarshal(data, &have); err != nil {
				return nil, errs.Input(marker, "bad synthesis record: %v", err)
			}
			if have != want {
				return nil, errs.Input(marker, "synthetic data was written with %+v but the experiment asks for %+v; remove %s or choose another out", have, want, base)
			}
		} else {
			fmt.Fprintf(log, "  synthesising %d %s cases (%d³) in %s\n", d.Cases, d.Kind, d.SynthSize, raw)
			if err := os.MkdirAll(raw, 0o755); err != nil {
				return nil, err
			}
			if err := dataset.WriteSynth(d.Kind, raw, d.Cases, d.SynthSize, f.DataSeed, 2, progress); err != nil {
				return nil, err
			}
			if err := atomicio.WriteJSON(marker, want); err != nil {
				return nil, err
			}
		}
	}
	prepDir := filepath.Join(base, "prepared")
	lk, err := lock.Acquire(prepDir, "experiment")
	if err != nil {
		return nil, err
	}
	defer lk.Release()
	if err := lk.RemoveStaleTemps(log, "cases"); err != nil {
		return nil, err
	}
	if err := dataset.RemoveStaleStaging(prepDir, log); err != nil {
		return nil, err
	}
	m, cached, err := dataset.Prepare(raw, prepDir, dataset.Options{Layout: d.Layout, Modality: d.Modality,
		Size: d.Size, Target: d.Target, Classes: d.Classes, Convention: d.Convention, Seed: f.DataSeed, Split: f.Split, Workers: 2, Progress: progress})
	if err != nil {
		return nil, err
	}
	p, err := dataset.Open(prepDir)
	if err != nil {
		return nil, err
	}
	how := "prepared"
	if cached {
		how = "already prepared"
	}
	fmt.Fprintf(log, "  %s: %d cases (%d train, %d val, %d test) at %d³ in %s\n", how, len(m.Cases),
		len(p.Split("train")), len(p.Split("val")), len(p.Split("test")), p.Size(), prepDir)
	return p, nil
}

// Variants lists the grid's loss variants in table order: each loss in the
// file's order; FESS once per pairing; each contrastive loss (fess,
// simclr, infonce) once per contrastive scale × λ of the
// contrastive_scales and lambdas axes (pairing, then scale, then λ).
// A loss without a contrastive term runs once. An axis with a single value
// sets that value without changing the variant's name.
func (f *File) Variants() []Job {
	scales, lambdas := axis(f.ContrastiveScales), axis(f.Lambdas)
	var out []Job
	for _, l := range f.Losses {
		if !isContrastive(l) {
			out = append(out, Job{Loss: l, Variant: l})
			continue
		}
		pairings := []string{""}
		if l == "fess" {
			pairings = f.Pairings
		}
		for _, p := range pairings {
			for _, sc := range scales {
				for _, lm := range lambdas {
					name := l
					if p != "" {
						name += "-" + p
					}
					if len(scales) > 1 {
						name += "-s" + WeightName(sc)
					}
					if len(lambdas) > 1 {
						name += "-l" + WeightName(lm)
					}
					out = append(out, Job{Loss: l, Pairing: p, Scale: sc, Lambda: lm, Variant: name})
				}
			}
		}
	}
	return out
}

// axis is an axis's values, or a single 0 (the recipe's value) when the
// axis is not given.
func axis(vals []float64) []float64 {
	if len(vals) == 0 {
		return []float64{0}
	}
	return vals
}

// WeightName writes a contrastive scale or λ for a variant name: the
// shortest decimal that reads back as v, in exponent form below 0.1
// without "+" or leading exponent zeros (1e-4, 1e-2, 2.5e-3, 0.5, 1, 10).
// Distinct values give distinct names.
func WeightName(v float64) string {
	if v != 0 && math.Abs(v) < 0.1 {
		e := strconv.FormatFloat(v, 'e', -1, 64) // 1e-04
		mant, exp, _ := strings.Cut(e, "e")
		n, _ := strconv.Atoi(exp)
		return mant + "e" + strconv.Itoa(n)
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	return strings.ReplaceAll(s, "e+", "e")
}

// Sizes resolves the file's training sizes against a data set with nTrain
// training cases: 0 means nTrain; duplicates are dropped; sizes are sorted.
func (f *File) Sizes(name string, nTrain int) ([]int, error) {
	var out []int
	for _, n := range f.TrainSizes {
		if n == 0 {
			n = nTrain
		}
		if n > nTrain {
			return nil, fmt.Errorf("dataset %s: train size %d exceeds its %d training cases", name, n, nTrain)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Plan lists the grid's runs in a fixed order (dataset, size, seed,
// variant, the variants in Variants' order: loss, pairing, scale, λ), given the prepared data sets (missing entries are opened from
// OUT/data/<dataset>/prepared).
func Plan(f *File, preps map[string]*dataset.Prepared) ([]*Job, error) {
	var grid []*Job
	for _, d := range f.Datasets {
		prepDir := filepath.Join(f.Out, "data", d.Name, "prepared")
		p := preps[d.Name]
		if p == nil {
			var err error
			if p, err = dataset.Open(prepDir); err != nil {
				return nil, fmt.Errorf("dataset %s is not prepared yet (%v)", d.Name, err)
			}
		}
		nTrain := len(p.Split("train"))
		if nTrain == 0 || len(p.Split("test")) == 0 {
			return nil, errs.Input(prepDir, "needs training and test cases (has %d and %d)", nTrain, len(p.Split("test")))
		}
		sizes, err := f.Sizes(d.Name, nTrain)
		if err != nil {
			return nil, err
		}
		for _, n := range sizes {
			for _, seed := range f.Seeds {
				for _, v := range f.Variants() {
					j := v
					j.Dataset, j.TrainSize, j.Seed = d.Name, n, seed
					j.Dir = filepath.Join(f.Out, "runs", d.Name, v.Variant, fmt.Sprintf("n%d", n), fmt.Sprintf("s%d", seed))
					j.Config = f.Train.config(prepDir, v.Loss, v.Pairing, n, seed)
					j.TestCheckpoint = f.Train.TestCheckpoint
					if v.Scale != 0 {
						j.Config.Scale = v.Scale
					}
					if v.Lambda != 0 {
						j.Config.Lambda = v.Lambda
					}
					grid = append(grid, &j)
				}
			}
		}
	}
	return grid, nil
}

func (j *Job) record() jobRecord {
	r := recipeOf(j.Config)
	r.TestCheckpoint = j.TestCheckpoint
	return jobRecord{Dataset: j.Dataset, Loss: j.Loss, Pairing: j.Pairing, TrainCases: j.TrainSize, Seed: j.Seed,
		Recipe: r}
}

// recipeOf recovers the shared recipe from a run's configuration.
func recipeOf(c train.Config) Recipe {
	return Recipe{Preset: c.Model.Preset, Filters: c.Model.Filters, Levels: c.Model.Levels, Dropout: c.Model.Dropout,
		Epochs: c.Epochs, Batch: c.Batch, LR: c.LR, ValEvery: c.ValEvery, ClipNorm: c.ClipNorm,
		WeightDecay: c.WeightDecay, DecoupledDecay: c.DecoupledDecay, Lambda: c.Lambda, Scale: c.Scale,
		Temperature: c.Temperature, ProjectionDim: c.ProjectionDim, QueueLen: c.QueueLen, Threads: c.Threads,
		LRSchedule: c.LRSchedule, WarmupEpochs: c.WarmupEpochs, EMA: c.EMA, Augment: c.Augment, Precision: c.Precision}
}

// checkJobRecord fails if the run folder was made for a different job.
func checkJobRecord(j *Job) error {
	path := filepath.Join(j.Dir, jobFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errs.Input(path, "cannot read: %v", err)
	}
	var have jobRecord
	if err := json.Unmarshal(data, &have); err != nil {
		return errs.Input(path, "bad job record: %v", err)
	}
	want := j.record()
	// Compare the encodings: the recipe holds a *bool (augment).
	hb, _ := json.Marshal(have)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(hb, wb) {
		return errs.Input(path, "this run folder was made with %s but the experiment now asks for %s; remove the folder (or the whole out folder) or choose another out", hb, wb)
	}
	return nil
}

// runJob trains (or resumes) and tests one run, under the run folder's
// lock, and returns whether it was resumed and its mean test Dice. stop,
// if not nil, interrupts training between steps (a Slurm cell's signals).
func runJob(j *Job, progress, log io.Writer, stop <-chan os.Signal) (resumed bool, dice float64, err error) {
	// The cell is a run folder like fess train's: lock it, so that a fess
	// train --resume on it (or another experiment over the same folder)
	// cannot write it at the same time.
	lk, err := lock.Acquire(j.Dir, "experiment")
	if err != nil {
		return false, 0, err
	}
	defer lk.Release()
	if err := lk.RemoveStaleTemps(log); err != nil {
		return false, 0, err
	}
	if err := atomicio.WriteJSON(filepath.Join(j.Dir, jobFile), j.record()); err != nil {
		return false, 0, err
	}
	resumed = train.HasCheckpoint(j.Dir)
	topts := train.Options{Resume: resumed, Progress: progress, Stop: stop}
	t, err := train.New(j.Config, j.Dir, topts)
	if err != nil {
		return resumed, 0, err
	}
	if _, err := t.Run(topts); err != nil {
		return resumed, 0, err
	}
	sum, _, err := train.EvaluateRuns([]string{j.Dir}, j.Config.Data, j.TestDir(), train.InferOptions{Checkpoint: j.TestCheckpoint}, nil)
	if err != nil {
		return resumed, 0, err
	}
	return resumed, sum.Metrics["dice"].Mean, nil
}

package experiment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/train"
)

// Cells, one at a time. A grid's cells are Plan's runs in Plan's order
// (dataset, size, seed, variant; the variants cross loss, pairing,
// contrastive scale and λ, see Variants), numbered from 0: RunCell trains and tests
// one of them without aggregating, so that a Slurm job array (WriteSlurm)
// can give each cell its own task, and AggregateOnly then aggregates the
// complete ones.

// Prepare synthesises and prepares the file's data sets (verifying those
// already prepared against the file) and returns the grid in cell order.
// It writes OUT/experiment.json. The caller holds OUT's lock.
func Prepare(f *File, opts Options) ([]*Job, map[string]*dataset.Prepared, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if err := f.Validate(); err != nil {
		return nil, nil, errs.Usage("experiment: %v", err)
	}
	if err := os.MkdirAll(f.Out, 0o755); err != nil {
		return nil, nil, err
	}
	preps := map[string]*dataset.Prepared{}
	for i, d := range f.Datasets {
		fmt.Fprintf(log, "data %d/%d: %s\n", i+1, len(f.Datasets), d.Name)
		p, err := prepareDataset(f, d, opts.Progress, log)
		if err != nil {
			return nil, nil, err
		}
		preps[d.Name] = p
	}
	grid, err := Plan(f, preps)
	if err != nil {
		return nil, nil, err
	}
	if err := atomicio.WriteJSON(filepath.Join(f.Out, "experiment.json"), f); err != nil {
		return nil, nil, err
	}
	return grid, preps, nil
}

// CellState is "complete", "to resume" or "to train".
func (j *Job) CellState() string {
	switch {
	case j.Complete():
		return "complete"
	case train.HasCheckpoint(j.Dir):
		return "to resume"
	}
	return "to train"
}

// SlurmThreads returns SLURM_CPUS_PER_TASK when it is set to a positive
// integer, else 0.
func SlurmThreads() int {
	v, err := strconv.Atoi(strings.TrimSpace(os.Getenv("SLURM_CPUS_PER_TASK")))
	if err != nil || v < 1 {
		return 0
	}
	return v
}

// RunCell trains (or resumes) and tests grid cell number cell, and does not
// aggregate. It takes no lock on OUT (the cells of a job array run at
// once), only the cell's run-folder lock. Data sets already prepared in
// OUT/data are used as they are (WriteSlurm's caller prepares and verifies
// them before the array starts, so that the cells do not race to prepare
// them); missing ones are prepared. A signal on stop interrupts the
// training with its state saved (a *train.ErrInterrupted; the command line
// exits 3), and the next RunCell of the same cell resumes it.
func RunCell(f *File, cell int, opts Options, stop <-chan os.Signal) (Stats, error) {
	start := time.Now()
	st := Stats{Runs: 1}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if err := f.Validate(); err != nil {
		return st, errs.Usage("experiment: %v", err)
	}
	preps := map[string]*dataset.Prepared{}
	for _, d := range f.Datasets {
		prepDir := filepath.Join(f.Out, "data", d.Name, "prepared")
		p, err := dataset.Open(prepDir)
		if err != nil {
			fmt.Fprintf(log, "data: %s is not prepared yet; preparing it\n", d.Name)
			if p, err = prepareDataset(f, d, opts.Progress, log); err != nil {
				return st, err
			}
		}
		preps[d.Name] = p
	}
	grid, err := Plan(f, preps)
	if err != nil {
		return st, err
	}
	if cell < 0 || cell >= len(grid) {
		return st, errs.Usage("experiment: --cell %d is outside the grid's cells 0-%d (list them with --dry-run)", cell, len(grid)-1)
	}
	j := grid[cell]
	if err := checkJobRecord(j); err != nil {
		return st, err
	}
	rel := relPath(f.Out, j.Dir)
	if j.Complete() {
		st.Skipped = 1
		fmt.Fprintf(log, "cell %d/%d: %s is complete (skipped)\n", cell, len(grid), rel)
		st.Elapsed = time.Since(start)
		return st, nil
	}
	fmt.Fprintf(log, "cell %d/%d: %s %s with %d thread(s)\n", cell, len(grid), rel, j.CellState(), j.Config.Threads)
	resumed, dice, err := runJob(j, opts.Progress, log, stop)
	var ie *train.ErrInterrupted
	if errors.As(err, &ie) {
		return st, fmt.Errorf("cell %d: %w (or run --cell %d again)", cell, err, cell)
	}
	if err != nil {
		return st, err
	}
	how := "trained"
	if resumed {
		st.Resumed, how = 1, "resumed"
	} else {
		st.Trained = 1
	}
	st.Elapsed = time.Since(start)
	fmt.Fprintf(log, "cell %d/%d: %s %s in %s, test Dice %.3f\n", cell, len(grid), rel, how, since(start), dice)
	return st, nil
}

// AggregateOnly aggregates the grid's complete runs into OUT/results and
// OUT/report, as Run does after training, and trains nothing. If some
// cells are incomplete, the results leave them out and the error lists
// them by cell number. The caller holds OUT's lock.
func AggregateOnly(f *File, opts Options) (Stats, error) {
	start := time.Now()
	var st Stats
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	grid, preps, err := Prepare(f, opts)
	if err != nil {
		return st, err
	}
	st.Runs = len(grid)
	var missing []string
	for i, j := range grid {
		if !j.Complete() {
			missing = append(missing, fmt.Sprintf("cell %d: %s (%s)", i, relPath(f.Out, j.Dir), j.CellState()))
			continue
		}
		if err := checkJobRecord(j); err != nil {
			return st, err
		}
		st.Skipped++
	}
	fmt.Fprintf(log, "aggregating %d of %d runs into %s and %s\n", st.Skipped, st.Runs,
		filepath.Join(f.Out, "results"), filepath.Join(f.Out, "report", "index.html"))
	if err := Aggregate(f, grid, preps, opts.Command, log); err != nil {
		return st, err
	}
	st.Elapsed = time.Since(start)
	if len(missing) > 0 {
		return st, fmt.Errorf("%d of %d cells are incomplete (the results leave them out); run them with --cell N:\n  %s",
			len(missing), st.Runs, strings.Join(missing, "\n  "))
	}
	return st, nil
}

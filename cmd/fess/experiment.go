package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/experiment"
	"github.com/fess-seg/fess/internal/lock"
	"github.com/fess-seg/fess/train"
)

const experimentUsage = `usage: fess experiment --config FILE [--out DIR] [--jobs N] [--dry-run] [--quiet]
       fess experiment --config FILE [--out DIR] --cell N [--quiet]
       fess experiment --config FILE [--out DIR] --aggregate-only
       fess experiment --config FILE [--out DIR] --slurm DIR [--slurm-opt "--partition=cpu --time=02:00:00"] [--submit]

Runs the paper's comparison as a grid: datasets × losses (× FESS pairings
× contrastive scales × λs for the contrastive losses) × training-set sizes
× seeds. Each cell is a train run plus its test, in
OUT/runs/<dataset>/<variant>/n<size>/s<seed>/ (variant: the loss,
fess-<pairing> for FESS, plus -s<scale> and -l<λ> when the file lists
several, e.g. fess-previous-batch-s1e-2-l0.9). Complete runs
(test/summary.json present) are skipped and runs with a checkpoint are
resumed, so stopping and re-running continues. Then everything complete is
aggregated into OUT/results (table.md/.csv, table-sem.md, table-pooled.*,
comparison.md/.csv, ablation.md/.csv, sizes.csv, figures/, summary.md) and
OUT/report/index.html (opens from disk).

Table: at the largest training size, mean ± std (and ± SEM) over seeds of
each run's mean test metric; table-pooled.* pools all test cases of all
seeds. Size plot: mean ± SEM over seeds of the mean test Dice. Comparison:
per test case paired by (seed, case), loss − reference with a 95% CI and the
Wilcoxon signed-rank p-value; the reference is FESS (its first variant)
unless "compare_to" names another loss or variant ("dice": does any FESS
weight beat Dice?). ablation.csv gives, per data set and variant, its
pairing, contrastive scale and λ, its Dice over seeds and its Dice
difference with the reference.

Experiment file (JSON; unknown keys are errors):
  {
    "name": "paper-synthetic",
    "out": "paper-synthetic-out",
    "datasets": [
      {"name": "brain", "kind": "brain", "cases": 40, "synth_size": 48, "size": 32, "target": "wt"},
      {"name": "abdomen", "kind": "abdomen", "cases": 40, "synth_size": 48, "size": 32, "target": "any"},
      {"name": "brats17", "path": "/data/BraTS2017", "layout": "auto", "size": 64},
      {"name": "gli", "path": "/data/BraTS2023-GLI", "size": 64,
       "modality": "t2f,t1n,t1c,t2w", "target": "wt,tc,et", "convention": "brats2023"},
      {"name": "organs", "kind": "abdomen", "cases": 40, "size": 32,
       "classes": "liver,kidney,spleen,pancreas"}
    ],
    "losses": ["fess", "dice", "simclr", "infonce"],
    "pairings": ["previous-batch"],        FESS only; several give several FESS rows
    "contrastive_scales": [0.0001, 0.01],  axis for fess, simclr, infonce (scale > 0)
    "lambdas": [0.5, 0.9],                 axis for the same (Dice weight, 0 < λ ≤ 1)
    "compare_to": "dice",                  comparisons' reference (default: fess)
    "train_sizes": [8, 0],                 0 = the whole training split
    "seeds": [1, 2],
    "data_seed": 42,                       synthesis and split, shared by all runs
    "split": [0.7, 0.1, 0.2],
    "jobs": 2,                             runs at once (default cores / threads)
    "figure_cases": 3,
    "train": {"preset": "unet3d", "filters": 8, "levels": 3, "dropout": 0.2,
              "epochs": 10, "batch": 2, "lr": 0.002, "threads": 1, "val_every": 1,
              "clip_norm": 1, "weight_decay": 0, "temperature": 0.5,
              "projection_dim": 128, "queue_len": 64}
  }
The recipe's single "lambda" (default 0.5) and "contrastive_scale" (default
0.0001) go instead of the "lambdas" / "contrastive_scales" lists, not with
them. An axis with one value keeps the variant names of a file without it;
Dice and the other non-contrastive losses run once per data set × size ×
seed whatever the axes. Lists must hold distinct finite values.
Synthetic data sets ("kind") are generated in the BraTS 2017 / AbdomenCT-1K
layouts; real ones ("path") are read in place. Both are prepared to size³
with fess prepare's --modalities ("modality"), --target, --classes and
--convention. With several regions, a run's metric is each case's mean over
its regions, and cases are paired by (seed, case, region).
Every run's thread count is train.threads (default 1), recorded in its
config.json, so results do not depend on --jobs.

Cells: the grid's runs in a fixed order (dataset, size, seed, variant;
variants by loss, then pairing, scale, λ), numbered from 0; --dry-run lists
them. --cell N trains and tests cell N only (resuming it if interrupted;
skipped if complete), does not aggregate and takes no lock on OUT, so
several cells can run at once. Its thread count is SLURM_CPUS_PER_TASK
when set (else train.threads). SIGUSR1 or SIGTERM stops it with its state
saved: exit 3, and --cell N again resumes it. --aggregate-only aggregates the complete runs into OUT/results and
OUT/report, trains nothing, and exits 1 listing the incomplete cells.

Slurm: --slurm DIR prepares the data sets (so the cells only read them) and
writes DIR/cells.sbatch, a job array with one task per cell
(--array=0-(cells-1), --cpus-per-task=train.threads, --requeue,
--signal=B:USR1@120, output DIR/logs/cell-%A_%a.out), running
"fess experiment --config FILE --cell $SLURM_ARRAY_TASK_ID" with absolute
paths. The script forwards USR1 and TERM to fess; when fess exits 3 (state
saved) it runs "scontrol requeue $SLURM_JOB_ID", and the requeued task
resumes the cell. DIR/aggregate.sbatch runs --aggregate-only. --slurm-opt
adds sbatch options (blank-separated, repeatable, each starting with "--")
as #SBATCH lines to both. --submit then runs
"sbatch --parsable DIR/cells.sbatch" and
"sbatch --parsable --dependency=afterany:JOBID DIR/aggregate.sbatch" and
prints both job ids (exit 2 if sbatch is not on PATH, 1 if it fails).

examples:
  fess experiment --config examples/paper-synthetic.json
  fess experiment --config examples/paper-synthetic.json --dry-run
  fess experiment --config examples/paper-synthetic.json --cell 3
  fess experiment --config examples/fess-ablation.json
  fess experiment --config examples/paper-synthetic.json --slurm slurm \
      --slurm-opt "--partition=cpu --time=02:00:00 --mem=8G" --submit`

func init() {
	register("experiment", "grid of runs (datasets × losses × sizes × seeds) -> table, plots, report",
		func(args []string) error {
			_, err := runExperiment(args, os.Stdout, os.Stderr)
			return err
		})
}

// slurmOpts collects --slurm-opt values, each split at blanks.
type slurmOpts []string

func (o *slurmOpts) String() string { return strings.Join(*o, " ") }
func (o *slurmOpts) Set(v string) error {
	*o = append(*o, strings.Fields(v)...)
	return nil
}

func runExperiment(args []string, stdout, stderr io.Writer) (experiment.Stats, error) {
	var st experiment.Stats
	fs := newFlags("experiment", experimentUsage)
	config := fs.String("config", "", "experiment `file` (JSON)")
	out := fs.String("out", "", "output `folder` (overrides the file's out)")
	jobs := fs.Int("jobs", 0, "runs trained at once (overrides the file's jobs; results do not change)")
	dry := fs.Bool("dry-run", false, "prepare the data, list the cells and their state; train nothing")
	quiet := fs.Bool("quiet", false, "no progress bars (one line per run is still logged on stderr)")
	cell := fs.Int("cell", -1, "run only grid cell `N` (0-based, see --dry-run), without aggregating")
	aggOnly := fs.Bool("aggregate-only", false, "aggregate the complete runs; train nothing")
	slurmDir := fs.String("slurm", "", "write Slurm job scripts (cells.sbatch, aggregate.sbatch) into `folder`")
	var sopts slurmOpts
	fs.Var(&sopts, "slurm-opt", "extra sbatch `options` for --slurm (\"--partition=cpu --time=02:00:00\")")
	submit := fs.Bool("submit", false, "with --slurm: submit the array and the aggregation with sbatch")
	if err := parseFlags(fs, experimentUsage, args); err != nil {
		return st, err
	}
	if fs.NArg() > 0 {
		return st, errs.Usage("experiment: unexpected argument %q\n%s", fs.Arg(0), experimentUsage)
	}
	if *config == "" {
		return st, errs.Usage("experiment: need --config FILE\n%s", experimentUsage)
	}
	if *jobs < 0 {
		return st, errs.Usage("experiment: --jobs %d < 0", *jobs)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	modes := 0
	for _, m := range []string{"cell", "aggregate-only", "slurm"} {
		if set[m] {
			modes++
		}
	}
	switch {
	case modes > 1:
		return st, errs.Usage("experiment: --cell, --aggregate-only and --slurm exclude each other")
	case modes == 1 && set["dry-run"]:
		return st, errs.Usage("experiment: --dry-run goes alone (it lists the cells)")
	case modes == 1 && set["jobs"]:
		return st, errs.Usage("experiment: --jobs is for a local run of the whole grid")
	case set["cell"] && *cell < 0:
		return st, errs.Usage("experiment: --cell %d < 0", *cell)
	case set["slurm"] && *slurmDir == "":
		return st, errs.Usage("experiment: --slurm needs a folder")
	case !set["slurm"] && (set["slurm-opt"] || *submit):
		return st, errs.Usage("experiment: --slurm-opt and --submit go with --slurm DIR")
	}
	if err := experiment.CheckSlurmOpts(sopts); err != nil {
		return st, err
	}
	f, err := experiment.Load(*config)
	if err != nil {
		return st, err
	}
	if *out != "" {
		f.Out = *out
	}
	cmd := "fess experiment --config " + filepath.ToSlash(*config)
	if *out != "" {
		cmd += " --out " + *out
	}
	progress := stderr
	if *quiet {
		progress = nil
	}
	opts := experiment.Options{Log: stderr, Progress: progress, Jobs: *jobs, DryRun: *dry, Command: cmd}
	if set["cell"] {
		// No lock on OUT: the cells of a job array run at once; each
		// takes its run folder's lock.
		if n := experiment.SlurmThreads(); n > 0 && n != f.Train.Threads {
			fmt.Fprintf(stderr, "fess: %d thread(s) from SLURM_CPUS_PER_TASK (the recipe says %d; results are bit-identical for a given thread count)\n",
				n, max(1, f.Train.Threads))
			f.Train.Threads = n
		}
		stop, release := train.NotifyStop()
		defer release()
		st, err = experiment.RunCell(f, *cell, opts, stop)
		if err != nil {
			return st, err
		}
		fmt.Fprintf(stdout, "cell %d: %d skipped (complete), %d resumed, %d trained in %s\n",
			*cell, st.Skipped, st.Resumed, st.Trained, st.Elapsed.Round(1e9))
		return st, nil
	}
	// One fess experiment at a time in an out folder (each run cell is
	// locked on its own by experiment.Run).
	lk, err := lock.Acquire(f.Out, "experiment")
	if err != nil {
		return st, err
	}
	defer lk.Release()
	if err := lk.RemoveStaleTemps(stderr); err != nil {
		return st, err
	}
	switch {
	case set["slurm"]:
		return st, writeSlurm(f, *config, *out, *slurmDir, sopts, *submit, opts, stdout)
	case *aggOnly:
		st, err = experiment.AggregateOnly(f, opts)
		if st.Elapsed > 0 { // aggregated (err lists incomplete cells, if any)
			printSummary(f, st, stdout, false)
		}
		return st, err
	}
	st, err = experiment.Run(f, opts)
	if err != nil {
		return st, err
	}
	if *dry {
		grid, perr := experiment.Plan(f, nil)
		if perr != nil {
			return st, perr
		}
		for i, j := range grid {
			rel, _ := filepath.Rel(f.Out, j.Dir)
			fmt.Fprintf(stdout, "cell %d\t%s\t%s\n", i, filepath.ToSlash(rel), j.CellState())
		}
		return st, nil
	}
	printSummary(f, st, stdout, true)
	return st, nil
}

// printSummary prints OUT/results/summary.md and the counts.
func printSummary(f *experiment.File, st experiment.Stats, stdout io.Writer, counts bool) {
	summary, rerr := os.ReadFile(filepath.Join(f.Out, "results", "summary.md"))
	if rerr == nil {
		fmt.Fprintln(stdout, strings.TrimSpace(string(summary)))
	}
	if counts {
		fmt.Fprintf(stdout, "\n%d runs: %d skipped (complete), %d resumed, %d trained in %s\nreport: %s\n",
			st.Runs, st.Skipped, st.Resumed, st.Trained, st.Elapsed.Round(1e9), filepath.Join(f.Out, "report", "index.html"))
	} else if rerr == nil {
		fmt.Fprintf(stdout, "\n%d complete runs of %d aggregated\nreport: %s\n", st.Skipped, st.Runs, filepath.Join(f.Out, "report", "index.html"))
	}
}

// writeSlurm prepares the data sets, writes the job scripts and, with
// submit, submits them.
func writeSlurm(f *experiment.File, config, out, dir string, sopts []string, submit bool, opts experiment.Options, stdout io.Writer) error {
	grid, _, err := experiment.Prepare(f, opts)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("experiment: --slurm: cannot find the fess binary: %v", err)
	}
	if e, err := filepath.EvalSymlinks(exe); err == nil {
		exe = e
	}
	s := &experiment.Slurm{Fess: exe, Cells: len(grid), Threads: f.Train.Threads, Opts: sopts, Name: f.Name}
	for _, p := range []struct {
		dst *string
		src string
	}{{&s.Dir, dir}, {&s.Config, config}, {&s.Out, out}} {
		if p.src == "" {
			continue
		}
		if *p.dst, err = filepath.Abs(p.src); err != nil {
			return err
		}
	}
	if err := experiment.WriteSlurm(s); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d cells\nwrote %s\nwrote %s\n", len(grid), s.CellsScript(), s.AggregateScript())
	if !submit {
		fmt.Fprintf(stdout, "submit with:\n  jobid=$(sbatch --parsable %s)\n  sbatch --dependency=afterany:${jobid%%%%;*} %s\n",
			s.CellsScript(), s.AggregateScript())
		return nil
	}
	sbatch, err := exec.LookPath("sbatch")
	if err != nil {
		return errs.Usage("experiment: --submit: sbatch is not on PATH (run on a Slurm login node, or submit %s yourself)", s.CellsScript())
	}
	cells, err := runSbatch(sbatch, "--parsable", s.CellsScript())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "submitted cells: job %s (array 0-%d)\n", cells, len(grid)-1)
	agg, err := runSbatch(sbatch, "--parsable", "--dependency=afterany:"+cells, s.AggregateScript())
	if err != nil {
		return fmt.Errorf("%v (the cells' job %s is submitted; aggregate later with fess experiment --aggregate-only)", err, cells)
	}
	fmt.Fprintf(stdout, "submitted aggregation: job %s (after job %s)\n", agg, cells)
	return nil
}

// runSbatch runs sbatch --parsable ... and returns the job id it prints
// ("jobid" or "jobid;cluster").
func runSbatch(sbatch string, args ...string) (string, error) {
	c := exec.Command(sbatch, args...)
	var so, se bytes.Buffer
	c.Stdout, c.Stderr = &so, &se
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("experiment: sbatch %s failed: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(se.String()))
	}
	id, _, _ := strings.Cut(strings.TrimSpace(so.String()), ";")
	if id == "" || strings.ContainsAny(id, " \t\n") {
		return "", fmt.Errorf("experiment: sbatch %s printed no job id (stdout %q)", strings.Join(args, " "), so.String())
	}
	return id, nil
}

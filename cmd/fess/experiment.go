package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/experiment"
	"github.com/fess-seg/fess/internal/lock"
)

const experimentUsage = `usage: fess experiment --config FILE [--out DIR] [--jobs N] [--dry-run] [--quiet]

Runs the paper's comparison as a grid: datasets × losses (× FESS pairings) ×
training-set sizes × seeds. Each cell is a train run plus its test, in
OUT/runs/<dataset>/<loss>/n<size>/s<seed>/. Complete runs (test/summary.json
present) are skipped and runs with a checkpoint are resumed, so stopping and
re-running continues. Then everything complete is aggregated into
OUT/results (table.md/.csv, table-sem.md, table-pooled.*, comparison.md/.csv,
sizes.csv, figures/, summary.md) and OUT/report/index.html (opens from disk).

Table: at the largest training size, mean ± std (and ± SEM) over seeds of
each run's mean test metric; table-pooled.* pools all test cases of all
seeds. Size plot: mean ± SEM over seeds of the mean test Dice. Comparison:
per test case paired by (seed, case), loss − FESS with a 95% CI and the
Wilcoxon signed-rank p-value.

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
    "train_sizes": [8, 0],                 0 = the whole training split
    "seeds": [1, 2],
    "data_seed": 42,                       synthesis and split, shared by all runs
    "split": [0.7, 0.1, 0.2],
    "jobs": 2,                             runs at once (default cores / threads)
    "figure_cases": 3,
    "train": {"preset": "unet3d", "filters": 8, "levels": 3, "dropout": 0.2,
              "epochs": 10, "batch": 2, "lr": 0.002, "threads": 1, "val_every": 1,
              "clip_norm": 1, "weight_decay": 0, "lambda": 0.5,
              "contrastive_scale": 0.0001, "temperature": 0.5,
              "projection_dim": 128, "queue_len": 64}
  }
Synthetic data sets ("kind") are generated in the BraTS 2017 / AbdomenCT-1K
layouts; real ones ("path") are read in place. Both are prepared to size³
with fess prepare's --modalities ("modality"), --target, --classes and
--convention. With several regions, a run's metric is each case's mean over
its regions, and cases are paired by (seed, case, region).
Every run's thread count is train.threads (default 1), recorded in its
config.json, so results do not depend on --jobs.

examples:
  fess experiment --config examples/paper-synthetic.json
  fess experiment --config examples/paper-synthetic.json --dry-run`

func init() {
	register("experiment", "grid of runs (datasets × losses × sizes × seeds) -> table, plots, report",
		func(args []string) error {
			_, err := runExperiment(args, os.Stdout, os.Stderr)
			return err
		})
}

func runExperiment(args []string, stdout, stderr io.Writer) (experiment.Stats, error) {
	var st experiment.Stats
	fs := newFlags("experiment", experimentUsage)
	config := fs.String("config", "", "experiment `file` (JSON)")
	out := fs.String("out", "", "output `folder` (overrides the file's out)")
	jobs := fs.Int("jobs", 0, "runs trained at once (overrides the file's jobs; results do not change)")
	dry := fs.Bool("dry-run", false, "prepare the data, list the runs and their state; train nothing")
	quiet := fs.Bool("quiet", false, "no progress bars (one line per run is still logged on stderr)")
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
	st, err = experiment.Run(f, experiment.Options{Log: stderr, Progress: progress, Jobs: *jobs, DryRun: *dry, Command: cmd})
	if err != nil {
		return st, err
	}
	if *dry {
		return st, nil
	}
	summary, rerr := os.ReadFile(filepath.Join(f.Out, "results", "summary.md"))
	if rerr == nil {
		fmt.Fprintln(stdout, strings.TrimSpace(string(summary)))
	}
	fmt.Fprintf(stdout, "\n%d runs: %d skipped (complete), %d resumed, %d trained in %s\nreport: %s\n",
		st.Runs, st.Skipped, st.Resumed, st.Trained, st.Elapsed.Round(1e9), filepath.Join(f.Out, "report", "index.html"))
	return st, nil
}

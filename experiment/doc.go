// Package experiment runs the FESS paper's comparison as one declarative
// grid (docs/method.md, docs/metrics.md, docs/cli.md; issue 6): datasets × losses (× FESS pairings) ×
// training-set sizes × seeds, each cell an ordinary train run followed by a
// test, then aggregates the runs into the paper's results table, the
// Dice-versus-training-size plot with SEM bands, paired per-case comparisons
// of every loss against FESS, training curves, per-case slice figures and a
// self-contained HTML report.
//
// # Experiment file
//
// A JSON object (unknown keys are errors):
//
//	{
//	  "name": "paper-synthetic",            title of the report
//	  "out": "paper-synthetic-out",         output folder (relative to the current directory)
//	  "datasets": [                         one entry per data set, in table order
//	    {"name": "brain", "kind": "brain", "cases": 40, "synth_size": 48, "size": 32, "target": "wt"},
//	    {"name": "abdomen", "kind": "abdomen", "cases": 40, "synth_size": 48, "size": 32, "target": "any"},
//	    {"name": "brats17", "path": "/data/BraTS2017", "layout": "auto", "size": 64, "target": "wt"}
//	  ],
//	  "losses": ["fess", "dice", "simclr", "infonce"],
//	  "pairings": ["previous-batch"],       FESS pairings (fess only; default previous-batch)
//	  "train_sizes": [8, 16, 0],            training cases per run; 0 = the whole training split
//	  "seeds": [1, 2, 3],                   training seeds (weights, shuffling, dropout, augmentation)
//	  "data_seed": 42,                      synthesis and train/val/test split seed (same for every run)
//	  "split": [0.6, 0.1, 0.3],             train/val/test fractions (default 0.7/0.1/0.2)
//	  "jobs": 2,                            runs trained at once (default: cores / threads)
//	  "figure_cases": 3,                    test cases drawn per data set
//	  "train": {                            the recipe shared by every run
//	    "preset": "unet3d", "filters": 8, "levels": 3, "dropout": 0.2,
//	    "epochs": 10, "batch": 2, "lr": 0.002, "threads": 1,
//	    "val_every": 1, "clip_norm": 1, "weight_decay": 0, "decoupled_weight_decay": false,
//	    "lambda": 0.5, "contrastive_scale": 0.0001, "temperature": 0.5,
//	    "projection_dim": 128, "queue_len": 64
//	  }
//	}
//
// A data set is either synthetic ("kind": "brain" or "abdomen", with
// "cases" and the generated edge "synth_size"; written in the BraTS 2017 or
// AbdomenCT-1K layout by dataset.WriteSynth with data_seed) or real ("path"
// to a raw download and its "layout", default auto). Both are prepared with
// dataset.Prepare to "size"³ (default 64) with "target" (default wt for
// brain layouts, any for AbdomenCT-1K) and, optionally, "modality". Zero
// train settings take train.Config's defaults.
//
// # Output folder
//
//	OUT/experiment.json                          the resolved experiment
//	OUT/data/<dataset>/raw, prepared             synthetic sources and prepared cubes
//	OUT/runs/<dataset>/<loss>/n<size>/s<seed>/   a train run (config.json, log.jsonl, last/best.safetensors)
//	    job.json                                 the run's requested configuration
//	    test/metrics.csv, summary.json, pred/    its test outputs
//	OUT/results/                                 tables, comparisons, plots, figures
//	OUT/report/index.html                        the HTML report (opens from disk)
//
// <loss> is the loss name, with the pairing appended for FESS
// (fess-previous-batch). A run is complete when test/summary.json exists;
// complete runs are skipped, a run with a last checkpoint is resumed, so killing
// `fess experiment` and starting it again continues where it stopped. A run
// folder whose job.json differs from what the experiment file now asks for
// is an error rather than silently mixed results.
//
// # Determinism and parallelism
//
// Every run's thread count is fixed by the experiment file (train.threads,
// default 1) and recorded in its config.json; "jobs" only says how many runs
// train at once. A run's result depends on its seed and thread count alone
// (package train), so it does not depend on jobs.
//
// # Statistics
//
// The unit of the results table is the run: for each data set × loss at the
// largest training size, each seed's mean over the test cases is one value,
// and the table gives mean ± std and mean ± SEM over the seeds (n = number of
// seeds), as the paper reports a spread over repeated trainings. The pooled
// table (results/table-pooled.*) instead treats every test case of every
// seed as one value (n = seeds × test cases). The size plot shows, per
// training size, mean ± SEM over seeds of the per-seed mean test Dice.
//
// Paired comparisons: for each data set and each loss other than FESS (the
// first pairing listed), at the largest training size, the test cases are
// paired by (seed, case ID) with FESS's and report.PairedComparison gives the
// mean difference loss − FESS with its 95% t interval and the two-sided
// Wilcoxon signed-rank p-value, for Dice, IoU and HD95.
package experiment

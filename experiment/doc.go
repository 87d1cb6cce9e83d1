// Package experiment runs the FESS paper's comparison as one declarative
// grid (docs/method.md, docs/metrics.md, docs/cli.md; issue 6): datasets × losses (× FESS pairings
// × contrastive scales × λs for the contrastive losses) × training-set
// sizes × seeds, each cell an ordinary train run followed by a test, then
// aggregates the runs into the paper's results table, the
// Dice-versus-training-size plot with SEM bands, paired per-case comparisons
// of every loss against FESS (or another reference, compare_to), an
// ablation table naming each variant's weights, training curves, per-case
// slice figures and a self-contained HTML report (docs/ablation.md walks
// through a weight ablation).
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
//	  "contrastive_scales": [1e-4, 1e-2],   contrastive losses only (default: train.contrastive_scale)
//	  "lambdas": [0.5, 0.9],                contrastive losses only (default: train.lambda)
//	  "compare_to": "dice",                 reference of the paired comparisons (default: fess)
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
//	    "temperature": 0.5, "projection_dim": 128, "queue_len": 64,
//	    "lr_schedule": "constant", "warmup_epochs": 0, "ema": 0, "augment": false,
//	    "test_checkpoint": "best",        weights each run is tested with: best, last or ema
//	    "precision": "fp32"               or bf16 (AVX-512-BF16 CPUs), training and testing
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
// # Contrastive weights
//
// The contrastive losses (fess, simclr, infonce; ContrastiveLosses) train
// on λ·Dice + (1−λ)·scale·L_contrastive. The recipe's "lambda" and
// "contrastive_scale" set one value for every run (defaults 0.5 and 1e-4);
// the lists "lambdas" and "contrastive_scales" instead make them grid
// axes: each contrastive loss runs once per (pairing ×) scale × λ, while
// Dice and the other losses without a contrastive term run once per data
// set × size × seed. A list and the recipe's single value of the same
// weight exclude each other; values must be finite, distinct, scale > 0
// and 0 < λ ≤ 1, and a list needs a contrastive loss to apply to.
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
// <loss> is the variant name: the loss name, with the pairing appended for
// FESS (fess-previous-batch), then "-s<scale>" and "-l<λ>" for a
// contrastive loss when the file lists several scales or λs
// (fess-previous-batch-s1e-2-l0.9, simclr-s1-l0.5; WeightName). An axis
// with a single value changes no name, so existing experiments keep their
// folders. A run is complete when test/summary.json exists;
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
// Paired comparisons: for each data set and each variant other than the
// reference, at the largest training size, the test cases are paired by
// (seed, case ID) with the reference's and report.PairedComparison gives
// the mean difference variant − reference with its 95% t interval and the
// two-sided Wilcoxon signed-rank p-value, for Dice, IoU and HD95. The
// reference is "compare_to": a variant name, or a loss name for that
// loss's first variant; without it, FESS's first variant (first pairing,
// scale and λ listed). results/ablation.csv and ablation.md list, per data
// set and variant, its loss, pairing, contrastive scale and λ (empty for
// losses without a contrastive term), its Dice over seeds and its paired
// Dice difference with the reference (n, mean, 95% CI, Wilcoxon p);
// summary.md opens with that table when the experiment has a weight axis
// with several values or a compare_to.
//
// Cells (RunCell, WriteSlurm) are Plan's runs in Plan's order: data set,
// training size, seed, then the variants in Variants' order (loss, pairing,
// scale, λ).
package experiment

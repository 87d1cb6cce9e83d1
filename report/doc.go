// Package report turns evaluation results into the artefacts of the FESS
// paper (docs/metrics.md, docs/cli.md; the paper's results table and its SEM plot): summary
// statistics and paired tests, the results table in Markdown and CSV, the
// Dice-versus-training-size plot with SEM bands, training curves read from a
// run's log, per-case slice figures with TP/FP/FN overlays, and a
// self-contained HTML report that opens from disk with no network.
//
// Conventions used throughout:
//   - Summaries are metric.Summary (std with n−1, SEM = std/√n, NaNs
//     excluded and counted; see docs/metrics.md).
//   - Paired comparisons take differences d = a − b case by case.
//   - Every file is written atomically: a temporary file in the target
//     directory is renamed over the destination.
//   - Colours are the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal
//     Design"), chosen to stay distinguishable under the common forms of
//     colour-vision deficiency.
package report

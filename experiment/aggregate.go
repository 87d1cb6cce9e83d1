package experiment

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/metric"
	"github.com/fess-seg/fess/report"
	"github.com/fess-seg/fess/volume"
)

// TableMetrics are the results table's columns: the paper's five plus HD95.
var TableMetrics = append(slices.Clone(report.PaperMetrics), "hd95")

// ComparisonMetrics are the metrics of the paired comparisons with the
// reference (compare_to, default FESS).
var ComparisonMetrics = []string{"dice", "iou", "hd95"}

// CaseRow is one test case of a run's test/metrics.csv (one case and
// region: with several regions ID is "case/region").
type CaseRow struct {
	ID     string
	Region string
	Values map[string]float64
}

// ReadMetricsCSV reads a test/metrics.csv written by train.Evaluate: a
// header "case,<metric>,…" and one row per case ("NaN" for 0/0 metrics).
func ReadMetricsCSV(path string) ([]CaseRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Input(path, "cannot read: %v", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return nil, errs.Input(path, "bad CSV: %v", err)
	}
	if len(recs) < 1 || len(recs[0]) < 2 || recs[0][0] != "case" {
		return nil, errs.Input(path, "missing the header case,<metrics>")
	}
	head := recs[0]
	first := 1
	if len(head) > 1 && head[1] == "region" {
		first = 2
	}
	regions := map[string]bool{}
	for _, r := range recs[1:] {
		if first == 2 && len(r) > 1 {
			regions[r[1]] = true
		}
	}
	var rows []CaseRow
	for i, r := range recs[1:] {
		row := CaseRow{ID: r[0], Values: map[string]float64{}}
		if first == 2 {
			row.Region = r[1]
			if len(regions) > 1 {
				row.ID = r[0] + "/" + r[1]
			}
		}
		for k := first; k < len(head); k++ {
			v, err := strconv.ParseFloat(r[k], 64)
			if err != nil {
				return nil, errs.Input(path, "line %d, column %s: %v", i+2, head[k], err)
			}
			row.Values[head[k]] = v
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Label is a variant's display name in tables and plots: the paper's names
// (FESS, Vanilla Dice, SimCLR, InfoNCE), with, in parentheses, the pairing
// for FESS when the experiment has several, and the contrastive scale and
// λ of a contrastive loss when the experiment lists several
// ("FESS (previous-batch, s=1e-2, λ=0.9)").
func (f *File) Label(v Job) string {
	name := v.Loss
	switch v.Loss {
	case "fess":
		name = "FESS"
	case "dice":
		name = "Vanilla Dice"
	case "simclr":
		name = "SimCLR"
	case "infonce":
		name = "InfoNCE"
	}
	var parts []string
	if v.Loss == "fess" && len(f.Pairings) > 1 {
		parts = append(parts, v.Pairing)
	}
	if isContrastive(v.Loss) {
		if len(f.ContrastiveScales) > 1 {
			parts = append(parts, "s="+WeightName(v.Scale))
		}
		if len(f.Lambdas) > 1 {
			parts = append(parts, "λ="+WeightName(v.Lambda))
		}
	}
	if len(parts) > 0 {
		name += " (" + strings.Join(parts, ", ") + ")"
	}
	return name
}

// reference is the index in Variants of the paired comparisons' reference:
// compare_to as a variant name, else as a loss (its first variant); with
// no compare_to, the first FESS variant. -1 if there is none.
func (f File) reference() int {
	want := f.CompareTo
	if want == "" {
		want = "fess"
	}
	vs := f.Variants()
	for i, v := range vs {
		if v.Variant == want {
			return i
		}
	}
	for i, v := range vs {
		if v.Loss == want {
			return i
		}
	}
	return -1
}

// weights returns the contrastive scale and λ a variant trains with (the
// axis value, else the recipe's, else train's default); ok is false for a
// loss without a contrastive term.
func (f *File) weights(v Job) (scale, lambda float64, ok bool) {
	if !isContrastive(v.Loss) {
		return 0, 0, false
	}
	c := f.Train.config("x", v.Loss, v.Pairing, 0, 1)
	if v.Scale != 0 {
		c.Scale = v.Scale
	}
	if v.Lambda != 0 {
		c.Lambda = v.Lambda
	}
	c = c.Defaults()
	return c.Scale, c.Lambda, true
}

// results holds the complete runs' per-case rows.
type results struct {
	rows map[*Job][]CaseRow
}

func (r *results) get(grid []*Job, ds, variant string, size int, seed uint64) (*Job, []CaseRow) {
	for _, j := range grid {
		if j.Dataset == ds && j.Variant == variant && j.TrainSize == size && j.Seed == seed {
			return j, r.rows[j]
		}
	}
	return nil, nil
}

// seedMeans returns, for each seed with a complete run, the mean of the
// metric over the run's test cases (NaNs left out), and all case values.
func (r *results) seedMeans(grid []*Job, f *File, ds, variant string, size int, name string) (means, pooled []float64) {
	for _, seed := range f.Seeds {
		_, rows := r.get(grid, ds, variant, size, seed)
		if rows == nil {
			continue
		}
		vals := make([]float64, len(rows))
		for i, c := range rows {
			vals[i] = c.Values[name]
		}
		pooled = append(pooled, vals...)
		if s := metric.Aggregate(vals); s.N > 0 {
			means = append(means, s.Mean)
		}
	}
	return means, pooled
}

// Aggregate reads every complete run of the grid and writes OUT/results
// (tables, comparisons, plots, figures, summary.md) and OUT/report.
// Incomplete runs are left out and listed in summary.md.
func Aggregate(f *File, grid []*Job, preps map[string]*dataset.Prepared, command string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	res := &results{rows: map[*Job][]CaseRow{}}
	var missing []string
	for _, j := range grid {
		if !j.Complete() {
			missing = append(missing, relPath(f.Out, j.Dir))
			continue
		}
		rows, err := ReadMetricsCSV(filepath.Join(j.TestDir(), "metrics.csv"))
		if err != nil {
			return err
		}
		res.rows[j] = rows
	}
	dir := filepath.Join(f.Out, "results")
	figDir := filepath.Join(dir, "figures")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	variants := f.Variants()
	largest := map[string]int{}
	sizes := map[string][]int{}
	for _, j := range grid {
		largest[j.Dataset] = max(largest[j.Dataset], j.TrainSize)
		if !slices.Contains(sizes[j.Dataset], j.TrainSize) {
			sizes[j.Dataset] = append(sizes[j.Dataset], j.TrainSize)
		}
	}

	// (a) The results table at the largest training size.
	perSeed := &report.Table{Metrics: TableMetrics}
	pooled := &report.Table{Metrics: TableMetrics}
	for _, d := range f.Datasets {
		for _, v := range variants {
			rs := report.Row{Dataset: d.Name, Loss: f.Label(v), Metrics: map[string]metric.Summary{}}
			rp := report.Row{Dataset: d.Name, Loss: f.Label(v), Metrics: map[string]metric.Summary{}}
			for _, m := range TableMetrics {
				means, all := res.seedMeans(grid, f, d.Name, v.Variant, largest[d.Name], m)
				rs.Metrics[m] = metric.Aggregate(means)
				rp.Metrics[m] = metric.Aggregate(all)
			}
			perSeed.Rows = append(perSeed.Rows, rs)
			pooled.Rows = append(pooled.Rows, rp)
		}
	}
	for _, t := range []struct {
		tab  *report.Table
		base string
	}{{perSeed, "table"}, {pooled, "table-pooled"}} {
		if err := t.tab.SaveCSV(filepath.Join(dir, t.base+".csv")); err != nil {
			return err
		}
		if err := t.tab.SaveMarkdown(filepath.Join(dir, t.base+".md"), report.StdDev); err != nil {
			return err
		}
		if err := t.tab.SaveMarkdown(filepath.Join(dir, t.base+"-sem.md"), report.SEM); err != nil {
			return err
		}
	}

	// (b) Dice against training-set size, per data set and all stacked.
	var sizeCSV strings.Builder
	sizeCSV.WriteString("dataset,loss,train_size,dice_mean,dice_std,dice_sem,n_seeds\n")
	var all report.Figure
	var plots []report.ImageFile
	// Long legend labels (a weight ablation's) take width from the plot:
	// widen the figure for them.
	sizeW := 7.0
	for _, v := range variants {
		if n := len([]rune(f.Label(v))); n > 24 {
			sizeW = 9
		}
	}
	for _, d := range f.Datasets {
		var series []report.SizeSeries
		for _, v := range variants {
			s := report.SizeSeries{Loss: f.Label(v)}
			for _, n := range sizes[d.Name] {
				means, _ := res.seedMeans(grid, f, d.Name, v.Variant, n, "dice")
				a := metric.Aggregate(means)
				s.Points = append(s.Points, report.SizePoint{TrainImages: n, Value: a})
				fmt.Fprintf(&sizeCSV, "%s,%s,%d,%s,%s,%s,%d\n", d.Name, s.Loss, n, csvFloat(a.Mean), csvFloat(a.Std), csvFloat(a.SEM), a.N)
			}
			series = append(series, s)
		}
		fig, err := report.SizePlot(series, d.Name+": test Dice vs training-set size (mean ± SEM over seeds)", "Dice")
		if err != nil {
			return err
		}
		all.Panels = append(all.Panels, fig.Panels...)
		all.Legends = append(all.Legends, fig.Legends...)
		files, err := saveFigure(fig, filepath.Join(figDir, "size-"+d.Name), sizeW, 3.6)
		if err != nil {
			return err
		}
		plots = append(plots, report.ImageFile{Title: d.Name + ": Dice vs training-set size",
			Caption: "Mean ± SEM over seeds of each run's mean test Dice.", Path: files[0], Alternates: files[1:]})
	}
	if err := atomicio.WriteFile(filepath.Join(dir, "sizes.csv"), []byte(sizeCSV.String()), 0o644); err != nil {
		return err
	}
	if _, err := saveFigure(&all, filepath.Join(figDir, "size"), sizeW, 3.2*float64(len(all.Panels))); err != nil {
		return err
	}

	// (c) Paired per-case comparisons with FESS.
	comp := pairedComparisons(f, grid, res, largest)
	if err := writeWith(filepath.Join(dir, "comparison.md"), comp.WriteMarkdown); err != nil {
		return err
	}
	if err := writeWith(filepath.Join(dir, "comparison.csv"), comp.WriteCSV); err != nil {
		return err
	}
	abl := ablationRows(f, grid, res, largest, comp)
	if err := writeWith(filepath.Join(dir, "ablation.csv"), func(w io.Writer) error { return writeAblationCSV(f, abl, w) }); err != nil {
		return err
	}
	if err := writeWith(filepath.Join(dir, "ablation.md"), func(w io.Writer) error { return writeAblationMarkdown(f, abl, w) }); err != nil {
		return err
	}

	// (d) Training curves and case figures: first seed, largest size.
	var cases []report.CaseImages
	for _, d := range f.Datasets {
		seed := f.Seeds[0]
		for _, v := range variants {
			j, rows := res.get(grid, d.Name, v.Variant, largest[d.Name], seed)
			if rows == nil {
				continue
			}
			lg, err := report.ReadRunLog(filepath.Join(j.Dir, "log.jsonl"))
			if err != nil {
				return err
			}
			fig, err := report.CurvePlot(lg, fmt.Sprintf("%s, %s (n=%d, seed %d): training curves", d.Name, f.Label(v), j.TrainSize, seed))
			if err != nil {
				return err
			}
			files, err := saveFigure(fig, filepath.Join(figDir, "curves", d.Name+"-"+v.Variant), 7, 0.6+2.2*float64(len(fig.Panels)))
			if err != nil {
				return err
			}
			plots = append(plots, report.ImageFile{Title: fmt.Sprintf("%s, %s: training curves", d.Name, f.Label(v)),
				Caption: fmt.Sprintf("Run %s.", relPath(f.Out, j.Dir)), Path: files[0], Alternates: files[1:]})
		}
		cs, err := caseFigures(f, d, grid, res, preps[d.Name], largest[d.Name], seed, filepath.Join(figDir, "cases", d.Name))
		if err != nil {
			return err
		}
		cases = append(cases, cs...)
	}

	tableWarn := singleCaseWarnings(f, grid, res)
	if err := writeSummary(f, dir, perSeed, pooled, comp, abl, largest, missing, tableWarn); err != nil {
		return err
	}

	// The HTML report.
	var runs []report.RunInfo
	for _, j := range grid {
		cfg, err := os.ReadFile(filepath.Join(j.Dir, "config.json"))
		if err != nil {
			continue // not started
		}
		runs = append(runs, report.RunInfo{Name: relPath(f.Out, j.Dir), Dir: j.Dir, Config: cfg})
	}
	caption := fmt.Sprintf("At the largest training size of each data set (%s). One value per seed: the run's mean over its test cases; mean ± spread over the %d seed(s).",
		sizeList(f, largest), len(f.Seeds))
	gen := time.Now().UTC().Format("2006-01-02 15:04 MST")
	if command != "" {
		gen += " by " + command
	}
	data := report.ReportData{
		Title:     "fess experiment: " + f.Name,
		Intro:     reportIntro(f, grid, missing),
		Generated: gen,
		Tables: []report.TableSection{
			{Title: "Results (unit: run)", Caption: caption, Table: perSeed, Warnings: tableWarn},
			{Title: "Results pooled over test cases", Caption: "Same runs; every test case of every seed is one value (n = seeds × test cases).", Table: pooled, Warnings: tableWarn},
		},
		Comparisons: []report.ComparisonSection{{Title: "Paired comparison with " + f.referenceLabel(),
			Caption: "Per test case, paired by (seed, case ID) at the largest training size: mean of loss − " + f.referenceLabel() + " with its 95% t interval, Wilcoxon signed-rank W and two-sided p.",
			Rows:    comp, Warnings: comp.SmallSampleWarnings()}},
		Plots: plots,
		Cases: cases,
		Runs:  runs,
	}
	return report.HTML(filepath.Join(f.Out, "report"), data)
}

func sizeList(f *File, largest map[string]int) string {
	var parts []string
	for _, d := range f.Datasets {
		parts = append(parts, fmt.Sprintf("%s: %d training cases", d.Name, largest[d.Name]))
	}
	return strings.Join(parts, "; ")
}

func reportIntro(f *File, grid []*Job, missing []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d runs: %d data set(s) × %d loss variant(s) × training sizes %v × seeds %v. ",
		len(grid), len(f.Datasets), len(f.Variants()), f.TrainSizes, f.Seeds)
	if len(f.ContrastiveScales) > 0 || len(f.Lambdas) > 0 {
		fmt.Fprintf(&b, "Contrastive losses run once per contrastive scale %v × λ %v (the others once). ", axisText(f.ContrastiveScales), axisText(f.Lambdas))
	}
	if f.CompareTo != "" {
		fmt.Fprintf(&b, "Paired comparisons are against %s. ", f.referenceLabel())
	}
	r := f.Train
	fmt.Fprintf(&b, "Recipe: preset %s, F=%d, %d levels, dropout %g, %d epochs, batch %d, lr %g, %d thread(s) per run.",
		orDefault(r.Preset, "unet3d"), r.Filters, r.Levels, r.Dropout, r.Epochs, r.Batch, r.LR, r.Threads)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\n\n%d run(s) are not complete and are left out: %s.", len(missing), strings.Join(missing, ", "))
	}
	return b.String()
}

func axisText(vals []float64) string {
	if len(vals) == 0 {
		return "(the recipe's)"
	}
	var parts []string
	for _, v := range vals {
		parts = append(parts, WeightName(v))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pairedComparisons compares every variant with the reference variant
// (File.reference: compare_to, default the first FESS variant).
func pairedComparisons(f *File, grid []*Job, res *results, largest map[string]int) report.ComparisonTable {
	variants := f.Variants()
	ref := f.reference()
	var out report.ComparisonTable
	if ref < 0 {
		return out
	}
	for _, d := range f.Datasets {
		for i, v := range variants {
			if i == ref {
				continue
			}
			for _, m := range ComparisonMetrics {
				var a, b []float64
				for _, seed := range f.Seeds {
					_, ra := res.get(grid, d.Name, v.Variant, largest[d.Name], seed)
					_, rb := res.get(grid, d.Name, variants[ref].Variant, largest[d.Name], seed)
					byID := map[string]float64{}
					for _, c := range rb {
						byID[c.ID] = c.Values[m]
					}
					for _, c := range ra {
						if x, ok := byID[c.ID]; ok {
							a, b = append(a, c.Values[m]), append(b, x)
						}
					}
				}
				p, err := report.PairedComparison(a, b)
				if err != nil || p.N+p.Dropped == 0 {
					continue
				}
				out = append(out, report.Comparison{Dataset: d.Name, Loss: f.Label(v), Reference: f.Label(variants[ref]), Metric: m, Paired: p})
			}
		}
	}
	return out
}

// referenceLabel is the comparisons' reference as the tables name it
// ("FESS" when there is none, as the captions always said).
func (f *File) referenceLabel() string {
	if i := f.reference(); i >= 0 {
		return f.Label(f.Variants()[i])
	}
	return "FESS"
}

// hasAblation reports whether the experiment is a weight ablation: a
// weight axis with several values or an explicit compare_to. Its
// results/summary.md then starts with the ablation table.
func (f *File) hasAblation() bool {
	return len(f.ContrastiveScales) > 1 || len(f.Lambdas) > 1 || f.CompareTo != ""
}

// ablationRow is one data set × variant of results/ablation.csv and .md.
type ablationRow struct {
	dataset string
	v       Job
	size    int
	dice    metric.Summary // over seeds: each seed's mean test Dice
	cmp     *report.Paired // Dice difference v − reference, nil for the reference
}

func ablationRows(f *File, grid []*Job, res *results, largest map[string]int, comp report.ComparisonTable) []ablationRow {
	var out []ablationRow
	for _, d := range f.Datasets {
		for _, v := range f.Variants() {
			means, _ := res.seedMeans(grid, f, d.Name, v.Variant, largest[d.Name], "dice")
			r := ablationRow{dataset: d.Name, v: v, size: largest[d.Name], dice: metric.Aggregate(means)}
			for i := range comp {
				if c := &comp[i]; c.Dataset == d.Name && c.Loss == f.Label(v) && c.Metric == "dice" {
					r.cmp = &c.Paired
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// writeAblationCSV writes results/ablation.csv: one row per data set ×
// variant at the largest training size with the variant's loss, pairing,
// contrastive scale and λ (empty for a loss without a contrastive term),
// its Dice over seeds and its paired Dice difference with the reference.
func writeAblationCSV(f *File, rows []ablationRow, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"dataset", "variant", "label", "loss", "pairing", "contrastive_scale", "lambda", "train_size",
		"n_seeds", "dice_mean", "dice_std", "dice_sem", "reference", "n_pairs", "dice_diff_mean", "dice_diff_ci_low", "dice_diff_ci_high", "wilcoxon_p"}); err != nil {
		return err
	}
	ref := ""
	if f.reference() >= 0 {
		ref = f.referenceLabel()
	}
	for _, r := range rows {
		scale, lambda := "", ""
		if sc, lm, ok := f.weights(r.v); ok {
			scale, lambda = csvFloat(sc), csvFloat(lm)
		}
		rec := []string{r.dataset, r.v.Variant, f.Label(r.v), r.v.Loss, r.v.Pairing, scale, lambda, strconv.Itoa(r.size),
			strconv.Itoa(r.dice.N), csvFloat(r.dice.Mean), csvFloat(r.dice.Std), csvFloat(r.dice.SEM), ref, "", "", "", "", ""}
		if r.cmp != nil {
			copy(rec[13:], []string{strconv.Itoa(r.cmp.N), csvFloat(r.cmp.MeanDiff), csvFloat(r.cmp.CILow), csvFloat(r.cmp.CIHigh), csvFloat(r.cmp.P)})
		} else if f.Label(r.v) == ref {
			rec[12] = "" // the reference itself
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeAblationMarkdown writes the ablation table: per data set and
// variant, its weights, its Dice over seeds and its paired per-case Dice
// difference with the reference (95% t interval, Wilcoxon p).
func writeAblationMarkdown(f *File, rows []ablationRow, w io.Writer) error {
	var b strings.Builder
	ref := f.referenceLabel()
	fmt.Fprintf(&b, "| Dataset | Variant | Pairing | Scale | λ | Dice (mean ± std over seeds) | Δ Dice vs %s | 95%% CI | Wilcoxon p | n pairs |\n", mdCell(ref))
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		scale, lambda := "–", "–"
		if sc, lm, ok := f.weights(r.v); ok {
			scale, lambda = WeightName(sc), WeightName(lm)
		}
		pairing := r.v.Pairing
		if pairing == "" {
			pairing = "–"
		}
		diff, ci, p, n := "n/a", "n/a", "n/a", "0"
		switch {
		case f.Label(r.v) == ref:
			diff, ci, p, n = "(reference)", "", "", ""
		case r.cmp != nil:
			diff = signed(r.cmp.MeanDiff)
			ci = "[" + signed(r.cmp.CILow) + ", " + signed(r.cmp.CIHigh) + "]"
			p = pValue(r.cmp.P)
			n = strconv.Itoa(r.cmp.N)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(r.dataset), mdCell(f.Label(r.v)), pairing, scale, lambda,
			report.FormatCell(r.dice, report.StdDev), diff, ci, p, n)
	}
	fmt.Fprintf(&b, "\nAt the largest training size. Δ Dice = variant − %s per test case, paired by (seed, case ID); CI from the t distribution; p from the two-sided Wilcoxon signed-rank test.\n", ref)
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func signed(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	if v >= 0 {
		s = "+" + s
	}
	return s
}

func pValue(p float64) string {
	switch {
	case math.IsNaN(p):
		return "n/a"
	case p < 0.001:
		return "< 0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// singleCaseWarnings names each data set whose completed runs were tested
// on a single case: its pooled spread and any paired test rest on one case.
func singleCaseWarnings(f *File, grid []*Job, res *results) []string {
	var out []string
	for _, d := range f.Datasets {
		ids := map[string]bool{}
		for _, j := range grid {
			if j.Dataset != d.Name {
				continue
			}
			for _, r := range res.rows[j] {
				ids[r.ID] = true
			}
		}
		if len(ids) == 1 {
			out = append(out, fmt.Sprintf("%s has a single test case: its spread over cases and its paired comparisons rest on that one case.", d.Name))
		}
	}
	return out
}

// caseFigures draws the first FigureCases test cases of a data set with one
// panel per variant (first seed, largest size).
func caseFigures(f *File, d Dataset, grid []*Job, res *results, p *dataset.Prepared, size int, seed uint64, out string) ([]report.CaseImages, error) {
	if f.FigureCases == 0 || p == nil {
		return nil, nil
	}
	var runs []*Job
	for _, v := range f.Variants() {
		if j, rows := res.get(grid, d.Name, v.Variant, size, seed); rows != nil {
			runs = append(runs, j)
		}
	}
	if len(runs) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var cases []report.CaseImages
	s := p.Size()
	for k, ci := range p.Split("test") {
		if k == f.FigureCases {
			break
		}
		img, mask, err := p.Load(ci.ID)
		if err != nil {
			return nil, err
		}
		// The figure shows the first channel and the union of the regions
		// (the foreground of the label map the runs predicted).
		vox := s * s * s
		truth := mask[:vox]
		if len(mask) > vox {
			truth = make([]uint8, vox)
			for i, b := range mask {
				truth[i%vox] |= b
			}
		}
		c := &report.Case{ID: ci.ID, Image: img[:vox], Dims: [3]int{s, s, s}, Spacing: ci.Geometry.PreparedSpacing, Truth: truth}
		for _, j := range runs {
			path := filepath.Join(j.TestDir(), "pred", ci.ID+".nii.gz")
			v, err := volume.Read(path)
			if err != nil {
				return nil, err
			}
			if v.NumVoxels() != s*s*s {
				return nil, errs.Input(path, "has %d voxels, want %d³", v.NumVoxels(), s)
			}
			m := make([]uint8, s*s*s)
			for i, x := range v.Data[:len(m)] {
				if x != 0 {
					m[i] = 1
				}
			}
			c.Runs = append(c.Runs, report.Mask{Name: f.Label(*j), Data: m})
		}
		fig, _, err := report.SliceFigure(c, report.SliceOptions{Views: []report.View{report.Axial, report.Coronal}, Slice: report.AutoSlice, PanelSize: 160})
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", ci.ID, err)
		}
		dst := filepath.Join(out, safeName(ci.ID)+".png")
		if err := report.SavePNG(dst, fig); err != nil {
			return nil, err
		}
		cases = append(cases, report.CaseImages{ID: d.Name + " / " + ci.ID, Images: []report.ImageFile{{
			Title:   fmt.Sprintf("%s %s", d.Name, ci.ID),
			Caption: fmt.Sprintf("Seed %d, %d training cases. True positives bluish green, false positives vermillion, false negatives yellow.", seed, size),
			Path:    dst,
		}}})
	}
	return cases, nil
}

// writeSummary writes results/summary.md: the tables, the comparison and
// the size plot, with captions stating the statistical unit.
func writeSummary(f *File, dir string, perSeed, pooled *report.Table, comp report.ComparisonTable, abl []ablationRow, largest map[string]int, missing, tableWarn []string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", f.Name)
	if f.hasAblation() {
		fmt.Fprintf(&b, "Ablation: every variant against %s (results/ablation.csv has the same with full precision).\n\n", f.referenceLabel())
		if err := writeAblationMarkdown(f, abl, &b); err != nil {
			return err
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Results at the largest training size (%s), mean ± std over %d seed(s); each seed's value is the run's mean over its test cases.\n\n", sizeList(f, largest), len(f.Seeds))
	for _, w := range tableWarn {
		fmt.Fprintf(&b, "> **Warning:** %s\n\n", w)
	}
	if err := perSeed.WriteMarkdown(&b, report.StdDev); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nThe same, mean ± SEM over seeds:\n\n")
	if err := perSeed.WriteMarkdown(&b, report.SEM); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nPooled over test cases (n = seeds × test cases), mean ± std:\n\n")
	if err := pooled.WriteMarkdown(&b, report.StdDev); err != nil {
		return err
	}
	ref := f.referenceLabel()
	fmt.Fprintf(&b, "\nPaired per-case comparison with %s (difference = loss − %s, cases paired by seed and case ID):\n\n", ref, ref)
	for _, w := range comp.SmallSampleWarnings() {
		fmt.Fprintf(&b, "> **Warning:** %s\n\n", w)
	}
	if err := comp.WriteMarkdown(&b); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\n![Dice vs training-set size](figures/size.png)\n")
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\nIncomplete runs left out: %s\n", strings.Join(missing, ", "))
	}
	return atomicio.WriteFile(filepath.Join(dir, "summary.md"), b.Bytes(), 0o644)
}

// saveFigure writes base.png and base.svg at w×h inches.
func saveFigure(d report.Drawable, base string, w, h float64) ([]string, error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, ext := range []string{".png", ".svg"} {
		if err := report.Save(d, vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, base+ext); err != nil {
			return files, err
		}
		files = append(files, base+ext)
	}
	return files, nil
}

func writeWith(path string, fill func(io.Writer) error) error {
	return atomicio.Write(path, 0o644, fill)
}

func csvFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

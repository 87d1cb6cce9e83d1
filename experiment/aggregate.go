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

// ComparisonMetrics are the metrics of the paired comparisons with FESS.
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
// (FESS, Vanilla Dice, SimCLR, InfoNCE), with the pairing for FESS when the
// experiment has several.
func (f *File) Label(v Job) string {
	switch v.Loss {
	case "fess":
		if len(f.Pairings) > 1 {
			return "FESS (" + v.Pairing + ")"
		}
		return "FESS"
	case "dice":
		return "Vanilla Dice"
	case "simclr":
		return "SimCLR"
	case "infonce":
		return "InfoNCE"
	}
	return v.Loss
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
		files, err := saveFigure(fig, filepath.Join(figDir, "size-"+d.Name), 7, 3.6)
		if err != nil {
			return err
		}
		plots = append(plots, report.ImageFile{Title: d.Name + ": Dice vs training-set size",
			Caption: "Mean ± SEM over seeds of each run's mean test Dice.", Path: files[0], Alternates: files[1:]})
	}
	if err := atomicio.WriteFile(filepath.Join(dir, "sizes.csv"), []byte(sizeCSV.String()), 0o644); err != nil {
		return err
	}
	if _, err := saveFigure(&all, filepath.Join(figDir, "size"), 7, 3.2*float64(len(all.Panels))); err != nil {
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
	if err := writeSummary(f, dir, perSeed, pooled, comp, largest, missing, tableWarn); err != nil {
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
		Comparisons: []report.ComparisonSection{{Title: "Paired comparison with FESS",
			Caption: "Per test case, paired by (seed, case ID) at the largest training size: mean of loss − FESS with its 95% t interval, Wilcoxon signed-rank W and two-sided p.",
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
	r := f.Train
	fmt.Fprintf(&b, "Recipe: preset %s, F=%d, %d levels, dropout %g, %d epochs, batch %d, lr %g, %d thread(s) per run.",
		orDefault(r.Preset, "unet3d"), r.Filters, r.Levels, r.Dropout, r.Epochs, r.Batch, r.LR, r.Threads)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\n\n%d run(s) are not complete and are left out: %s.", len(missing), strings.Join(missing, ", "))
	}
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pairedComparisons compares every variant with the first FESS variant.
func pairedComparisons(f *File, grid []*Job, res *results, largest map[string]int) report.ComparisonTable {
	variants := f.Variants()
	ref := -1
	for i, v := range variants {
		if v.Loss == "fess" {
			ref = i
			break
		}
	}
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
			c.Runs = append(c.Runs, report.Mask{Name: f.Label(Job{Loss: j.Loss, Pairing: j.Pairing}), Data: m})
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
func writeSummary(f *File, dir string, perSeed, pooled *report.Table, comp report.ComparisonTable, largest map[string]int, missing, tableWarn []string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", f.Name)
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
	fmt.Fprintf(&b, "\nPaired per-case comparison with FESS (difference = loss − FESS, cases paired by seed and case ID):\n\n")
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

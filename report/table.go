package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/metric"
)

// PaperMetrics are the columns of the FESS paper's results table, in its
// order, as metric names (metric.Names).
var PaperMetrics = []string{"dice", "iou", "precision", "specificity", "sensitivity"}

// metricTitles are the paper's column headings.
var metricTitles = map[string]string{
	"dice":        "DICE coefficient",
	"iou":         "IoU @0.5",
	"precision":   "Precision",
	"specificity": "Specificity",
	"sensitivity": "Sensitivity",
	"hd":          "HD (mm)",
	"hd95":        "HD95 (mm)",
	"assd":        "ASSD (mm)",
}

// MetricTitle returns the display heading of a metric name.
func MetricTitle(name string) string {
	if t, ok := metricTitles[name]; ok {
		return t
	}
	return name
}

// Spread selects the ± term of a table cell.
type Spread int

const (
	// StdDev writes mean ± sample standard deviation.
	StdDev Spread = iota
	// SEM writes mean ± standard error of the mean.
	SEM
)

func (s Spread) String() string {
	if s == SEM {
		return "SEM"
	}
	return "std"
}

// Row is one line of the results table: one loss on one dataset.
type Row struct {
	Dataset string
	Loss    string
	// Metrics maps a metric name (e.g. "dice") to its summary over the test
	// cases (or over runs; the caller decides and says so in the caption).
	Metrics map[string]metric.Summary
}

// Table is the paper's results table: rows grouped by dataset.
type Table struct {
	// Metrics lists the metric columns in order; nil means PaperMetrics.
	Metrics []string
	Rows    []Row
}

func (t *Table) metrics() []string {
	if len(t.Metrics) == 0 {
		return PaperMetrics
	}
	return t.Metrics
}

// FormatCell writes a summary as the paper does: the mean with two decimals,
// then "± spread" with two decimals, or with one significant digit when the
// spread is below 0.005 (the paper's "0.98 ± 0.001"). N = 0 gives "n/a";
// N = 1 (no spread) gives the mean followed by " (n=1)".
func FormatCell(s metric.Summary, sp Spread) string {
	if s.N == 0 || math.IsNaN(s.Mean) {
		return "n/a"
	}
	v := s.Std
	if sp == SEM {
		v = s.SEM
	}
	mean := strconv.FormatFloat(s.Mean, 'f', 2, 64)
	if s.N < 2 || math.IsNaN(v) {
		return mean + " (n=1)"
	}
	return mean + " ± " + formatSpread(v)
}

func formatSpread(v float64) string {
	if v >= 0.005 || v == 0 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	// One significant digit: decimals = position of the first non-zero digit.
	d := int(math.Ceil(-math.Log10(v)))
	if r := math.Round(v*math.Pow(10, float64(d))) / math.Pow(10, float64(d)); r >= math.Pow(10, float64(1-d)) {
		d-- // rounding carried into the previous digit, e.g. 0.00096 -> 0.001
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

// WriteMarkdown writes the table as GitHub Markdown laid out like the paper's
// table: bold dataset name on the first row of each consecutive group of
// rows, then the loss and one "mean ± spread" cell per metric.
func (t *Table) WriteMarkdown(w io.Writer, sp Spread) error {
	ms := t.metrics()
	var b strings.Builder
	b.WriteString("| **Dataset** | **Loss Function** |")
	for _, m := range ms {
		fmt.Fprintf(&b, " **%s** |", MetricTitle(m))
	}
	b.WriteString("\n|---|---|")
	for range ms {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	prev := ""
	for i, r := range t.Rows {
		ds := ""
		if i == 0 || r.Dataset != prev {
			ds = "**" + mdEscape(r.Dataset) + "**"
		}
		prev = r.Dataset
		fmt.Fprintf(&b, "| %s | %s |", ds, mdEscape(r.Loss))
		for _, m := range ms {
			s, ok := r.Metrics[m]
			cell := "n/a"
			if ok {
				cell = FormatCell(s, sp)
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nCells are mean ± %s.\n", map[Spread]string{StdDev: "sample standard deviation (n−1)", SEM: "standard error of the mean (std/√n)"}[sp])
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "\n", " ").Replace(s)
}

// WriteCSV writes one line per row with columns dataset, loss, then for each
// metric M: M_mean, M_std, M_sem, M_n, M_mean_pm_std, M_mean_pm_sem (the
// last two are the formatted cells of the Markdown tables). Numbers use full
// precision; NaN is written as an empty field.
func (t *Table) WriteCSV(w io.Writer) error {
	ms := t.metrics()
	cw := csv.NewWriter(w)
	head := []string{"dataset", "loss"}
	for _, m := range ms {
		head = append(head, m+"_mean", m+"_std", m+"_sem", m+"_n", m+"_mean_pm_std", m+"_mean_pm_sem")
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, r := range t.Rows {
		rec := []string{r.Dataset, r.Loss}
		for _, m := range ms {
			s, ok := r.Metrics[m]
			if !ok {
				rec = append(rec, "", "", "", "0", "n/a", "n/a")
				continue
			}
			rec = append(rec, csvFloat(s.Mean), csvFloat(s.Std), csvFloat(s.SEM), strconv.Itoa(s.N),
				FormatCell(s, StdDev), FormatCell(s, SEM))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// SaveMarkdown writes the Markdown form atomically to path.
func (t *Table) SaveMarkdown(path string, sp Spread) error {
	return atomicio.Write(path, 0o644, func(w io.Writer) error { return t.WriteMarkdown(w, sp) })
}

// SaveCSV writes the CSV form atomically to path.
func (t *Table) SaveCSV(path string) error {
	return atomicio.Write(path, 0o644, t.WriteCSV)
}

// Comparison is one paired test of a loss against a reference loss (FESS) on
// the same test cases of one dataset, for one metric.
type Comparison struct {
	Dataset   string
	Loss      string // the loss compared
	Reference string // the loss it is compared with, e.g. "FESS"
	Metric    string // metric name, e.g. "dice"
	Paired    Paired // differences are Loss − Reference
}

// ComparisonTable lists paired comparisons (item 2(c) of the experiment).
type ComparisonTable []Comparison

// MinPairs is the fewest pairs a paired comparison should rest on; below
// it the interval and the Wilcoxon p-value are flagged as unreliable.
const MinPairs = 5

// SmallSampleWarnings returns one line per compared pair of losses on a
// data set whose test rests on fewer than MinPairs pairs, naming the
// metrics and their n; nil when there are none.
func (ct ComparisonTable) SmallSampleWarnings() []string {
	type key struct{ ds, loss, ref string }
	var order []key
	few := map[key][]string{}
	for _, c := range ct {
		if c.Paired.N >= MinPairs {
			continue
		}
		k := key{c.Dataset, c.Loss, c.Reference}
		if _, ok := few[k]; !ok {
			order = append(order, k)
		}
		few[k] = append(few[k], fmt.Sprintf("%s n = %d", c.Metric, c.Paired.N))
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s, %s vs %s: the paired test rests on fewer than %d pairs (%s); its interval and p-value are unreliable.",
			k.ds, k.loss, k.ref, MinPairs, strings.Join(few[k], ", ")))
	}
	return out
}

// WriteMarkdown writes one line per comparison: n, mean difference
// (loss − reference) with its 95% CI, Wilcoxon W and two-sided p.
func (ct ComparisonTable) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| Dataset | Loss | vs | Metric | n | Mean difference | 95% CI | Wilcoxon W | p | p method |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range ct {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | [%s, %s] | %s | %s | %s |\n",
			mdEscape(c.Dataset), mdEscape(c.Loss), mdEscape(c.Reference), MetricTitle(c.Metric), c.Paired.N,
			fmtSigned(c.Paired.MeanDiff), fmtSigned(c.Paired.CILow), fmtSigned(c.Paired.CIHigh),
			fmtNum(c.Paired.W, 'f', 1), fmtP(c.Paired.P), pMethod(c.Paired))
	}
	b.WriteString("\nDifferences are loss − reference per case; CI from the t distribution; p from the two-sided Wilcoxon signed-rank test (zero differences dropped).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes the comparisons with full-precision numbers.
func (ct ComparisonTable) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"dataset", "loss", "reference", "metric", "n", "dropped", "mean_diff", "ci_low", "ci_high", "wilcoxon_w", "p", "zeros", "exact"}); err != nil {
		return err
	}
	for _, c := range ct {
		p := c.Paired
		if err := cw.Write([]string{c.Dataset, c.Loss, c.Reference, c.Metric, strconv.Itoa(p.N), strconv.Itoa(p.Dropped),
			csvFloat(p.MeanDiff), csvFloat(p.CILow), csvFloat(p.CIHigh), csvFloat(p.W), csvFloat(p.P),
			strconv.Itoa(p.Zeros), strconv.FormatBool(p.Exact)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func pMethod(p Paired) string {
	switch {
	case math.IsNaN(p.P):
		return "n/a"
	case p.Exact:
		return "exact"
	}
	return "normal approx."
}

func fmtNum(v float64, f byte, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, f, prec, 64)
}

func fmtSigned(v float64) string {
	s := fmtNum(v, 'f', 3)
	if s != "n/a" && v >= 0 {
		s = "+" + s
	}
	return s
}

// fmtP writes a p-value with three decimals, or "< 0.001".
func fmtP(p float64) string {
	if math.IsNaN(p) {
		return "n/a"
	}
	if p < 0.001 {
		return "< 0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"strings"
	"testing"

	"github.com/fess-seg/fess/metric"
)

func sum(mean, std float64, n int) metric.Summary {
	return metric.Summary{Mean: mean, Std: std, SEM: std / math.Sqrt(float64(n)), N: n}
}

// paperRows builds the first two rows of the paper's BraTS 2016 block.
func paperRows() *Table {
	return &Table{Rows: []Row{
		{Dataset: "BraTs 2016", Loss: "Our Loss", Metrics: map[string]metric.Summary{
			"dice": sum(0.85, 0.02, 25), "iou": sum(0.75, 0.03, 25), "precision": sum(0.80, 0.02, 25),
			"specificity": sum(0.98, 0.001, 25), "sensitivity": sum(0.91, 0.01, 25)}},
		{Dataset: "BraTs 2016", Loss: "Vanilla Dice", Metrics: map[string]metric.Summary{
			"dice": sum(0.69, 0.01, 25), "iou": sum(0.57, 0.03, 25), "precision": sum(0.70, 0.04, 25),
			"specificity": sum(0.97, 0.003, 25), "sensitivity": sum(0.72, 0.02, 25)}},
		{Dataset: "AbdomenCT-1K", Loss: "Our Loss", Metrics: map[string]metric.Summary{
			"dice": sum(0.63, 0.01, 4)}},
	}}
}

func TestMarkdownLikePaper(t *testing.T) {
	var b bytes.Buffer
	if err := paperRows().WriteMarkdown(&b, StdDev); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	want := []string{
		"| **Dataset** | **Loss Function** | **DICE coefficient** | **IoU @0.5** | **Precision** | **Specificity** | **Sensitivity** |",
		"| **BraTs 2016** | Our Loss | 0.85 ± 0.02 | 0.75 ± 0.03 | 0.80 ± 0.02 | 0.98 ± 0.001 | 0.91 ± 0.01 |",
		"|  | Vanilla Dice | 0.69 ± 0.01 | 0.57 ± 0.03 | 0.70 ± 0.04 | 0.97 ± 0.003 | 0.72 ± 0.02 |",
		"| **AbdomenCT-1K** | Our Loss | 0.63 ± 0.01 | n/a | n/a | n/a | n/a |",
	}
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("markdown lacks line\n%s\ngot:\n%s", w, got)
		}
	}
	b.Reset()
	paperRows().WriteMarkdown(&b, SEM)
	// SEM = 0.02/5 = 0.004 -> one significant digit; 0.01/2 = 0.005 -> 0.01 (two decimals).
	if !strings.Contains(b.String(), "| **BraTs 2016** | Our Loss | 0.85 ± 0.004 |") ||
		!strings.Contains(b.String(), "| **AbdomenCT-1K** | Our Loss | 0.63 ± 0.01 |") {
		t.Errorf("SEM markdown:\n%s", b.String())
	}
}

func TestFormatCell(t *testing.T) {
	cases := []struct {
		s    metric.Summary
		want string
	}{
		{sum(0.8512, 0.0249, 10), "0.85 ± 0.02"},
		{sum(0.98, 0.00096, 10), "0.98 ± 0.001"},
		{sum(0.98, 0.0096, 10), "0.98 ± 0.01"},
		{sum(0.98, 0.00012, 10), "0.98 ± 0.0001"},
		{sum(0.98, 0, 10), "0.98 ± 0.00"},
		{metric.Summary{Mean: 0.7, Std: math.NaN(), SEM: math.NaN(), N: 1}, "0.70 (n=1)"},
		{metric.Summary{Mean: math.NaN(), N: 0}, "n/a"},
	}
	for _, c := range cases {
		if got := FormatCell(c.s, StdDev); got != c.want {
			t.Errorf("FormatCell(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := paperRows().WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || len(recs[0]) != 2+6*5 {
		t.Fatalf("csv shape %d×%d", len(recs), len(recs[0]))
	}
	if recs[0][2] != "dice_mean" || recs[1][2] != "0.85" || recs[1][3] != "0.02" || recs[1][5] != "25" ||
		recs[1][6] != "0.85 ± 0.02" || recs[1][7] != "0.85 ± 0.004" {
		t.Errorf("csv row: %v", recs[1])
	}
	if recs[3][8] != "" || recs[3][11] != "0" || recs[3][12] != "n/a" {
		t.Errorf("missing metric row: %v", recs[3][8:14])
	}
}

func TestComparisonTable(t *testing.T) {
	p, _ := PairedComparison([]float64{0.60, 0.61, 0.62, 0.63, 0.64, 0.65}, []float64{0.70, 0.72, 0.74, 0.76, 0.78, 0.80})
	ct := ComparisonTable{{Dataset: "BraTS", Loss: "Dice", Reference: "FESS", Metric: "dice", Paired: p}}
	var b bytes.Buffer
	if err := ct.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	// All six differences negative: exact two-sided p = 2/64 = 0.03125.
	if !strings.Contains(b.String(), "| BraTS | Dice | FESS | DICE coefficient | 6 | -0.125 | [-0.145, -0.105] |") ||
		!strings.Contains(b.String(), "| 0.0 | 0.031 | exact |") {
		t.Errorf("comparison markdown:\n%s", b.String())
	}
	b.Reset()
	if err := ct.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(&b).ReadAll()
	if len(recs) != 2 || recs[1][10] != "0.03125" || recs[1][12] != "true" {
		t.Errorf("comparison csv: %v", recs)
	}
}

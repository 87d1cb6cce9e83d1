package report

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b))
}

// TestPairedComparisonGolden checks against scipy.stats.wilcoxon and
// scipy.stats.t.interval values written by testdata/paired_golden.py.
func TestPairedComparisonGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/paired_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Scipy string
		Cases []struct {
			Name     string
			A, B     []float64
			MeanDiff float64 `json:"mean_diff"`
			CILow    float64 `json:"ci_low"`
			CIHigh   float64 `json:"ci_high"`
			W, P     float64
			Exact    bool
			Zeros    int
		}
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 10 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	for _, c := range g.Cases {
		r, err := PairedComparison(c.A, c.B)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if r.N != len(c.A) || r.Exact != c.Exact || r.Zeros != c.Zeros {
			t.Errorf("%s: n=%d exact=%v zeros=%d, want n=%d exact=%v zeros=%d",
				c.Name, r.N, r.Exact, r.Zeros, len(c.A), c.Exact, c.Zeros)
		}
		if !near(r.MeanDiff, c.MeanDiff, 1e-12) || !near(r.CILow, c.CILow, 1e-9) || !near(r.CIHigh, c.CIHigh, 1e-9) {
			t.Errorf("%s: mean %v CI [%v, %v], scipy %v [%v, %v]", c.Name, r.MeanDiff, r.CILow, r.CIHigh, c.MeanDiff, c.CILow, c.CIHigh)
		}
		if r.W != c.W || !near(r.P, c.P, 1e-9) {
			t.Errorf("%s: W=%v p=%.12g, scipy %s W=%v p=%.12g", c.Name, r.W, r.P, g.Scipy, c.W, c.P)
		}
	}
}

func TestPairedComparisonEdges(t *testing.T) {
	if _, err := PairedComparison([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("length mismatch accepted")
	}
	r, _ := PairedComparison([]float64{0.5, 0.6, 0.7}, []float64{0.5, 0.6, 0.7})
	if r.MeanDiff != 0 || !math.IsNaN(r.P) || r.Zeros != 3 {
		t.Errorf("all-zero differences: %+v", r)
	}
	r, _ = PairedComparison([]float64{0.9, math.NaN(), 0.7, 0.8}, []float64{0.5, 0.6, 0.6, math.NaN()})
	if r.N != 2 || r.Dropped != 2 || !near(r.MeanDiff, 0.25, 1e-12) {
		t.Errorf("NaN pairs: %+v", r)
	}
	// Exact null distribution of n=4: 16 sign patterns, W+ = 0 in one of
	// them, so the two-sided p of W+ = 0 is 2/16.
	if p := exactSignedRankP(4, 0); p != 0.125 {
		t.Errorf("exact p(n=4, W+=0) = %v, want 0.125", p)
	}
}

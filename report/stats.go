package report

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/fess-seg/fess/metric"
)

// Paired is the result of PairedComparison of two per-case samples a and b.
type Paired struct {
	// N is the number of pairs used (pairs with a NaN on either side are
	// dropped; Dropped counts them).
	N       int `json:"n"`
	Dropped int `json:"dropped,omitempty"`
	// MeanDiff is the mean of d = a − b; CILow and CIHigh bound its 95%
	// confidence interval mean ± t(0.975, N−1)·sd(d)/√N.
	MeanDiff float64 `json:"mean_diff"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	// W is the Wilcoxon signed-rank statistic min(W+, W−) over the non-zero
	// differences (scipy.stats.wilcoxon's two-sided statistic), P its
	// two-sided p-value. Zeros counts differences equal to zero, which are
	// dropped before ranking (scipy's zero_method="wilcox").
	W     float64 `json:"w"`
	P     float64 `json:"p"`
	Zeros int     `json:"zeros"`
	// Exact tells whether P comes from the exact null distribution (no
	// zeros, no ties, at most ExactMaxN non-zero differences) or from the
	// normal approximation with tie and continuity correction.
	Exact bool `json:"exact"`
}

// ExactMaxN is the largest number of non-zero differences for which the
// Wilcoxon p-value is computed exactly (scipy's "auto" threshold, 50).
const ExactMaxN = 50

// PairedComparison compares a[i] with b[i] (e.g. one loss against FESS on the
// same test cases): mean difference of d = a − b with a 95% t confidence
// interval, and the two-sided Wilcoxon signed-rank test of the differences.
//
// Wilcoxon: zeros are dropped, |d| is ranked with average ranks for ties,
// W+ and W− are the rank sums of positive and negative differences, and
// W = min(W+, W−). With n ≤ ExactMaxN non-zero differences, no ties and no
// zeros, p = min(1, 2·min(P(T ≤ W+), P(T ≥ W+))) under the exact null
// distribution of T = Σ ranks of a random sign subset of {1..n} (p = 1 when W+
// is the distribution's centre). Otherwise the normal approximation
// z = (W − μ − ½·sign(W − μ))/σ with μ = n(n+1)/4 and
// σ² = n(n+1)(2n+1)/24 − Σ_ties t(t²−1)/48, p = 2·(1 − Φ(|z|)); this equals
// scipy.stats.wilcoxon(a, b, correction=True, mode="approx").
//
// Undefined quantities are NaN: the CI when N < 2, W and P when every
// difference is zero. It returns an error if the lengths differ.
func PairedComparison(a, b []float64) (Paired, error) {
	if len(a) != len(b) {
		return Paired{}, fmt.Errorf("paired comparison: %d values against %d", len(a), len(b))
	}
	var d []float64
	var r Paired
	for i := range a {
		if !finite(a[i]) || !finite(b[i]) {
			r.Dropped++
			continue
		}
		d = append(d, a[i]-b[i])
	}
	r.N = len(d)
	s := metric.Aggregate(d)
	r.MeanDiff = s.Mean
	r.CILow, r.CIHigh = math.NaN(), math.NaN()
	if r.N >= 2 {
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(r.N - 1)}.Quantile(0.975)
		r.CILow = s.Mean - t*s.SEM
		r.CIHigh = s.Mean + t*s.SEM
	}
	r.W, r.P, r.Zeros, r.Exact = wilcoxon(d)
	return r, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// wilcoxon runs the two-sided signed-rank test on differences d (see
// PairedComparison for the definitions).
func wilcoxon(d []float64) (w, p float64, zeros int, exact bool) {
	type item struct {
		abs float64
		pos bool
	}
	var nz []item
	for _, x := range d {
		if x == 0 {
			zeros++
			continue
		}
		nz = append(nz, item{math.Abs(x), x > 0})
	}
	n := len(nz)
	if n == 0 {
		return math.NaN(), math.NaN(), zeros, false
	}
	sort.Slice(nz, func(i, j int) bool { return nz[i].abs < nz[j].abs })
	// Average ranks for ties; tieTerm accumulates Σ t(t²−1).
	var wPlus, wMinus, tieTerm float64
	ties := false
	for i := 0; i < n; {
		j := i + 1
		for j < n && nz[j].abs == nz[i].abs {
			j++
		}
		rank := float64(i+1+j) / 2 // mean of ranks i+1..j
		if t := float64(j - i); t > 1 {
			ties = true
			tieTerm += t * (t*t - 1)
		}
		for k := i; k < j; k++ {
			if nz[k].pos {
				wPlus += rank
			} else {
				wMinus += rank
			}
		}
		i = j
	}
	w = math.Min(wPlus, wMinus)
	if zeros == 0 && !ties && n <= ExactMaxN {
		return w, exactSignedRankP(n, int(wPlus)), zeros, true
	}
	nf := float64(n)
	mu := nf * (nf + 1) / 4
	varW := nf*(nf+1)*(2*nf+1)/24 - tieTerm/48
	if varW <= 0 {
		return w, math.NaN(), zeros, false
	}
	cc := 0.0
	if w > mu {
		cc = 0.5
	} else if w < mu {
		cc = -0.5
	}
	z := (w - mu - cc) / math.Sqrt(varW)
	p = 2 * distuv.UnitNormal.Survival(math.Abs(z))
	return w, math.Min(p, 1), zeros, false
}

// exactSignedRankP is the two-sided exact p-value of W+ = wPlus for n
// untied non-zero differences. The null distribution counts, for each k, the
// subsets of {1..n} summing to k (a subset-sum dynamic programme); counts
// stay below 2^50 for n ≤ 50 and so are exact in float64.
func exactSignedRankP(n, wPlus int) float64 {
	maxSum := n * (n + 1) / 2
	counts := make([]float64, maxSum+1)
	counts[0] = 1
	for r := 1; r <= n; r++ {
		for k := maxSum; k >= r; k-- {
			counts[k] += counts[k-r]
		}
	}
	total := math.Ldexp(1, n)
	if 2*wPlus == maxSum {
		return 1
	}
	var less, greater float64
	for k := 0; k <= wPlus; k++ {
		less += counts[k]
	}
	for k := wPlus; k <= maxSum; k++ {
		greater += counts[k]
	}
	return math.Min(1, 2*math.Min(less, greater)/total)
}

package metric

import (
	"encoding/json"
	"math"
	"slices"
)

// Summary describes one metric over a set of cases (docs/metrics.md).
type Summary struct {
	// Mean is the arithmetic mean of the non-NaN values.
	Mean float64
	// Std is the sample standard deviation with Bessel's correction,
	// sqrt(Σ(v−mean)² / (N−1)); NaN when N < 2.
	Std float64
	// SEM is the standard error of the mean, Std/√N.
	SEM float64
	// Median is the middle value (mean of the two middle values for even N).
	Median float64
	// N counts the values used (not NaN).
	N int
	// NaNs counts the values left out because they were NaN (0/0 metrics).
	NaNs int
}

// Aggregate summarises per-case values, leaving NaNs out and counting them.
// With no non-NaN value, Mean, Std, SEM and Median are NaN.
func Aggregate(values []float64) Summary {
	var s Summary
	var v []float64
	for _, x := range values {
		if math.IsNaN(x) {
			s.NaNs++
			continue
		}
		v = append(v, x)
	}
	s.N = len(v)
	nan := math.NaN()
	s.Mean, s.Std, s.SEM, s.Median = nan, nan, nan, nan
	if s.N == 0 {
		return s
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	s.Mean = sum / float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range v {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
		s.SEM = s.Std / math.Sqrt(float64(s.N))
	}
	slices.Sort(v)
	if s.N%2 == 1 {
		s.Median = v[s.N/2]
	} else {
		s.Median = (v[s.N/2-1] + v[s.N/2]) / 2
	}
	return s
}

// MarshalJSON writes {"mean","std","sem","median","n","nans"} (the
// summary.json shape of docs/cli.md), with NaN written as null.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Mean   jsonFloat `json:"mean"`
		Std    jsonFloat `json:"std"`
		SEM    jsonFloat `json:"sem"`
		Median jsonFloat `json:"median"`
		N      int       `json:"n"`
		NaNs   int       `json:"nans"`
	}{jsonFloat(s.Mean), jsonFloat(s.Std), jsonFloat(s.SEM), jsonFloat(s.Median), s.N, s.NaNs})
}

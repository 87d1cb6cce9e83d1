package experiment

import (
	"strings"
	"testing"
)

// TestSingleCaseWarnings: a data set whose runs were tested on one case is
// named; one tested on two cases is not.
func TestSingleCaseWarnings(t *testing.T) {
	f := &File{Datasets: []Dataset{{Name: "one"}, {Name: "two"}}}
	a, b, c := &Job{Dataset: "one"}, &Job{Dataset: "one"}, &Job{Dataset: "two"}
	res := &results{rows: map[*Job][]CaseRow{
		a: {{ID: "c1", Region: "wt"}, {ID: "c1", Region: "tc"}},
		b: {{ID: "c1"}},
		c: {{ID: "c1"}, {ID: "c2"}},
	}}
	w := singleCaseWarnings(f, []*Job{a, b, c}, res)
	if len(w) != 1 || !strings.HasPrefix(w[0], "one has a single test case") {
		t.Fatalf("warnings %q", w)
	}
}

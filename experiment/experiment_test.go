package experiment

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

// tinyFile is a whole experiment small enough for CI: 10 synthetic brain
// cases at 16³ (7 train, 1 val, 2 test), FESS and Dice, two training sizes,
// two seeds, one epoch of a 2-level U-Net with 2 filters.
func tinyFile(out string, jobs int) *File {
	f := File{
		Name:       "tiny",
		Out:        out,
		Datasets:   []Dataset{{Name: "brain", Kind: "brain", Cases: 10, SynthSize: 24, Size: 16}},
		Losses:     []string{"fess", "dice"},
		TrainSizes: []int{3, 0},
		Seeds:      []uint64{1, 2},
		Jobs:       jobs,
		Train:      Recipe{Filters: 2, Levels: 2, Epochs: 1, Batch: 2, LR: 1e-3},
	}.Defaults()
	return &f
}

func TestRunEndToEndAndSkip(t *testing.T) {
	out := t.TempDir()
	f := tinyFile(out, 1)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	st, err := Run(f, Options{Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if st.Runs != 8 || st.Trained != 8 || st.Skipped != 0 || st.Resumed != 0 || st.Failed != 0 {
		t.Fatalf("first run stats %+v\n%s", st, log.String())
	}
	for _, p := range []string{
		"experiment.json",
		"results/table.md", "results/table-sem.md", "results/table.csv", "results/table-pooled.csv",
		"results/comparison.md", "results/comparison.csv", "results/sizes.csv", "results/summary.md",
		"results/figures/size.png", "results/figures/size.svg", "results/figures/size-brain.png",
		"results/figures/curves/brain-fess-previous-batch.png", "results/figures/curves/brain-dice.png",
		"report/index.html",
		"runs/brain/fess-previous-batch/n7/s1/test/summary.json", "runs/brain/dice/n7/s1/job.json",
	} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(out, "results/figures/cases/brain"))
	if len(entries) == 0 {
		t.Errorf("no case figures")
	}
	md, _ := os.ReadFile(filepath.Join(out, "results/table.md"))
	if !strings.Contains(string(md), "FESS") || !strings.Contains(string(md), "Vanilla Dice") {
		t.Errorf("table.md lacks the losses:\n%s", md)
	}
	html, _ := os.ReadFile(filepath.Join(out, "report/index.html"))
	if !strings.Contains(string(html), "fess-previous-batch/n7/s1") {
		t.Errorf("report lacks the runs' configurations")
	}

	// The table's Dice cell is the mean over seeds of each run's summary
	// mean at the largest size.
	for _, c := range []struct{ label, dir string }{{"FESS", "fess-previous-batch"}, {"Vanilla Dice", "dice"}} {
		var want float64
		for _, seed := range []string{"s1", "s2"} {
			sum, err := train.ReadSummary(filepath.Join(out, "runs/brain", c.dir, "n7", seed, "test/summary.json"))
			if err != nil {
				t.Fatal(err)
			}
			want += sum.Metrics["dice"].Mean / 2
		}
		got := tableCell(t, filepath.Join(out, "results/table.csv"), c.label, "dice_mean")
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s dice_mean %v, mean of the seeds' summaries %v", c.label, got, want)
		}
		if n := tableCell(t, filepath.Join(out, "results/table.csv"), c.label, "dice_n"); n != 2 {
			t.Errorf("%s dice_n %v, want 2 seeds", c.label, n)
		}
		if n := tableCell(t, filepath.Join(out, "results/table-pooled.csv"), c.label, "dice_n"); n != 4 {
			t.Errorf("%s pooled dice_n %v, want 2 seeds × 2 test cases", c.label, n)
		}
	}

	// A second invocation skips every run and rewrites the results.
	log.Reset()
	st, err = Run(f, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 8 || st.Trained != 0 || st.Resumed != 0 {
		t.Fatalf("second run stats %+v\n%s", st, log.String())
	}
	if !strings.Contains(log.String(), "8 complete (skipped), 0 to run") {
		t.Errorf("log does not say the runs were skipped:\n%s", log.String())
	}

	// A run with a checkpoint but no test summary is resumed (and its
	// training, already complete, is not repeated).
	if err := os.Remove(filepath.Join(out, "runs/brain/dice/n7/s1/test/summary.json")); err != nil {
		t.Fatal(err)
	}
	st, err = Run(f, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 7 || st.Resumed != 1 || st.Trained != 0 {
		t.Fatalf("resume stats %+v", st)
	}
	lines := countLines(t, filepath.Join(out, "runs/brain/dice/n7/s1/log.jsonl"))
	if lines != 1 {
		t.Errorf("log.jsonl has %d epochs after the resume, want 1", lines)
	}

	// Changing the recipe under an existing run folder is an error, not a
	// silent mix of configurations.
	f2 := *f
	f2.Train.Epochs = 2
	_, err = Run(&f2, Options{})
	if err == nil || !strings.Contains(err.Error(), "job.json") {
		t.Fatalf("changed recipe: got %v", err)
	}
	if errs.ExitCode(err) != 2 {
		t.Errorf("changed recipe should be an input error (exit 2), got %v", err)
	}
	if rec, err := Load(filepath.Join(out, "experiment.json")); err != nil || rec.Train.Epochs == 2 {
		t.Errorf("a refused experiment rewrote experiment.json (%v)", err)
	}

	// jobs = 2 trains the same runs to the same results (thread count fixed
	// per run by the file, not by jobs).
	out2 := t.TempDir()
	g := tinyFile(out2, 2)
	st, err = Run(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Trained != 8 {
		t.Fatalf("jobs=2 stats %+v", st)
	}
	for _, dir := range []string{"fess-previous-batch", "dice"} {
		a, _ := os.ReadFile(filepath.Join(out, "runs/brain", dir, "n7/s1/test/metrics.csv"))
		b, _ := os.ReadFile(filepath.Join(out2, "runs/brain", dir, "n7/s1/test/metrics.csv"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: metrics differ between jobs=1 and jobs=2:\n%s\n%s", dir, a, b)
		}
	}
}

func tableCell(t *testing.T, path, loss, col string) float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	k := -1
	for i, h := range recs[0] {
		if h == col {
			k = i
		}
	}
	for _, r := range recs[1:] {
		if r[1] == loss && k >= 0 {
			v, err := strconv.ParseFloat(r[k], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("%s: no row %q or column %q", path, loss, col)
	return 0
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(strings.TrimSpace(string(data)), "\n") + 1
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown key":    `{"datasets":[{"name":"b","kind":"brain","cases":8}],"losses":["dice"],"bogus":1}`,
		"unknown loss":   `{"datasets":[{"name":"b","kind":"brain","cases":8}],"losses":["l2"]}`,
		"no datasets":    `{"losses":["dice"]}`,
		"kind and path":  `{"datasets":[{"name":"b","kind":"brain","cases":8,"path":"/x"}],"losses":["dice"]}`,
		"bad kind":       `{"datasets":[{"name":"b","kind":"liver","cases":8}],"losses":["dice"]}`,
		"bad name":       `{"datasets":[{"name":"a/b","kind":"brain","cases":8}],"losses":["dice"]}`,
		"seed zero":      `{"datasets":[{"name":"b","kind":"brain","cases":8}],"losses":["dice"],"seeds":[0]}`,
		"bad pairing":    `{"datasets":[{"name":"b","kind":"brain","cases":8}],"losses":["fess"],"pairings":["x"]}`,
		"negative epoch": `{"datasets":[{"name":"b","kind":"brain","cases":8}],"losses":["dice"],"train":{"epochs":-1}}`,
		"not json":       `{"datasets":`,
	}
	for name, body := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: want an input error naming the file, got %v", name, err)
		}
	}
}

func TestLoadDefaultsAndPlan(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.json")
	body := `{"name":"x","datasets":[{"name":"abd","kind":"abdomen","cases":10}],"losses":["fess","dice"],
	  "pairings":["previous-batch","same-batch"],"train_sizes":[4,0,4],"seeds":[3,1]}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := f.Datasets[0]
	if f.Out != "x-out" || d.Target != "any" || d.Layout != "abdomenct1k" || d.Size != 64 || f.Train.Threads != 1 || f.Jobs < 1 {
		t.Errorf("defaults: %+v", f)
	}
	var names []string
	for _, v := range f.Variants() {
		names = append(names, v.Variant+"="+f.Label(v))
	}
	if got := strings.Join(names, ","); got != "fess-previous-batch=FESS (previous-batch),fess-same-batch=FESS (same-batch),dice=Vanilla Dice" {
		t.Errorf("variants %s", got)
	}
	sizes, err := f.Sizes("abd", 7)
	if err != nil || len(sizes) != 2 || sizes[0] != 4 || sizes[1] != 7 {
		t.Errorf("sizes %v %v", sizes, err)
	}
	if _, err := f.Sizes("abd", 3); err == nil {
		t.Errorf("size above the training split accepted")
	}
}

package experiment

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

func TestWeightName(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{1e-4, "1e-4"}, {1e-2, "1e-2"}, {0.05, "5e-2"}, {2.5e-3, "2.5e-3"}, {0.1, "0.1"},
		{0.5, "0.5"}, {0.9, "0.9"}, {1, "1"}, {10, "10"}, {1e21, "1e21"}, {1e-10, "1e-10"},
	} {
		if got := WeightName(c.v); got != c.want {
			t.Errorf("WeightName(%g) = %q, want %q", c.v, got, c.want)
		}
		if got := WeightName(c.v); safeName(got) != got {
			t.Errorf("WeightName(%g) = %q is not a safe folder name", c.v, got)
		}
	}
}

// The contrastive_scales, lambdas and compare_to keys: each bad value is
// refused naming the key and the value; good files load.
func TestLoadAblationKeys(t *testing.T) {
	dir := t.TempDir()
	const head = `{"datasets":[{"name":"b","kind":"brain","cases":8}],`
	for _, c := range []struct {
		name, body, want string
	}{
		{"scale zero", `"losses":["fess","dice"],"contrastive_scales":[1e-4,0]`, "contrastive_scales: value 0: want a finite scale > 0"},
		{"scale negative", `"losses":["fess"],"contrastive_scales":[-1]`, "contrastive_scales: value -1"},
		{"lambda zero", `"losses":["fess"],"lambdas":[0,0.5]`, "lambdas: value 0: want a finite λ with 0 < λ ≤ 1"},
		{"lambda above one", `"losses":["fess"],"lambdas":[1.5]`, "lambdas: value 1.5"},
		{"scale twice", `"losses":["fess"],"contrastive_scales":[0.01,1,1e-2]`, "contrastive_scales: value 0.01 appears twice"},
		{"lambda twice", `"losses":["fess"],"lambdas":[0.9,0.9]`, "lambdas: value 0.9 appears twice"},
		{"empty list", `"losses":["fess"],"contrastive_scales":[]`, "contrastive_scales: empty list"},
		{"list and recipe", `"losses":["fess"],"lambdas":[0.5,0.9],"train":{"lambda":0.5}`, "lambdas [0.5 0.9] and train.lambda 0.5"},
		{"scale list and recipe", `"losses":["fess"],"contrastive_scales":[1],"train":{"contrastive_scale":1e-4}`, "contrastive_scales [1] and train.contrastive_scale 0.0001"},
		{"no contrastive loss", `"losses":["dice","bce"],"lambdas":[0.5,0.9]`, "lambdas [0.5 0.9]: no contrastive loss"},
		{"compare_to unknown", `"losses":["fess","dice"],"compare_to":"bce"`, `compare_to "bce": not a loss of the experiment`},
		{"compare_to no fess", `"losses":["dice"],"compare_to":"fess"`, `compare_to "fess"`},
		{"pairing twice", `"losses":["fess"],"pairings":["same-batch","previous-batch","same-batch"]`, `pairings: "same-batch" appears twice`},
		{"not a number", `"losses":["fess"],"lambdas":["0.5"]`, "lambdas"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(head+c.body+"}"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an exit-2 error containing %q, got %v", c.name, c.want, err)
		}
	}
	// NaN and ±Inf cannot be written in JSON but can be set in a File.
	for _, c := range []struct {
		set  func(*File)
		want string
	}{
		{func(f *File) { f.ContrastiveScales = []float64{math.NaN()} }, "contrastive_scales: value NaN"},
		{func(f *File) { f.ContrastiveScales = []float64{math.Inf(1)} }, "contrastive_scales: value +Inf"},
		{func(f *File) { f.Lambdas = []float64{0.5, math.Inf(-1)} }, "lambdas: value -Inf"},
	} {
		f := File{Losses: []string{"fess"}, Datasets: []Dataset{{Name: "b", Kind: "brain", Cases: 8}}}
		c.set(&f)
		f = f.Defaults()
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate gave %v", c.want, err)
		}
		if _, err := Run(&f, Options{}); err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run gave %v", c.want, err)
		}
	}
	for _, body := range []string{
		`"losses":["fess","dice"],"contrastive_scales":[1e-4,1e-2,1],"lambdas":[0.5,1],"compare_to":"dice"`,
		`"losses":["simclr","infonce","dice"],"lambdas":[0.9]`,
		`"losses":["fess","dice"],"pairings":["previous-batch","same-batch"],"compare_to":"fess-same-batch"`,
	} {
		p := filepath.Join(dir, "good.json")
		if err := os.WriteFile(p, []byte(head+body+"}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// Variants: FESS per pairing × scale × λ, SimCLR per scale × λ, Dice once;
// readable distinct names; single-valued axes keep today's names.
func TestAblationVariants(t *testing.T) {
	f := File{Losses: []string{"fess", "dice", "simclr"}, Pairings: []string{"previous-batch", "same-batch"},
		ContrastiveScales: []float64{1e-4, 1e-2, 1}, Lambdas: []float64{0.5, 0.9}}.Defaults()
	vs := f.Variants()
	if len(vs) != 2*3*2+1+3*2 {
		t.Fatalf("%d variants, want 19", len(vs))
	}
	names := map[string]bool{}
	labels := map[string]bool{}
	for _, v := range vs {
		if names[v.Variant] || labels[f.Label(v)] || safeName(v.Variant) != v.Variant {
			t.Errorf("variant %q (label %q) repeated or not a safe folder name", v.Variant, f.Label(v))
		}
		names[v.Variant], labels[f.Label(v)] = true, true
		if v.Loss == "dice" && (v.Scale != 0 || v.Lambda != 0 || v.Variant != "dice") {
			t.Errorf("dice variant %+v", v)
		}
	}
	want := map[string]string{
		"fess-previous-batch-s1e-4-l0.5": "FESS (previous-batch, s=1e-4, λ=0.5)",
		"fess-previous-batch-s1e-2-l0.9": "FESS (previous-batch, s=1e-2, λ=0.9)",
		"fess-same-batch-s1-l0.9":        "FESS (same-batch, s=1, λ=0.9)",
		"simclr-s1e-2-l0.5":              "SimCLR (s=1e-2, λ=0.5)",
		"dice":                           "Vanilla Dice",
	}
	for _, v := range vs {
		if l, ok := want[v.Variant]; ok {
			if f.Label(v) != l {
				t.Errorf("%s: label %q, want %q", v.Variant, f.Label(v), l)
			}
			delete(want, v.Variant)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing variants %v", want)
	}
	if vs[0].Variant != "fess-previous-batch-s1e-4-l0.5" || vs[1].Variant != "fess-previous-batch-s1e-4-l0.9" || vs[12].Variant != "dice" {
		t.Errorf("order: %s, %s, %s", vs[0].Variant, vs[1].Variant, vs[12].Variant)
	}
	if sc, lm, ok := f.weights(vs[3]); !ok || sc != 1e-2 || lm != 0.9 {
		t.Errorf("weights of %s: %g %g %v", vs[3].Variant, sc, lm, ok)
	}
	if _, _, ok := f.weights(vs[12]); ok {
		t.Errorf("dice has contrastive weights")
	}

	// One axis only: only its suffix; one pairing: no pairing in the label.
	g := File{Losses: []string{"fess"}, Lambdas: []float64{0.5, 0.9}}.Defaults()
	var got []string
	for _, v := range g.Variants() {
		got = append(got, v.Variant+"="+g.Label(v))
	}
	if s := strings.Join(got, ","); s != "fess-previous-batch-l0.5=FESS (λ=0.5),fess-previous-batch-l0.9=FESS (λ=0.9)" {
		t.Errorf("λ axis only: %s", s)
	}

	// Single-valued axes: today's names and labels, the value still used.
	for _, h := range []File{
		{Losses: []string{"fess", "dice", "infonce"}},
		{Losses: []string{"fess", "dice", "infonce"}, ContrastiveScales: []float64{1e-2}, Lambdas: []float64{0.9}},
	} {
		h = h.Defaults()
		got = got[:0]
		for _, v := range h.Variants() {
			got = append(got, v.Variant+"="+h.Label(v))
		}
		if s := strings.Join(got, ","); s != "fess-previous-batch=FESS,dice=Vanilla Dice,infonce=InfoNCE" {
			t.Errorf("%v %v: variants %s", h.ContrastiveScales, h.Lambdas, s)
		}
		sc, lm, _ := h.weights(h.Variants()[0])
		if len(h.Lambdas) == 1 && (sc != 1e-2 || lm != 0.9) || len(h.Lambdas) == 0 && (sc != 1e-4 || lm != 0.5) {
			t.Errorf("%v %v: weights %g %g", h.ContrastiveScales, h.Lambdas, sc, lm)
		}
	}
}

// ablationFile is a tiny ablation: FESS at two contrastive scales against
// Dice, the whole training split (7 cases), two seeds (2 test cases each:
// 4 pairs); 8 filters, so that the scales train differently.
func ablationFile(out string) *File {
	f := File{
		Name:              "abl",
		Out:               out,
		Datasets:          []Dataset{{Name: "brain", Kind: "brain", Cases: 10, SynthSize: 24, Size: 16}},
		Losses:            []string{"fess", "dice"},
		ContrastiveScales: []float64{1e-4, 1},
		CompareTo:         "dice",
		TrainSizes:        []int{0},
		Seeds:             []uint64{1, 2},
		Jobs:              2,
		FigureCases:       1,
		Train:             Recipe{Filters: 8, Levels: 2, Epochs: 3, Batch: 2, LR: 1e-2},
	}.Defaults()
	return &f
}

// The grid crosses the weight axes with pairings and seeds but runs Dice
// once per data set × size × seed; each run trains with its variant's
// weights; an experiment without axes keeps its folders.
func TestAblationPlan(t *testing.T) {
	out := t.TempDir()
	f := ablationFile(out)
	f.Pairings = []string{"previous-batch", "same-batch"}
	f.Lambdas = []float64{0.5, 0.9}
	f.TrainSizes = []int{2, 3}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	grid, _, err := Prepare(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 1 data set × 2 sizes × 2 seeds × (2 pairings × 2 scales × 2 λ + dice).
	if len(grid) != 2*2*9 {
		t.Fatalf("%d cells, want 36", len(grid))
	}
	dirs := map[string]bool{}
	dice := 0
	for _, j := range grid {
		if dirs[j.Dir] {
			t.Errorf("folder %s twice", j.Dir)
		}
		dirs[j.Dir] = true
		c := j.Config.Defaults()
		switch j.Loss {
		case "dice":
			dice++
		case "fess":
			if c.Scale != j.Scale || c.Lambda != j.Lambda || c.Pairing != j.Pairing ||
				!strings.Contains(j.Dir, "-s"+WeightName(c.Scale)+"-l"+WeightName(c.Lambda)) {
				t.Errorf("%s trains with scale %g, λ %g, pairing %s", j.Dir, c.Scale, c.Lambda, c.Pairing)
			}
		}
		if rec := j.record(); rec.Recipe.Scale != j.Config.Scale || rec.Recipe.Lambda != j.Config.Lambda {
			t.Errorf("%s: job.json records %+v", j.Dir, rec.Recipe)
		}
	}
	if dice != 2*2 {
		t.Errorf("%d Dice runs, want one per size × seed (4)", dice)
	}
	// The order is dataset, size, seed, then the variants.
	if j := grid[9]; j.TrainSize != 2 || j.Seed != 2 || j.Variant != "fess-previous-batch-s1e-4-l0.5" {
		t.Errorf("cell 9 is %s", j.Dir)
	}

	// Without the axes (or with single values) the folders are today's.
	for _, single := range []bool{false, true} {
		g := *f
		g.Pairings, g.CompareTo = []string{"previous-batch"}, ""
		g.ContrastiveScales, g.Lambdas = nil, nil
		if single {
			g.ContrastiveScales, g.Lambdas = []float64{1e-4}, []float64{0.5}
		}
		grid, err := Plan(&g, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range grid {
			got = append(got, relPath(out, j.Dir))
		}
		want := []string{"runs/brain/fess-previous-batch/n2/s1", "runs/brain/dice/n2/s1", "runs/brain/fess-previous-batch/n2/s2", "runs/brain/dice/n2/s2",
			"runs/brain/fess-previous-batch/n3/s1", "runs/brain/dice/n3/s1", "runs/brain/fess-previous-batch/n3/s2", "runs/brain/dice/n3/s2"}
		if !slices.Equal(got, want) {
			t.Errorf("%v %v: folders %v", g.ContrastiveScales, g.Lambdas, got)
		}
	}
}

// compare_to = dice: every FESS variant is compared with Dice, case by
// case; results/ablation.csv names each row's weights.
func TestAblationCompareToDice(t *testing.T) {
	out := t.TempDir()
	f := ablationFile(out)
	st, err := Run(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 6 || st.Trained != 6 {
		t.Fatalf("stats %+v, want 6 runs (2 FESS scales + Dice) × 2 seeds", st)
	}
	// The run trained with scale 1 records it in job.json and config.json.
	for _, name := range []string{jobFile, "config.json"} {
		var rec struct {
			Scale float64 `json:"contrastive_scale"`
			Train struct {
				Scale float64 `json:"contrastive_scale"`
			} `json:"train"`
		}
		data, err := os.ReadFile(filepath.Join(out, "runs/brain/fess-previous-batch-s1/n7/s2", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Scale+rec.Train.Scale != 1 {
			t.Errorf("%s: contrastive_scale %g / %g, want 1", name, rec.Scale, rec.Train.Scale)
		}
	}

	// The expected Dice differences, from the runs' own metrics.csv.
	diff := func(variant string) (float64, int) {
		sum, n := 0.0, 0
		for _, seed := range []string{"s1", "s2"} {
			a, err := ReadMetricsCSV(filepath.Join(out, "runs/brain", variant, "n7", seed, "test/metrics.csv"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := ReadMetricsCSV(filepath.Join(out, "runs/brain/dice/n7", seed, "test/metrics.csv"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if a[i].ID != b[i].ID {
					t.Fatalf("case order differs")
				}
				sum += a[i].Values["dice"] - b[i].Values["dice"]
				n++
			}
		}
		return sum / float64(n), n
	}
	comp := readCSV(t, filepath.Join(out, "results/comparison.csv"))
	found := map[string]bool{}
	for _, r := range comp[1:] {
		if r[2] != "Vanilla Dice" {
			t.Errorf("comparison against %q, want Vanilla Dice: %v", r[2], r)
		}
		if r[3] != "dice" {
			continue
		}
		variant := map[string]string{"FESS (s=1e-4)": "fess-previous-batch-s1e-4", "FESS (s=1)": "fess-previous-batch-s1"}[r[1]]
		if variant == "" {
			t.Errorf("unexpected row %v", r)
			continue
		}
		found[variant] = true
		want, n := diff(variant)
		got, _ := strconv.ParseFloat(r[6], 64)
		if r[4] != strconv.Itoa(n) && r[5] == "0" || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: n %s, mean_diff %v, want n %d, %v", r[1], r[4], got, n, want)
		}
	}
	if len(found) != 2 {
		t.Errorf("Dice comparisons found for %v, want both FESS scales", found)
	}
	// The recipe must tell the variants apart, or the checks above could
	// not see a run compared with the wrong one.
	d1, _ := diff("fess-previous-batch-s1e-4")
	d2, _ := diff("fess-previous-batch-s1")
	if d1 == 0 || d2 == 0 || d1 == d2 {
		t.Errorf("Dice differences %v and %v: the tiny recipe does not separate FESS at two scales from Dice", d1, d2)
	}

	abl := readCSV(t, filepath.Join(out, "results/ablation.csv"))
	col := map[string]int{}
	for i, h := range abl[0] {
		col[h] = i
	}
	if len(abl) != 4 {
		t.Fatalf("ablation.csv has %d rows, want header + 3 variants", len(abl))
	}
	for _, r := range abl[1:] {
		v := r[col["variant"]]
		switch v {
		case "fess-previous-batch-s1e-4", "fess-previous-batch-s1":
			want, n := diff(v)
			got, _ := strconv.ParseFloat(r[col["dice_diff_mean"]], 64)
			wantScale := map[string]string{"fess-previous-batch-s1e-4": "0.0001", "fess-previous-batch-s1": "1"}[v]
			if r[col["contrastive_scale"]] != wantScale || r[col["lambda"]] != "0.5" || r[col["pairing"]] != "previous-batch" ||
				r[col["reference"]] != "Vanilla Dice" || r[col["n_pairs"]] != strconv.Itoa(n) || math.Abs(got-want) > 1e-12 ||
				r[col["wilcoxon_p"]] == "" || r[col["n_seeds"]] != "2" {
				t.Errorf("ablation row %v (want Δ %v over %d pairs)", r, want, n)
			}
		case "dice":
			if r[col["contrastive_scale"]] != "" || r[col["dice_diff_mean"]] != "" || r[col["reference"]] != "" {
				t.Errorf("reference row %v", r)
			}
		default:
			t.Errorf("unexpected variant %q", v)
		}
	}
	sum, err := os.ReadFile(filepath.Join(out, "results/summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Ablation: every variant against Vanilla Dice", "| Δ Dice vs Vanilla Dice |", "| brain | FESS (s=1) | previous-batch | 1 | 0.5 |",
		"| brain | Vanilla Dice | – | – | – |", "(reference)", "Paired per-case comparison with Vanilla Dice"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, sum)
		}
	}

	// Cell numbering: RunCell N trains the run Plan lists as cell N (the
	// array task N of the Slurm script), in a fresh out folder.
	out2 := t.TempDir()
	g := ablationFile(out2)
	grid, _, err := Prepare(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const cell = 4 // seed 2, FESS scale 1
	if j := grid[cell]; j.Seed != 2 || j.Variant != "fess-previous-batch-s1" {
		t.Fatalf("cell %d is %s", cell, j.Dir)
	}
	if _, err := RunCell(g, cell, Options{}, nil); err != nil {
		t.Fatal(err)
	}
	for i, j := range grid {
		if j.Complete() != (i == cell) {
			t.Errorf("cell %d (%s): complete %v", i, j.Dir, j.Complete())
		}
	}
	a, _ := os.ReadFile(filepath.Join(out, "runs/brain/fess-previous-batch-s1/n7/s2/test/metrics.csv"))
	b, _ := os.ReadFile(filepath.Join(grid[cell].TestDir(), "metrics.csv"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("cell %d's metrics differ from the local run's", cell)
	}
	s := &Slurm{Dir: filepath.Join(out2, "slurm"), Fess: "/bin/fess", Config: "/x.json", Cells: len(grid), Threads: 1, Name: "abl"}
	if err := WriteSlurm(s); err != nil {
		t.Fatal(err)
	}
	if script, _ := os.ReadFile(s.CellsScript()); !strings.Contains(string(script), "#SBATCH --array=0-5\n") {
		t.Errorf("cells.sbatch does not name cells 0-5:\n%s", script)
	}
	if _, err := RunCell(g, len(grid), Options{}, nil); err == nil || errs.ExitCode(err) != 2 {
		t.Errorf("cell %d of %d: %v", len(grid), len(grid), err)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// examples/fess-ablation.json loads and asks for the grid docs/ablation.md
// describes: 2 data sets × 2 sizes × 3 seeds × (12 FESS variants + Dice),
// compared with Dice.
func TestExampleAblationFile(t *testing.T) {
	f, err := Load(filepath.Join("..", "examples", "fess-ablation.json"))
	if err != nil {
		t.Fatal(err)
	}
	vs := f.Variants()
	if n := len(f.Datasets) * len(f.TrainSizes) * len(f.Seeds) * len(vs); n != 156 || len(vs) != 13 {
		t.Errorf("%d variants, %d runs; docs/ablation.md says 13 and 156", len(vs), n)
	}
	if f.CompareTo != "dice" || vs[f.reference()].Variant != "dice" || !slices.Equal(f.ContrastiveScales, []float64{1e-4, 1e-2, 1}) ||
		!slices.Equal(f.Lambdas, []float64{0.5, 0.9}) || !slices.Equal(f.Pairings, []string{"previous-batch", "same-batch"}) {
		t.Errorf("example ablation: %+v", f)
	}
}

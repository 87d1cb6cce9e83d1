package metric

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

type lesionFixture struct {
	Cases []struct {
		Name        string
		Dims        [3]int
		Spacing     [3]float64
		Challenge   string
		Dilation    int
		MinVolume   float64 `json:"min_volume_mm3"`
		Pred, Truth []int   // run lengths, background first
		Expected    struct {
			Dice, HD95          float64
			TP, FN, FP, Lesions int
		}
	}
}

// unRLE expands the run lengths of testdata/gen_lesionwise.py.
func unRLE(t *testing.T, runs []int, n int) []uint8 {
	t.Helper()
	m := make([]uint8, 0, n)
	for k, r := range runs {
		v := uint8(k % 2)
		for range r {
			m = append(m, v)
		}
	}
	if len(m) != n {
		t.Fatalf("run lengths cover %d voxels, want %d", len(m), n)
	}
	return m
}

// TestLesionWiseMatchesScipyOracle checks LesionWise against the values that
// testdata/gen_lesionwise.py computes with scipy.ndimage.
func TestLesionWiseMatchesScipyOracle(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "lesionwise.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx lesionFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) < 10 {
		t.Fatalf("only %d fixture cases", len(fx.Cases))
	}
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			opt, err := LesionOptionsFor(c.Challenge)
			if err != nil {
				t.Fatal(err)
			}
			if opt != (LesionOptions{Dilation: c.Dilation, MinVolumeMM3: c.MinVolume}) {
				t.Fatalf("LesionOptionsFor(%q) = %+v, fixture used dilation %d, volume %g", c.Challenge, opt, c.Dilation, c.MinVolume)
			}
			n := c.Dims[0] * c.Dims[1] * c.Dims[2]
			pred, truth := unRLE(t, c.Pred, n), unRLE(t, c.Truth, n)
			got, err := LesionWise(pred, truth, c.Dims, c.Spacing, opt)
			if err != nil {
				t.Fatal(err)
			}
			e := c.Expected
			if got.TP != e.TP || got.FN != e.FN || got.FP != e.FP || got.Lesions != e.Lesions {
				t.Errorf("counts TP %d FN %d FP %d lesions %d, want %d %d %d %d",
					got.TP, got.FN, got.FP, got.Lesions, e.TP, e.FN, e.FP, e.Lesions)
			}
			if math.Abs(got.Dice-e.Dice) > 1e-9 || math.Abs(got.HD95-e.HD95) > 1e-9 {
				t.Errorf("Dice %.12g HD95 %.12g, want %.12g %.12g", got.Dice, got.HD95, e.Dice, e.HD95)
			}
		})
	}
}

func TestLesionWiseHandComputed(t *testing.T) {
	dims := [3]int{30, 30, 30}
	sp := [3]float64{1, 1, 1}
	gli, _ := LesionOptionsFor("")
	empty := make([]uint8, 30*30*30)
	// Far enough apart that no two merge or match under 3 dilations.
	cube := box(dims, [3]int{5, 5, 5}, [3]int{10, 10, 10}) // 216 mm³
	blob := box(dims, [3]int{22, 22, 22}, [3]int{24, 24, 24})
	tiny := box(dims, [3]int{25, 1, 1}, [3]int{26, 2, 2}) // 8 mm³
	either := func(a, b []uint8) []uint8 {
		m := make([]uint8, len(a))
		for i := range a {
			m[i] = a[i] | b[i]
		}
		return m
	}
	// Two cubes 6 voxels apart along x: two lesions under d = 1, and one
	// under d = 3 (dilated by 3 each, they touch).
	left := box(dims, [3]int{1, 5, 5}, [3]int{5, 9, 9})
	right := box(dims, [3]int{12, 5, 5}, [3]int{16, 9, 9})
	met, _ := LesionOptionsFor("met")
	for _, c := range []struct {
		name        string
		pred, truth []uint8
		opt         LesionOptions
		want        LesionResult
	}{
		{"perfect", cube, cube, gli, LesionResult{Dice: 1, HD95: 0, TP: 1, Lesions: 1}},
		{"only false positive", blob, empty, gli, LesionResult{Dice: 0, HD95: 374, FP: 1}},
		{"only missed", empty, cube, gli, LesionResult{Dice: 0, HD95: 374, FN: 1, Lesions: 1}},
		{"both empty", empty, empty, gli, LesionResult{Dice: 1, HD95: 0}},
		// A perfect lesion plus a far false positive: (1 + 0)/2 and
		// (0 + 374)/2.
		{"perfect plus FP", either(cube, blob), cube, gli, LesionResult{Dice: 0.5, HD95: 187, TP: 1, FP: 1, Lesions: 1}},
		// The tiny lesion is left out under GLI, so its exact prediction
		// is a false positive; under MET (> 2 mm³) it is kept.
		{"tiny left out", either(cube, tiny), either(cube, tiny), gli, LesionResult{Dice: 0.5, HD95: 187, TP: 1, FP: 1, Lesions: 1}},
		{"tiny kept", either(cube, tiny), either(cube, tiny), met, LesionResult{Dice: 1, HD95: 0, TP: 2, Lesions: 2}},
		{"tiny truth only", empty, tiny, gli, LesionResult{Dice: 1, HD95: 0}},
		// Predicting only the left cube: under MET the right one is a
		// missed lesion; under GLI they are one lesion of 250 voxels and
		// the prediction covers half: Dice 2·125/(250+125) = 2/3.
		{"unmerged", left, either(left, right), met, LesionResult{Dice: 0.5, HD95: 187, TP: 1, FN: 1, Lesions: 2}},
		{"merged", left, either(left, right), gli, LesionResult{Dice: 2.0 / 3, HD95: 11, TP: 1, Lesions: 1}},
	} {
		got, err := LesionWise(c.pred, c.truth, dims, sp, c.opt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.TP != c.want.TP || got.FN != c.want.FN || got.FP != c.want.FP || got.Lesions != c.want.Lesions ||
			math.Abs(got.Dice-c.want.Dice) > 1e-12 || math.Abs(got.HD95-c.want.HD95) > 1e-12 {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestLesionWiseMergedHD95 checks the "merged" case's HD95 against Compute's
// definition applied to the lesion and its match. By hand: the left cube's
// 98 surface voxels are common to both (distance 0); the right cube's 98 lie 7 (25
// voxels, face x=12), 8, 9, 10 (16 each) and 11 (25, face x=16) voxels from
// the left cube's face x=5. Of the 196 sorted lesion-to-prediction
// distances, the 95th percentile's virtual index 195·0.95 = 185.25 falls in
// the run of 11s (indices 171..195), so HD95 = 11.
func TestLesionWiseMergedHD95(t *testing.T) {
	dims := [3]int{20, 20, 20}
	left := box(dims, [3]int{1, 5, 5}, [3]int{5, 9, 9})
	both := box(dims, [3]int{12, 5, 5}, [3]int{16, 9, 9})
	for i := range both {
		both[i] |= left[i]
	}
	d, err := SurfaceDistances(left, both, dims, [3]float64{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := math.Max(Percentile(d.PredToTruth, 95), Percentile(d.TruthToPred, 95))
	got, err := LesionWise(left, both, dims, [3]float64{1, 1, 1}, LesionOptions{Dilation: 3, MinVolumeMM3: 50})
	if err != nil {
		t.Fatal(err)
	}
	if got.HD95 != want || want != 11 {
		t.Fatalf("HD95 %v, want %v (Compute's HD95 of the lesion and its match)", got.HD95, want)
	}
}

func TestLesionOptionsFor(t *testing.T) {
	for name, want := range map[string]LesionOptions{
		"": {3, 50}, "GLI": {3, 50}, "gli": {3, 50}, "SSA": {3, 50}, "Ped": {3, 50},
		"MEN": {1, 50}, "met": {1, 2}, "MET": {1, 2},
	} {
		got, err := LesionOptionsFor(name)
		if err != nil || got != want {
			t.Errorf("LesionOptionsFor(%q) = %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, name := range []string{"GOAT", "BraTS-XYZ", "brats"} {
		if _, err := LesionOptionsFor(name); err == nil {
			t.Errorf("LesionOptionsFor(%q): no error", name)
		}
	}
}

func TestLesionWiseRejectsBadInput(t *testing.T) {
	dims := [3]int{4, 4, 4}
	m := make([]uint8, 64)
	sp := [3]float64{1, 1, 1}
	opt := LesionOptions{Dilation: 3, MinVolumeMM3: 50}
	for _, c := range []struct {
		name        string
		pred, truth []uint8
		dims        [3]int
		sp          [3]float64
		opt         LesionOptions
	}{
		{"short prediction", m[:63], m, dims, sp, opt},
		{"short truth", m, m[:10], dims, sp, opt},
		{"zero dim", m, m, [3]int{4, 0, 16}, sp, opt},
		{"negative dim", m, m, [3]int{-4, -4, 4}, sp, opt},
		{"zero spacing", m, m, dims, [3]float64{1, 0, 1}, opt},
		{"NaN spacing", m, m, dims, [3]float64{1, 1, math.NaN()}, opt},
		{"infinite spacing", m, m, dims, [3]float64{math.Inf(1), 1, 1}, opt},
		{"negative dilation", m, m, dims, sp, LesionOptions{Dilation: -1}},
		{"NaN volume", m, m, dims, sp, LesionOptions{Dilation: 1, MinVolumeMM3: math.NaN()}},
		{"negative volume", m, m, dims, sp, LesionOptions{Dilation: 1, MinVolumeMM3: -1}},
	} {
		if _, err := LesionWise(c.pred, c.truth, c.dims, c.sp, c.opt); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// TestLabelAndDilateSmall checks the two building blocks on tiny cases.
func TestLabelAndDilateSmall(t *testing.T) {
	dims := [3]int{5, 5, 5}
	// Corner-touching voxels are one 26-component; a voxel two steps away
	// is another.
	m := vol(dims, [3]int{1, 1, 1}, [3]int{2, 2, 2}, [3]int{4, 4, 4}, [3]int{0, 4, 0})
	lab := make([]int32, len(m))
	if n := label26(m, dims, lab); n != 3 {
		t.Fatalf("label26: %d components, want 3", n)
	}
	at := func(x, y, z int) int32 { return lab[x+5*(y+5*z)] }
	if at(0, 4, 0) != 1 || at(1, 1, 1) != 2 || at(2, 2, 2) != 2 || at(4, 4, 4) != 3 { // numbered in index order of first voxel
		t.Fatalf("label26: labels %d %d %d %d, want 1 2 2 3", at(0, 4, 0), at(1, 1, 1), at(2, 2, 2), at(4, 4, 4))
	}
	// A U shape whose arms join only at the bottom row, labelled in one
	// piece (exercises the union of two provisional labels).
	u := vol(dims, [3]int{0, 0, 0}, [3]int{0, 1, 0}, [3]int{0, 2, 0}, [3]int{4, 0, 0}, [3]int{4, 1, 0},
		[3]int{4, 2, 0}, [3]int{1, 3, 0}, [3]int{2, 3, 0}, [3]int{3, 3, 0})
	if n := label26(u, dims, lab); n != 1 {
		t.Fatalf("label26(U): %d components, want 1", n)
	}
	// One dilation of the centre voxel: the 19 voxels of the element;
	// two: every voxel with |dx|+|dy|+|dz| ≤ 4 (and max |d| ≤ 2).
	c := vol(dims, [3]int{2, 2, 2})
	dst, scratch := make([]uint8, 125), make([]uint8, 125)
	for iters, want := range []int{1, 19} {
		dilate18(c, dims, iters, dst, scratch)
		if got := lwCount(dst); got != want {
			t.Errorf("dilate18 %d times: %d voxels, want %d", iters, got, want)
		}
	}
	dilate18(c, dims, 2, dst, scratch)
	wantN := 0
	for z := range 5 {
		for y := range 5 {
			for x := range 5 {
				in := lwAbs(x-2)+lwAbs(y-2)+lwAbs(z-2) <= 4
				if in {
					wantN++
				}
				if (dst[x+5*(y+5*z)] != 0) != in {
					t.Fatalf("dilate18 twice: voxel (%d,%d,%d) is %d", x, y, z, dst[x+5*(y+5*z)])
				}
			}
		}
	}
	// The 5³ cube minus its 8 corners and the 24 voxels at (±2, ±2, ±1)
	// and permutations (scipy gives 93 too).
	if wantN != 125-8-24 {
		t.Fatalf("expected 93 voxels, got %d", wantN)
	}
	// At the border the dilation is clipped, not wrapped.
	e := vol(dims, [3]int{0, 0, 0})
	dilate18(e, dims, 1, dst, scratch)
	if got := lwCount(dst); got != 7 { // (0,0,0), 3 faces, 3 edges
		t.Errorf("dilate18 at the corner: %d voxels, want 7", got)
	}
}

func lwCount(m []uint8) int {
	n := 0
	for _, v := range m {
		if v != 0 {
			n++
		}
	}
	return n
}

func lwAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestLesionWiseLargeVolume runs a BraTS-sized case (240×240×155) as a
// smoke test of the bounding-box restriction; it must stay quick.
func TestLesionWiseLargeVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dims := [3]int{240, 240, 155}
	truth := sphere(dims, [3]float64{120, 120, 77}, 30)
	pred := sphere(dims, [3]float64{122, 120, 77}, 29)
	small := sphere(dims, [3]float64{40, 40, 40}, 3)
	for i := range pred {
		pred[i] |= small[i]
	}
	got, err := LesionWise(pred, truth, dims, [3]float64{1, 1, 1}, LesionOptions{Dilation: 3, MinVolumeMM3: 50})
	if err != nil {
		t.Fatal(err)
	}
	if got.TP != 1 || got.FP != 1 || got.FN != 0 || got.Lesions != 1 || !(got.Dice > 0.4 && got.Dice < 0.5) {
		t.Fatalf("got %+v", got)
	}
}

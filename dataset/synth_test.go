package dataset

import (
	"math"
	"testing"
)

// bestIntervalDice returns the best Dice any intensity interval [a, b]
// reaches as a segmentation of mask (thresholds v > a are the intervals with
// b = max). Intensities are binned into 256 equal bins, every interval of
// bins is tried.
func bestIntervalDice(img []float32, mask []uint8) (best, lo, hi float64) {
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, v := range img {
		mn = math.Min(mn, float64(v))
		mx = math.Max(mx, float64(v))
	}
	const nb = 256
	var fg, bg [nb]float64
	total := 0.0
	w := (mx - mn) / nb
	for i, v := range img {
		b := min(int((float64(v)-mn)/w), nb-1)
		if mask[i] != 0 {
			fg[b]++
			total++
		} else {
			bg[b]++
		}
	}
	for a := 0; a < nb; a++ {
		tp, fp := 0.0, 0.0
		for b := a; b < nb; b++ {
			tp += fg[b]
			fp += bg[b]
			if d := 2 * tp / (tp + fp + total); d > best {
				best, lo, hi = d, mn+float64(a)*w, mn+float64(b+1)*w
			}
		}
	}
	return best, lo, hi
}

// The whole tumour cannot be found by an intensity window on prepared FLAIR:
// the best window over each whole prepared volume stays below Dice 0.9.
func TestSynthBrainNotThresholdable(t *testing.T) {
	opts := Options{Layout: LayoutBraTS2017}.Defaults()
	n := 8
	if testing.Short() {
		n = 4
	}
	worst := 0.0
	for i := 0; i < n; i++ {
		c := SynthBrain(7, i, 64)
		img, g, err := PreprocessVolume(c.Images["flair"], opts)
		if err != nil {
			t.Fatal(err)
		}
		mask, err := PrepareLabel(c.Label, nil, g)
		if err != nil {
			t.Fatal(err)
		}
		d, lo, hi := bestIntervalDice(img, mask)
		t.Logf("case %d: %d lesions, best FLAIR window [%.2f, %.2f] Dice %.3f", i, len(c.Lesions), lo, hi, d)
		worst = math.Max(worst, d)
		if d >= 0.9 {
			t.Errorf("case %d: intensity window [%.2f, %.2f] reaches Dice %.3f ≥ 0.9", i, lo, hi, d)
		}
	}
	t.Logf("highest best-window Dice %.3f", worst)
}

func TestSynthAbdomenNotThresholdable(t *testing.T) {
	opts := Options{Layout: LayoutAbdomenCT1K}.Defaults()
	for i := 0; i < 4; i++ {
		c := SynthAbdomen(7, i, 64)
		img, g, err := PreprocessVolume(c.Images["ct"], opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"any", "liver", "kidney", "spleen", "pancreas"} {
			labels, _ := TargetLabels(LayoutAbdomenCT1K, target)
			mask, err := PrepareLabel(c.Label, labels, g)
			if err != nil {
				t.Fatal(err)
			}
			d, lo, hi := bestIntervalDice(img, mask)
			t.Logf("case %d %s: best HU window [%.0f, %.0f] Dice %.3f", i, target, lo*500-200, hi*500-200, d)
			if d >= 0.9 {
				t.Errorf("case %d %s: window reaches Dice %.3f ≥ 0.9", i, target, d)
			}
		}
	}
}

// Lesions vary in number, size and position across cases, and every case
// has all four BraTS labels' worth of structure (edema always; 1 or 4).
func TestSynthBrainVariety(t *testing.T) {
	counts := map[int]int{}
	var sizes, xs, elong []float64
	for i := 0; i < 16; i++ {
		c := SynthBrain(3, i, 48)
		counts[len(c.Lesions)]++
		hist := map[float32]int{}
		for _, v := range c.Label.Data {
			hist[v]++
		}
		if hist[2] == 0 || hist[1]+hist[4] == 0 {
			t.Errorf("case %d: label histogram %v lacks edema or core", i, hist)
		}
		for k := range hist {
			if k != 0 && k != 1 && k != 2 && k != 4 {
				t.Errorf("case %d: label value %v not in BraTS set {0,1,2,4}", i, k)
			}
		}
		for _, l := range c.Lesions {
			elong = append(elong, l.Axes[2]/l.Axes[0])
			sizes = append(sizes, float64(l.Voxels))
			xs = append(xs, l.Centre[0], l.Centre[1], l.Centre[2])
		}
	}
	if len(counts) < 2 {
		t.Errorf("lesion counts do not vary: %v", counts)
	}
	minS, maxS := slicesMinMax(sizes)
	if maxS < 3*minS {
		t.Errorf("lesion sizes vary too little: %v..%v voxels", minS, maxS)
	}
	if sd := stddev(xs); sd < 4 {
		t.Errorf("lesion positions vary too little: coordinate std %.2f voxels", sd)
	}
	// Shape: the ratio of the shortest to the longest principal axis
	// ranges from elongated to nearly round.
	minE, maxE := slicesMinMax(elong)
	if minE > 0.6 || maxE < 0.8 {
		t.Errorf("lesion shapes vary too little: axis ratios %.2f..%.2f", minE, maxE)
	}
	t.Logf("lesion counts %v, sizes %v..%v voxels, centre std %.1f, axis ratio %.2f..%.2f",
		counts, minS, maxS, stddev(xs), minE, maxE)
}

func TestSynthDeterministic(t *testing.T) {
	a, b := SynthBrain(5, 2, 32), SynthBrain(5, 2, 32)
	c := SynthBrain(5, 3, 32)
	same, diff := true, false
	for k := range a.Images["t1"].Data {
		same = same && a.Images["t1"].Data[k] == b.Images["t1"].Data[k]
		diff = diff || a.Images["t1"].Data[k] != c.Images["t1"].Data[k]
	}
	if !same || !diff {
		t.Errorf("same seed/case must give the same volume (%v), another case a different one (%v)", same, diff)
	}
	x, y := SynthAbdomen(5, 1, 32), SynthAbdomen(5, 1, 32)
	for k := range x.Label.Data {
		if x.Label.Data[k] != y.Label.Data[k] || x.Images["ct"].Data[k] != y.Images["ct"].Data[k] {
			t.Fatal("abdomen generator is not deterministic")
		}
	}
}

func TestSynthAbdomenOrgans(t *testing.T) {
	for i := 0; i < 4; i++ {
		c := SynthAbdomen(1, i, 48)
		hist := map[float32]int{}
		for _, v := range c.Label.Data {
			hist[v]++
		}
		for l := float32(1); l <= 4; l++ {
			if hist[l] == 0 {
				t.Errorf("case %d: organ label %v missing (%v)", i, l, hist)
			}
		}
		if hist[1] < hist[3] || hist[1] < hist[4] {
			t.Errorf("case %d: liver should be the largest organ: %v", i, hist)
		}
		lo, hi := slicesMinMax32(c.Images["ct"].Data)
		if lo > -900 || hi < 300 || lo < -1024 || hi > 3071 {
			t.Errorf("case %d: HU range [%v, %v] unlike CT", i, lo, hi)
		}
	}
}

func slicesMinMax(x []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return
}

func slicesMinMax32(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	return
}

func stddev(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	s := 0.0
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return math.Sqrt(s / float64(len(x)-1))
}

func TestSymEigen3(t *testing.T) {
	// A rotated diag(9, 4, 1): R diag R^T with R a rotation about z by 30°.
	c, s := math.Cos(math.Pi/6), math.Sin(math.Pi/6)
	a := [3][3]float64{{9*c*c + 4*s*s, (9 - 4) * c * s, 0}, {(9 - 4) * c * s, 9*s*s + 4*c*c, 0}, {0, 0, 1}}
	e := symEigen3(a)
	if math.Abs(e[0]-9) > 1e-9 || math.Abs(e[1]-4) > 1e-9 || math.Abs(e[2]-1) > 1e-9 {
		t.Errorf("eigenvalues %v, want [9 4 1]", e)
	}
	if e := symEigen3([3][3]float64{{2, 0, 0}, {0, 5, 0}, {0, 0, 3}}); e != [3]float64{5, 3, 2} {
		t.Errorf("diagonal: %v", e)
	}
}

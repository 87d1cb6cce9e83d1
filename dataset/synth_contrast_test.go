package dataset

import (
	"sort"
	"testing"
)

// inTumour returns the image values and the region mask over the voxels of
// the whole tumour (label ≠ 0) only, the region being the labels in want.
func inTumour(img []float32, label []float32, want ...float32) ([]float32, []uint8) {
	var v []float32
	var m []uint8
	for k, l := range label {
		if l == 0 {
			continue
		}
		v = append(v, img[k])
		var in uint8
		for _, w := range want {
			if l == w {
				in = 1
			}
		}
		m = append(m, in)
	}
	return v, m
}

// trivialDice is the Dice of calling the whole tumour the region.
func trivialDice(m []uint8) float64 {
	n := 0
	for _, x := range m {
		n += int(x)
	}
	return 2 * float64(n) / float64(n+len(m))
}

func median(x []float32) float64 {
	y := append([]float32(nil), x...)
	sort.Slice(y, func(i, j int) bool { return y[i] < y[j] })
	return float64(y[len(y)/2])
}

// tissueValues returns the values of img where label is l.
func tissueValues(img, label []float32, l float32) []float32 {
	var v []float32
	for k, x := range label {
		if x == l {
			v = append(v, img[k])
		}
	}
	return v
}

// The channels are needed: inside the whole tumour, no FLAIR intensity
// window separates the tumour core (1, 4) or the enhancing tumour (4) from
// edema much better than calling the whole tumour the region, while a T1ce
// window finds the enhancing rim and the necrosis. The core's FLAIR values
// sit where edema's do; T1 shows the tumour darker than white matter.
func TestSynthBrainContrasts(t *testing.T) {
	n := 8
	if testing.Short() {
		n = 4
	}
	var gainTC, gainET float64
	judged := 0
	for i := 0; i < n; i++ {
		c := SynthBrain(7, i, 48)
		lab := c.Label.Data
		fl, t1, t1ce := c.Images["flair"].Data, c.Images["t1"].Data, c.Images["t1ce"].Data
		v, m := inTumour(fl, lab, 1, 4)
		dTC, _, _ := bestIntervalDice(v, m)
		triTC := trivialDice(m)
		v, m = inTumour(fl, lab, 4)
		dET, _, _ := bestIntervalDice(v, m)
		triET := trivialDice(m)
		v, m = inTumour(t1ce, lab, 4)
		ceET, _, _ := bestIntervalDice(v, m)
		v, m = inTumour(t1ce, lab, 1)
		ceNec, _, _ := bestIntervalDice(v, m)
		hasNec := false
		for _, x := range m {
			hasNec = hasNec || x == 1
		}
		if ceET < 0.8 {
			t.Errorf("case %d: T1ce should show the enhancing rim: window Dice %.3f", i, ceET)
		}
		if hasNec && ceNec < 0.7 {
			t.Errorf("case %d: T1ce should show the necrosis dark: window Dice %.3f", i, ceNec)
		}
		edF, coreF := median(tissueValues(fl, lab, 2)), median(append(tissueValues(fl, lab, 1), tissueValues(fl, lab, 4)...))
		t.Logf("case %d: FLAIR TC window %.3f (whole tumour %.3f), ET %.3f (%.3f); T1ce ET %.3f, necrosis %.3f; FLAIR median edema %.0f core %.0f",
			i, dTC, triTC, dET, triET, ceET, ceNec, edF, coreF)
		wm := tissueWM(c)
		wmMed := func(img []float32) float64 { return median(tissueValues(img, wm, 1)) }
		for _, l := range []float32{1, 2, 4} {
			if x := tissueValues(t1, lab, l); len(x) > 0 && median(x) >= wmMed(t1) {
				t.Errorf("case %d: T1 label %v median %.0f not below white matter %.0f", i, l, median(x), wmMed(t1))
			}
		}
		if e := median(tissueValues(t1ce, lab, 4)); e < 1.3*wmMed(t1ce) {
			t.Errorf("case %d: T1ce enhancing median %.0f not bright against white matter %.0f", i, e, wmMed(t1ce))
		}
		for _, mod := range []string{"flair", "t2"} {
			img := c.Images[mod].Data
			if e := median(tissueValues(img, lab, 2)); e < 1.3*wmMed(img) {
				t.Errorf("case %d: %s edema median %.0f not bright against white matter %.0f", i, mod, e, wmMed(img))
			}
		}
		if core := len(tissueValues(fl, lab, 1)) + len(tissueValues(fl, lab, 4)); core < 100 {
			// A handful of voxels always fits some narrow window.
			t.Logf("case %d: core of %d voxels too small to judge windows", i, core)
			continue
		}
		judged++
		gainTC += dTC - triTC
		gainET += dET - triET
		if dTC > triTC+0.2 {
			t.Errorf("case %d: a FLAIR window separates the tumour core (Dice %.3f vs %.3f for the whole tumour)", i, dTC, triTC)
		}
		if dET > triET+0.2 {
			t.Errorf("case %d: a FLAIR window separates the enhancing tumour (Dice %.3f vs %.3f)", i, dET, triET)
		}
		if ceET < dET+0.4 {
			t.Errorf("case %d: T1ce should show the enhancing rim: window Dice %.3f (FLAIR %.3f)", i, ceET, dET)
		}
		if coreF < 0.85*edF || coreF > 1.15*edF {
			t.Errorf("case %d: FLAIR core median %.0f far from edema median %.0f", i, coreF, edF)
		}
	}
	gainTC /= float64(max(judged, 1))
	gainET /= float64(max(judged, 1))
	t.Logf("mean gain of the best FLAIR window over the whole tumour (%d cases): TC %.3f, ET %.3f", judged, gainTC, gainET)
	if gainTC > 0.1 || gainET > 0.1 {
		t.Errorf("FLAIR windows separate core or enhancing tumour on average: Dice gains %.3f, %.3f", gainTC, gainET)
	}
}

// tissueWM returns a mask (1) of the phantom's white matter.
func tissueWM(c *SynthCase) []float32 {
	m := make([]float32, len(c.tissue))
	for k, t := range c.tissue {
		if t == tWM {
			m[k] = 1
		}
	}
	return m
}

// Every tumour has an enhancing rim inside an edema halo; most have a
// necrotic centre.
func TestSynthBrainTumourStructure(t *testing.T) {
	withNec, cases := 0, 24
	for i := 0; i < cases; i++ {
		c := SynthBrain(13, i, 32)
		hist := map[float32]int{}
		for _, v := range c.Label.Data {
			hist[v]++
		}
		if hist[2] == 0 || hist[4] == 0 {
			t.Errorf("case %d: labels %v lack edema or enhancing rim", i, hist)
		}
		if hist[1] > 0 {
			withNec++
		}
	}
	if withNec < cases*2/3 {
		t.Errorf("only %d of %d cases have necrosis", withNec, cases)
	}
}

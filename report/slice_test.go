package report

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// phantom returns a 40×30×20 volume with 1×1×2.5 mm voxels: a smooth
// background, a bright ellipsoidal lesion centred at (25,12,7) as truth, a
// prediction shifted by +3 voxels in x (so TP, FP and FN all occur) and an
// empty prediction.
func phantom() *Case {
	d := [3]int{40, 30, 20}
	n := d[0] * d[1] * d[2]
	c := &Case{ID: "synthetic-001", Dims: d, Spacing: [3]float64{1, 1, 2.5},
		Image: make([]float32, n), Truth: make([]uint8, n)}
	shifted := make([]uint8, n)
	in := func(x, y, z, cx int) bool {
		dx, dy, dz := float64(x-cx)/6, float64(y-12)/5, float64(z-7)/2.5
		return dx*dx+dy*dy+dz*dz <= 1
	}
	for z := 0; z < d[2]; z++ {
		for y := 0; y < d[1]; y++ {
			for x := 0; x < d[0]; x++ {
				i := x + d[0]*(y+d[1]*z)
				c.Image[i] = float32(x+y) / 70
				if in(x, y, z, 25) {
					c.Truth[i] = 1
					c.Image[i] += 2
				}
				if in(x, y, z, 28) {
					shifted[i] = 1
				}
			}
		}
	}
	c.Runs = []Mask{{"FESS (shifted)", shifted}, {"Dice (empty)", make([]uint8, n)}}
	return c
}

func TestCentreSlice(t *testing.T) {
	c := phantom()
	for v, want := range map[View]int{Axial: 7, Coronal: 12, Sagittal: 25} {
		if got := CentreSlice(c.Truth, c.Dims, v); got != want {
			t.Errorf("%s centre slice %d, want %d", v, got, want)
		}
	}
	empty := make([]uint8, len(c.Truth))
	if got := CentreSlice(empty, c.Dims, Axial); got != 10 {
		t.Errorf("empty mask: slice %d, want middle 10", got)
	}
	// A lesion on the last slice stays in range.
	edge := make([]uint8, len(c.Truth))
	edge[len(edge)-1] = 1
	if got := CentreSlice(edge, c.Dims, Axial); got != 19 {
		t.Errorf("edge lesion: slice %d, want 19", got)
	}
}

func TestSliceFigure(t *testing.T) {
	c := phantom()
	img, ch, err := SliceFigure(c, SliceOptions{Views: []View{Axial, Coronal, Sagittal}, Slice: AutoSlice})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 3 || ch[0].Index != 7 || ch[1].Index != 12 || ch[2].Index != 25 {
		t.Fatalf("choices %+v", ch)
	}
	// Aspect ratios follow the physical extents: axial 40×30 mm,
	// coronal 40×50 mm, sagittal 30×50 mm.
	for i, wh := range [][2]float64{{40, 30}, {40, 50}, {30, 50}} {
		r := ch[i].Panels[0]
		if got, want := float64(r.Dx())/float64(r.Dy()), wh[0]/wh[1]; math.Abs(got-want) > 0.01 {
			t.Errorf("%s panel %v: aspect %.3f, want %.3f", ch[i].View, r, got, want)
		}
		if len(ch[i].Panels) != 4 {
			t.Fatalf("%d panels", len(ch[i].Panels))
		}
	}
	// Every voxel of each slice appears in its panels with the right colour.
	counts := map[color.RGBA]int{}
	for _, s := range ch {
		ax, u, w := s.View.axes()
		nu, nw := c.Dims[u], c.Dims[w]
		for vw := 0; vw < nw; vw++ {
			for vu := 0; vu < nu; vu++ {
				var idx [3]int
				idx[ax], idx[u], idx[w] = s.Index, vu, vw
				i := idx[0] + c.Dims[0]*(idx[1]+c.Dims[1]*idx[2])
				at := func(r image.Rectangle) color.RGBA {
					px := r.Min.X + int((float64(vu)+0.5)*float64(r.Dx())/float64(nu))
					py := r.Min.Y + int((float64(nw-1-vw)+0.5)*float64(r.Dy())/float64(nw))
					return img.RGBAAt(px, py)
				}
				if g := at(s.Panels[0]); g.R != g.G || g.G != g.B {
					t.Fatalf("input panel not grey at voxel %v: %v", idx, g)
				}
				truth := c.Truth[i] != 0
				if got := at(s.Panels[1]); truth != (got == ColourTruth) {
					t.Fatalf("%s truth panel voxel %v: %v", s.View, idx, got)
				}
				for r, run := range c.Runs {
					p := run.Data[i] != 0
					want := at(s.Panels[0])
					switch {
					case truth && p:
						want = ColourTP
					case p:
						want = ColourFP
					case truth:
						want = ColourFN
					}
					got := at(s.Panels[2+r])
					if got != want {
						t.Fatalf("%s run %d voxel %v: %v, want %v", s.View, r, idx, got, want)
					}
					counts[got]++
				}
			}
		}
	}
	if counts[ColourTP] == 0 || counts[ColourFP] == 0 || counts[ColourFN] == 0 {
		t.Errorf("overlay classes missing: %v", counts)
	}
	// The input is windowed: its panel spans dark to bright.
	r := ch[0].Panels[0]
	lo, hi := uint8(255), uint8(0)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			g := img.RGBAAt(x, y).R
			lo, hi = min(lo, g), max(hi, g)
		}
	}
	if lo > 10 || hi < 245 {
		t.Errorf("input grey range %d..%d", lo, hi)
	}
	out := filepath.Join(outDir(t), "slices.png")
	if err := SavePNG(out, img); err != nil {
		t.Fatal(err)
	}
	readPNG(t, out)
}

func TestSliceFigureErrors(t *testing.T) {
	c := phantom()
	if _, _, err := SliceFigure(c, SliceOptions{Slice: 20}); err == nil || !strings.Contains(err.Error(), "out of range [0, 19]") {
		t.Errorf("axial slice 20 of 20: %v", err)
	}
	if _, _, err := SliceFigure(c, SliceOptions{Views: []View{Sagittal}, Slice: 39}); err != nil {
		t.Errorf("sagittal slice 39 of 40: %v", err)
	}
	if _, _, err := SliceFigure(c, SliceOptions{Views: []View{Axial, Sagittal}, Slice: 25}); err == nil {
		t.Error("slice 25 accepted for the 20-slice axial view")
	}
	if _, ch, err := SliceFigure(c, SliceOptions{Slice: 0}); err != nil || ch[0].Index != 0 {
		t.Errorf("slice 0: %v %v", ch, err)
	}
	bad := phantom()
	bad.Runs[1].Data = bad.Runs[1].Data[:10]
	if _, _, err := SliceFigure(bad, SliceOptions{Slice: AutoSlice}); err == nil || !strings.Contains(err.Error(), "Dice (empty)") {
		t.Errorf("short prediction: %v", err)
	}
	bad = phantom()
	bad.Spacing[2] = 0
	if _, _, err := SliceFigure(bad, SliceOptions{Slice: AutoSlice}); err == nil {
		t.Error("zero spacing accepted")
	}
	if _, err := ParseView("oblique"); err == nil {
		t.Error("oblique view accepted")
	}
	if v, err := ParseView("Coronal"); err != nil || v != Coronal {
		t.Errorf("ParseView(Coronal) = %v, %v", v, err)
	}
}

// TestOverlayColoursCVD checks that TP, FP and FN stay apart (CIE76 ΔE ≥ 30)
// for normal vision and simulated protanopia, deuteranopia and tritanopia
// (Machado, Oliveira & Fernandes 2009, severity 1.0, linear-RGB matrices).
func TestOverlayColoursCVD(t *testing.T) {
	sims := map[string][3][3]float64{
		"normal": {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}},
		"protan": {{0.152286, 1.052583, -0.204868}, {0.114503, 0.786281, 0.099216}, {-0.003882, -0.048116, 1.051998}},
		"deutan": {{0.367322, 0.860646, -0.227968}, {0.280085, 0.672501, 0.047413}, {-0.011820, 0.042940, 0.968881}},
		"tritan": {{1.255528, -0.076749, -0.178779}, {-0.078411, 0.930809, 0.147602}, {0.004733, 0.691367, 0.303900}},
	}
	cols := []color.RGBA{ColourTP, ColourFP, ColourFN}
	for name, m := range sims {
		var labs [][3]float64
		for _, c := range cols {
			l := [3]float64{linear(c.R), linear(c.G), linear(c.B)}
			var s [3]float64
			for i := 0; i < 3; i++ {
				s[i] = math.Max(0, math.Min(1, m[i][0]*l[0]+m[i][1]*l[1]+m[i][2]*l[2]))
			}
			labs = append(labs, toLab(s))
		}
		for i := 0; i < 3; i++ {
			for j := i + 1; j < 3; j++ {
				d := math.Sqrt(sq(labs[i][0]-labs[j][0]) + sq(labs[i][1]-labs[j][1]) + sq(labs[i][2]-labs[j][2]))
				if d < 30 {
					t.Errorf("%s: colours %d and %d only ΔE %.1f apart", name, i, j, d)
				}
			}
		}
	}
}

func sq(x float64) float64 { return x * x }

func linear(c uint8) float64 {
	v := float64(c) / 255
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

// toLab converts linear sRGB to CIELAB (D65).
func toLab(l [3]float64) [3]float64 {
	X := (0.4124*l[0] + 0.3576*l[1] + 0.1805*l[2]) / 0.9505
	Y := 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
	Z := (0.0193*l[0] + 0.1192*l[1] + 0.9505*l[2]) / 1.089
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return t/(3*sq(6.0/29)) + 4.0/29
	}
	return [3]float64{116*f(Y) - 16, 500 * (f(X) - f(Y)), 200 * (f(Y) - f(Z))}
}

// TestSliceFigureOddImages: constant images and NaN voxels still draw
// (window widened, NaN shown black) instead of failing or panicking.
func TestSliceFigureOddImages(t *testing.T) {
	c := phantom()
	for i := range c.Image {
		c.Image[i] = 3
	}
	c.Image[5] = float32(math.NaN())
	if lo, hi := Window(c.Image); !(hi > lo) {
		t.Errorf("window %v..%v", lo, hi)
	}
	if _, _, err := SliceFigure(c, SliceOptions{Views: []View{Axial}, Slice: 0, PanelSize: 40}); err != nil {
		t.Fatal(err)
	}
	c.Runs = nil
	if img, _, err := SliceFigure(c, SliceOptions{Slice: AutoSlice, PanelSize: 16}); err != nil || img.Bounds().Dx() < 2*16 {
		t.Errorf("no runs: %v", err)
	}
}

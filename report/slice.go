package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"sort"
	"strings"

	xfont "golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"

	"github.com/fess-seg/fess/internal/atomicio"
)

// Overlay colours of the slice figures, from the Okabe–Ito palette. TP, FP
// and FN are the triple of that palette whose smallest pairwise CIE76
// distance stays largest (≈34) under simulated protanopia, deuteranopia and
// tritanopia (Machado et al. 2009, severity 1); TestOverlayColoursCVD checks
// it. Masks are drawn opaque so the panels match the legend exactly; the
// input panel beside them shows the anatomy underneath.
var (
	ColourTP    = color.RGBA{0x00, 0x9E, 0x73, 0xFF} // bluish green: predicted and true
	ColourFP    = color.RGBA{0xD5, 0x5E, 0x00, 0xFF} // vermillion: predicted, not true
	ColourFN    = color.RGBA{0xF0, 0xE4, 0x42, 0xFF} // yellow: true, missed
	ColourTruth = color.RGBA{0x56, 0xB4, 0xE9, 0xFF} // sky blue: ground truth
)

// View is a slicing plane of a volume in voxel axes (x fastest).
type View int

const (
	// Axial: the plane z = k, x to the right, y upward.
	Axial View = iota
	// Coronal: the plane y = k, x to the right, z upward.
	Coronal
	// Sagittal: the plane x = k, y to the right, z upward.
	Sagittal
)

var viewNames = []string{"axial", "coronal", "sagittal"}

func (v View) String() string {
	if v >= 0 && int(v) < len(viewNames) {
		return viewNames[v]
	}
	return fmt.Sprintf("View(%d)", int(v))
}

// ParseView reads "axial", "coronal" or "sagittal".
func ParseView(s string) (View, error) {
	for i, n := range viewNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return View(i), nil
		}
	}
	return 0, fmt.Errorf("unknown view %q (want axial, coronal or sagittal)", s)
}

// axes returns, for a view, the fixed axis and the horizontal (u) and
// vertical (v) in-plane axes.
func (v View) axes() (ax, u, w int) {
	switch v {
	case Coronal:
		return 1, 0, 2
	case Sagittal:
		return 0, 1, 2
	}
	return 2, 0, 1
}

// Mask is one run's predicted mask on the image grid (nonzero = foreground).
type Mask struct {
	Name string
	Data []uint8
}

// Case is the input of SliceFigure: one image with its ground truth and the
// runs' predictions, all on the same grid (x fastest, voxel (x,y,z) at
// x + Dims[0]*(y + Dims[1]*z)).
type Case struct {
	ID      string
	Image   []float32
	Dims    [3]int
	Spacing [3]float64 // mm along x, y, z; used for the panels' aspect ratio
	Truth   []uint8
	Runs    []Mask
}

// AutoSlice asks SliceFigure to pick the slice through the lesion's centre.
const AutoSlice = -1

// SliceOptions configure SliceFigure.
type SliceOptions struct {
	// Views to draw, one row each; empty means axial only.
	Views []View
	// Slice is the index along each view's fixed axis, or AutoSlice.
	Slice int
	// PanelSize is the long side of a panel in pixels (default 256).
	PanelSize int
}

// SliceChoice records the slice drawn for a view and where its panels are
// in the figure: Panels[0] input, [1] truth, [2+i] run i.
type SliceChoice struct {
	View   View
	Index  int
	Panels []image.Rectangle
}

// CentreSlice returns the index along the view's fixed axis through the
// centre of mass of mask (mean voxel coordinate, rounded), or the middle
// slice n/2 when the mask is empty; always within [0, n−1].
func CentreSlice(mask []uint8, dims [3]int, v View) int {
	ax, _, _ := v.axes()
	var sum float64
	var cnt int
	for z := 0; z < dims[2]; z++ {
		for y := 0; y < dims[1]; y++ {
			row := dims[0] * (y + dims[1]*z)
			for x := 0; x < dims[0]; x++ {
				if mask[row+x] != 0 {
					sum += float64([3]int{x, y, z}[ax])
					cnt++
				}
			}
		}
	}
	n := dims[ax]
	if cnt == 0 {
		return n / 2
	}
	k := int(math.Round(sum / float64(cnt)))
	return min(max(k, 0), n-1)
}

// check validates the shapes of a Case.
func (c *Case) check() error {
	nv := c.Dims[0] * c.Dims[1] * c.Dims[2]
	if c.Dims[0] <= 0 || c.Dims[1] <= 0 || c.Dims[2] <= 0 {
		return fmt.Errorf("case %s: bad dimensions %v", c.ID, c.Dims)
	}
	if len(c.Image) != nv {
		return fmt.Errorf("case %s: image has %d voxels, dimensions %v need %d", c.ID, len(c.Image), c.Dims, nv)
	}
	if len(c.Truth) != nv {
		return fmt.Errorf("case %s: truth mask has %d voxels, image has %d", c.ID, len(c.Truth), nv)
	}
	for _, r := range c.Runs {
		if len(r.Data) != nv {
			return fmt.Errorf("case %s: prediction of %s has %d voxels, image has %d", c.ID, r.Name, len(r.Data), nv)
		}
	}
	for i, s := range c.Spacing {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("case %s: bad spacing %v along axis %d", c.ID, s, i)
		}
	}
	return nil
}

// Window returns the 1st and 99th percentiles of the finite values of img
// (nearest-rank), the grey window of the input panels; hi > lo always.
func Window(img []float32) (lo, hi float32) {
	v := make([]float32, 0, len(img))
	for _, x := range img {
		if !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, 1
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	at := func(p float64) float32 { return v[int(math.Round(p*float64(len(v)-1)))] }
	lo, hi = at(0.01), at(0.99)
	if !(hi > lo) {
		lo, hi = v[0], v[len(v)-1]
		if !(hi > lo) {
			hi = lo + 1
		}
	}
	return lo, hi
}

// SliceFigure draws one row per view of panels: the input slice in grey
// (windowed to the volume's 1–99th percentiles), the ground truth over it,
// and one panel per run with TP, FP and FN voxels coloured (ColourTP,
// ColourFP, ColourFN); titles above the panels and a legend below. Each
// pixel shows the nearest voxel; a panel's width:height ratio is the
// slice's physical extent (n·spacing) so anisotropic voxels look right.
// It returns the slices drawn. An opt.Slice outside a view's range
// [0, n−1] or mismatched shapes are errors.
func SliceFigure(c *Case, opt SliceOptions) (*image.RGBA, []SliceChoice, error) {
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	views := opt.Views
	if len(views) == 0 {
		views = []View{Axial}
	}
	size := opt.PanelSize
	if size <= 0 {
		size = 256
	}
	var choices []SliceChoice
	for _, v := range views {
		if v < Axial || v > Sagittal {
			return nil, nil, fmt.Errorf("unknown view %d", int(v))
		}
		ax, _, _ := v.axes()
		k := opt.Slice
		if k == AutoSlice {
			k = CentreSlice(c.Truth, c.Dims, v)
		} else if k < 0 || k >= c.Dims[ax] {
			return nil, nil, fmt.Errorf("case %s: %s slice %d out of range [0, %d]", c.ID, v, k, c.Dims[ax]-1)
		}
		choices = append(choices, SliceChoice{View: v, Index: k})
	}
	lo, hi := Window(c.Image)

	// Panel sizes in pixels for each view, from the physical extents.
	type geom struct{ pw, ph int }
	geoms := make([]geom, len(views))
	colW := 0
	for i, v := range views {
		_, u, w := v.axes()
		W := float64(c.Dims[u]) * c.Spacing[u]
		H := float64(c.Dims[w]) * c.Spacing[w]
		s := float64(size) / math.Max(W, H)
		geoms[i] = geom{max(1, int(math.Round(W*s))), max(1, int(math.Round(H*s)))}
		colW = max(colW, geoms[i].pw)
	}

	txt := newTextDrawer(13)
	const pad = 10
	titleH := txt.lineHeight + 4
	ncol := 2 + len(c.Runs)
	figW := pad + ncol*(colW+pad)
	headH := 0
	if c.ID != "" {
		headH = txt.lineHeight + 6
	}
	rowsH := 0
	for _, g := range geoms {
		rowsH += titleH + g.ph + pad
	}
	legendH := txt.lineHeight + 2*pad
	figH := pad + headH + rowsH + legendH
	img := image.NewRGBA(image.Rect(0, 0, figW, figH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if c.ID != "" {
		txt.draw(img, pad, pad+txt.ascent, "case "+c.ID, color.Black)
	}

	y0 := pad + headH
	for i, ch := range choices {
		g := geoms[i]
		ax, _, _ := ch.View.axes()
		titles := []string{fmt.Sprintf("%s %c=%d", ch.View, "xyz"[ax], ch.Index), "ground truth"}
		for _, r := range c.Runs {
			titles = append(titles, r.Name)
		}
		for col := 0; col < ncol; col++ {
			x0 := pad + col*(colW+pad) + (colW-g.pw)/2
			txt.draw(img, pad+col*(colW+pad), y0+txt.ascent, txt.fit(titles[col], colW), color.Black)
			var pred []uint8
			switch {
			case col == 1:
				pred = c.Truth
			case col >= 2:
				pred = c.Runs[col-2].Data
			}
			c.drawPanel(img, image.Pt(x0, y0+titleH), g.pw, g.ph, ch, lo, hi, col, pred)
			choices[i].Panels = append(choices[i].Panels, image.Rect(x0, y0+titleH, x0+g.pw, y0+titleH+g.ph))
		}
		y0 += titleH + g.ph + pad
	}

	// Legend: swatches with labels along the bottom.
	lx, ly := pad, y0+pad
	for _, e := range []struct {
		c     color.RGBA
		label string
	}{{ColourTruth, "ground truth"}, {ColourTP, "TP (correct)"}, {ColourFP, "FP (false alarm)"}, {ColourFN, "FN (missed)"}} {
		sw := txt.lineHeight - 2
		draw.Draw(img, image.Rect(lx, ly, lx+sw, ly+sw), image.NewUniform(e.c), image.Point{}, draw.Src)
		lx += sw + 5
		lx = txt.draw(img, lx, ly+txt.ascent-1, e.label, color.Black) + 16
	}
	return img, choices, nil
}

// drawPanel paints one panel of pw×ph pixels at p0. col 0 is the input,
// col 1 the truth overlay, col ≥ 2 a run's TP/FP/FN overlay of pred.
func (c *Case) drawPanel(img *image.RGBA, p0 image.Point, pw, ph int, ch SliceChoice, lo, hi float32, col int, pred []uint8) {
	ax, u, w := ch.View.axes()
	nu, nw := c.Dims[u], c.Dims[w]
	scale := 255 / float64(hi-lo)
	for py := 0; py < ph; py++ {
		// Row 0 is the top of the panel: the highest index along w.
		vw := nw - 1 - min(nw-1, int((float64(py)+0.5)*float64(nw)/float64(ph)))
		for px := 0; px < pw; px++ {
			vu := min(nu-1, int((float64(px)+0.5)*float64(nu)/float64(pw)))
			var idx [3]int
			idx[ax], idx[u], idx[w] = ch.Index, vu, vw
			i := idx[0] + c.Dims[0]*(idx[1]+c.Dims[1]*idx[2])
			g := (float64(c.Image[i]) - float64(lo)) * scale
			if math.IsNaN(g) {
				g = 0
			}
			gv := uint8(math.Max(0, math.Min(255, math.Round(g))))
			out := color.RGBA{gv, gv, gv, 0xFF}
			switch {
			case col == 1 && c.Truth[i] != 0:
				out = ColourTruth
			case col >= 2:
				t, p := c.Truth[i] != 0, pred[i] != 0
				switch {
				case t && p:
					out = ColourTP
				case p:
					out = ColourFP
				case t:
					out = ColourFN
				}
			}
			img.SetRGBA(p0.X+px, p0.Y+py, out)
		}
	}
}

// textDrawer renders labels with gonum/plot's default font (Liberation).
type textDrawer struct {
	face       xfont.Face
	ascent     int
	lineHeight int
}

func newTextDrawer(px float64) *textDrawer {
	f := plot.DefaultFont
	f.Variant = "Sans"
	fc := font.DefaultCache.Lookup(f, font.Length(px))
	face := fc.FontFace(72) // 72 dpi: one point is one pixel
	m := face.Metrics()
	return &textDrawer{face: face, ascent: m.Ascent.Ceil(), lineHeight: (m.Ascent + m.Descent).Ceil()}
}

// draw writes s with its baseline at (x, y) and returns the x after it.
func (t *textDrawer) draw(img draw.Image, x, y int, s string, c color.Color) int {
	d := &xfont.Drawer{Dst: img, Src: image.NewUniform(c), Face: t.face, Dot: fixed.P(x, y)}
	d.DrawString(s)
	return d.Dot.X.Ceil()
}

// fit shortens s with an ellipsis until it is at most w pixels wide.
func (t *textDrawer) fit(s string, w int) string {
	if xfont.MeasureString(t.face, s).Ceil() <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 1 {
		r = r[:len(r)-1]
		if c := string(r) + "…"; xfont.MeasureString(t.face, c).Ceil() <= w {
			return c
		}
	}
	return s[:0]
}

// SavePNG writes img as PNG atomically.
func SavePNG(path string, img image.Image) error {
	return atomicio.Write(path, 0o644, func(w io.Writer) error { return png.Encode(w, img) })
}

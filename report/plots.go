package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/metric"
)

// OkabeIto is the Okabe–Ito colour-blind-safe palette (black omitted),
// in the order series are coloured: orange, sky blue, bluish green, yellow,
// blue, vermillion, reddish purple.
var OkabeIto = []color.RGBA{
	{0xE6, 0x9F, 0x00, 0xFF}, // orange
	{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	{0xF0, 0xE4, 0x42, 0xFF}, // yellow
	{0x00, 0x72, 0xB2, 0xFF}, // blue
	{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
}

// seriesColour returns the i-th series colour. Series are coloured from
// blue, vermillion and bluish green first: those stay apart under every
// common colour-vision deficiency and are visible on white.
func seriesColour(i int) color.RGBA {
	order := []int{4, 5, 2, 0, 6, 1, 3}
	return OkabeIto[order[i%len(order)]]
}

// glyphs give each series a distinct marker shape as well as a colour.
var glyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{},
	draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}}

// Drawable is anything that draws itself on a canvas: *plot.Plot, *Figure.
type Drawable interface{ Draw(draw.Canvas) }

// Figure is one or more plots stacked vertically with aligned axes, each
// with its legend drawn in a column to the right of the plotting area, so a
// legend never hides data.
type Figure struct {
	Panels  []*plot.Plot
	Legends []plot.Legend // Legends[i] belongs to Panels[i]; may be shorter
}

// add appends a panel with its legend.
func (f *Figure) add(p *plot.Plot, l plot.Legend) {
	f.Panels = append(f.Panels, p)
	f.Legends = append(f.Legends, l)
}

// Draw lays the panels out on c.
func (f *Figure) Draw(c draw.Canvas) {
	var legendW vg.Length
	for i := range f.Legends {
		l := &f.Legends[i]
		if w := l.Rectangle(c).Size().X; w > legendW {
			legendW = w
		}
	}
	if legendW > 0 {
		legendW += vg.Points(12)
	}
	area := c
	area.Max.X -= legendW
	rows := make([][]*plot.Plot, len(f.Panels))
	for i, p := range f.Panels {
		rows[i] = []*plot.Plot{p}
	}
	t := draw.Tiles{Rows: len(f.Panels), Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(4),
		PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(10)}
	canv := plot.Align(rows, t, area)
	for i, p := range f.Panels {
		p.Draw(canv[i][0])
		if i < len(f.Legends) {
			l := f.Legends[i]
			l.Top, l.Left = true, true
			lc := c
			lc.Min.X = area.Max.X
			lc.Max.Y = canv[i][0].Max.Y - vg.Points(24) // below the panel title
			l.Draw(lc)
		}
	}
}

// Save renders d at w×h into path, in the format named by its extension
// (.png, .svg, .pdf, .eps, .jpg, .tif), atomically. Raster formats use
// gonum/plot's default resolution (vgimg.DefaultDPI).
func Save(d Drawable, w, h vg.Length, path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d.Draw(draw.New(c))
	return atomicio.Write(path, 0o644, func(wr io.Writer) error {
		_, err := c.WriteTo(wr)
		return err
	})
}

// SizePoint is the metric at one training-set size.
type SizePoint struct {
	TrainImages int
	Value       metric.Summary
}

// SizeSeries is one loss's curve over training-set sizes.
type SizeSeries struct {
	Loss   string
	Points []SizePoint
}

// SizePlot draws the paper's "mean and standard error across varied sample
// sizes" figure: for each loss a line through the means (sorted by training
// size) with markers, and a translucent band from mean − SEM to mean + SEM.
// Points with N = 0 are skipped; a point with N = 1 has no band width.
// yLabel names the metric ("Dice" if empty).
func SizePlot(series []SizeSeries, title, yLabel string) (*Figure, error) {
	if yLabel == "" {
		yLabel = "Dice"
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "training images"
	p.Y.Label.Text = yLabel + " (mean ± SEM)"
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.Padding = vg.Points(3)
	var xs []float64
	for i, s := range series {
		pts := append([]SizePoint(nil), s.Points...)
		sort.Slice(pts, func(a, b int) bool { return pts[a].TrainImages < pts[b].TrainImages })
		var mid, lo, hi plotter.XYs
		for _, pt := range pts {
			if pt.Value.N == 0 || math.IsNaN(pt.Value.Mean) {
				continue
			}
			sem := pt.Value.SEM
			if math.IsNaN(sem) {
				sem = 0
			}
			x := float64(pt.TrainImages)
			xs = append(xs, x)
			mid = append(mid, plotter.XY{X: x, Y: pt.Value.Mean})
			lo = append(lo, plotter.XY{X: x, Y: pt.Value.Mean - sem})
			hi = append(hi, plotter.XY{X: x, Y: pt.Value.Mean + sem})
		}
		if len(mid) == 0 {
			continue
		}
		col := seriesColour(i)
		band := append(plotter.XYs(nil), hi...)
		for j := len(lo) - 1; j >= 0; j-- {
			band = append(band, lo[j])
		}
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return nil, err
		}
		poly.Color = color.NRGBA{col.R, col.G, col.B, 0x40}
		poly.LineStyle.Width = 0
		line, sc, err := plotter.NewLinePoints(mid)
		if err != nil {
			return nil, err
		}
		line.Color = col
		line.Width = vg.Points(1.5)
		sc.Color = col
		sc.Shape = glyphs[i%len(glyphs)]
		sc.Radius = vg.Points(3)
		p.Add(poly, line, sc)
		leg.Add(s.Loss, line, sc)
	}
	if len(xs) > 0 {
		sort.Float64s(xs)
		var ticks []plot.Tick
		for j, x := range xs {
			if j == 0 || x != xs[j-1] {
				ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprint(x)})
			}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		// Keep end markers off the frame: 4% margin on both sides.
		m := 0.04 * math.Max(xs[len(xs)-1]-xs[0], 1)
		p.X.Min, p.X.Max = xs[0]-m, xs[len(xs)-1]+m
	}
	f := &Figure{}
	f.add(p, leg)
	return f, nil
}

// RunLog is a run's training log: RUN/log.jsonl, one JSON object per epoch
// (e.g. {"epoch":1,"loss":…,"dice_loss":…,"con_loss":…,"train_dice":…,
// "val_dice":…,"val_loss":…,"seconds":…}). Only numeric fields are kept;
// others are ignored, and a key may be absent on some epochs (validation).
type RunLog struct {
	Path    string
	Records []map[string]float64
	// Keys lists every numeric key in order of first appearance.
	Keys []string
}

// ReadRunLog reads a log.jsonl file. Blank lines are skipped; a line that is
// not a JSON object is an errs.Input naming the file and line. Records
// without "epoch" get their 1-based line position as epoch.
func ReadRunLog(path string) (*RunLog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.WrapInput(path, err, "cannot read training log")
	}
	lg := &RunLog{Path: path}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(text), &obj); err != nil {
			return nil, errs.Input(path, "line %d is not a JSON object: %v", line, err)
		}
		rec := map[string]float64{}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic order within one line
		for _, k := range keys {
			if v, ok := obj[k].(float64); ok {
				rec[k] = v
				if !seen[k] {
					seen[k] = true
					lg.Keys = append(lg.Keys, k)
				}
			}
		}
		if _, ok := rec["epoch"]; !ok {
			rec["epoch"] = float64(len(lg.Records) + 1)
		}
		lg.Records = append(lg.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, errs.WrapInput(path, err, "cannot read training log")
	}
	if len(lg.Records) == 0 {
		return nil, errs.Input(path, "training log has no records")
	}
	return lg, nil
}

// series returns the (epoch, key) points of the records that have key and a
// finite value.
func (lg *RunLog) series(key string) plotter.XYs {
	var xy plotter.XYs
	for _, r := range lg.Records {
		v, ok := r[key]
		if ok && finite(v) {
			xy = append(xy, plotter.XY{X: r["epoch"], Y: v})
		}
	}
	return xy
}

// CurvePlot draws a run's training curves as small multiples sharing the
// epoch axis: one panel per numeric key whose name contains "loss" (loss,
// dice_loss, con_loss, val_loss, …), each on its own y scale, so a term
// near 5 does not flatten one near 0.9; then one panel of the Dice keys
// (val_dice, plus train_dice when logged) on [0, 1]. A loss panel uses a
// logarithmic axis when its values are all positive and span more than two
// decades. Series keep their colours and markers across panels. It fails if
// the log has neither losses nor Dice values.
func CurvePlot(lg *RunLog, title string) (*Figure, error) {
	var lossKeys, diceKeys []string
	for _, k := range lg.Keys {
		switch {
		case strings.Contains(k, "loss"):
			lossKeys = append(lossKeys, k)
		case k == "val_dice" || k == "train_dice":
			diceKeys = append(diceKeys, k)
		}
	}
	if len(lossKeys) == 0 && len(diceKeys) == 0 {
		return nil, errs.Input(lg.Path, "training log has no loss or Dice values")
	}
	f := &Figure{}
	nextTitle := func() string {
		if len(f.Panels) == 0 {
			return title
		}
		return ""
	}
	for i, k := range lossKeys {
		if len(lg.series(k)) == 0 {
			continue
		}
		p, l, err := curvePanel(lg, []string{k}, i, nextTitle(), k)
		if err != nil {
			return nil, err
		}
		f.add(p, l)
	}
	if len(diceKeys) > 0 {
		p, l, err := curvePanel(lg, diceKeys, len(lossKeys), nextTitle(), "Dice")
		if err != nil {
			return nil, err
		}
		p.Y.Min, p.Y.Max = 0, 1
		f.add(p, l)
	}
	// The epoch label once, under the bottom panel.
	for _, p := range f.Panels[:len(f.Panels)-1] {
		p.X.Label.Text = ""
	}
	return f, nil
}

// distinctTicks is plot.DefaultTicks with labels printed with as many
// decimals as it takes to tell them apart (a narrow axis such as 4.75–4.9
// would otherwise read 4.8, 4.8, 4.8).
type distinctTicks struct{}

func (distinctTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for d := 0; d <= 8; d++ {
		seen := map[string]bool{}
		ok := true
		for _, t := range ts {
			if t.Label == "" {
				continue
			}
			l := strconv.FormatFloat(t.Value, 'f', d, 64)
			if seen[l] || math.Abs(mustFloat(l)-t.Value) > 1e-9*math.Max(1, math.Abs(t.Value)) {
				ok = false
				break
			}
			seen[l] = true
		}
		if ok {
			for i := range ts {
				if ts[i].Label != "" {
					ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', d, 64)
				}
			}
			break
		}
	}
	return ts
}

func mustFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// curvePanel draws keys in one panel; series i is coloured and marked as
// the figure's series first+i.
func curvePanel(lg *RunLog, keys []string, first int, title, ylabel string) (*plot.Plot, plot.Legend, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.Padding = vg.Points(3)
	lo, hi := math.Inf(1), math.Inf(-1)
	for j, k := range keys {
		i := first + j
		xy := lg.series(k)
		if len(xy) == 0 {
			continue
		}
		for _, q := range xy {
			lo, hi = math.Min(lo, q.Y), math.Max(hi, q.Y)
		}
		line, sc, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, leg, err
		}
		col := seriesColour(i)
		line.Color, sc.Color = col, col
		line.Width = vg.Points(1.5)
		sc.Shape = glyphs[i%len(glyphs)]
		sc.Radius = vg.Points(2)
		if len(xy) > 60 {
			sc.Radius = 0
		}
		p.Add(line, sc)
		leg.Add(k, line, sc)
	}
	if ylabel != "Dice" && lo > 0 && hi/lo > 100 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Tick.Marker = distinctTicks{}
	}
	return p, leg, nil
}

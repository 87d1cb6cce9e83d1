package report

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/metric"
)

// outDir returns $REPORT_TEST_OUT (to keep test figures for a look) or a
// fresh temporary directory.
func outDir(t *testing.T) string {
	if d := os.Getenv("REPORT_TEST_OUT"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.TempDir()
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// countColour counts pixels within ±tol per channel of c.
func countColour(img image.Image, c color.RGBA, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-int(c.R)) <= tol && abs(int(g>>8)-int(c.G)) <= tol && abs(int(bb>>8)-int(c.B)) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// sampleSeries is a Dice-versus-size study with per-point SEMs.
func sampleSeries() []SizeSeries {
	var out []SizeSeries
	for li, loss := range []string{"FESS", "Vanilla Dice", "SimCLR", "InfoNCE"} {
		s := SizeSeries{Loss: loss}
		for _, n := range []int{10, 25, 50, 100} {
			m := 0.5 + 0.3*(1-math.Exp(-float64(n)/30)) - 0.03*float64(li)
			s.Points = append(s.Points, SizePoint{TrainImages: n, Value: metric.Summary{Mean: m, Std: 0.05, SEM: 0.05 / math.Sqrt(5), N: 5}})
		}
		out = append(out, s)
	}
	return out
}

func TestSizePlot(t *testing.T) {
	dir := outDir(t)
	p, err := SizePlot(sampleSeries(), "Dice vs training size", "")
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "size.png")
	svg := filepath.Join(dir, "size.svg")
	for _, f := range []string{png, svg} {
		if err := Save(p, 6*vg.Inch, 4*vg.Inch, f); err != nil {
			t.Fatal(err)
		}
	}
	img := readPNG(t, png)
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 {
		t.Errorf("png size %v", b)
	}
	// Each of the four series' line colours must appear.
	for i := 0; i < 4; i++ {
		if n := countColour(img, seriesColour(i), 8); n < 50 {
			t.Errorf("series %d colour %v: only %d pixels", i, seriesColour(i), n)
		}
	}
	raw, _ := os.ReadFile(svg)
	if !strings.Contains(string(raw), "<svg") || !strings.Contains(string(raw), "FESS") {
		t.Error("svg lacks the svg element or the legend")
	}
	// The x axis ticks are the training sizes.
	ticks := p.Panels[0].X.Tick.Marker.Ticks(p.Panels[0].X.Min, p.Panels[0].X.Max)
	if len(ticks) != 4 || ticks[3].Label != "100" {
		t.Errorf("x ticks %v", ticks)
	}
	if err := Save(p, vg.Inch, vg.Inch, filepath.Join(dir, "x.bmp")); err == nil {
		t.Error("unknown format accepted")
	}
}

const sampleLog = `{"epoch":1,"loss":0.9,"dice_loss":0.8,"con_loss":0.00083,"train_dice":0.2,"seconds":3.1,"note":"warmup"}
{"epoch":2,"loss":0.7,"dice_loss":0.6,"con_loss":0.00082,"train_dice":0.4,"val_dice":0.35,"val_loss":0.66,"seconds":3.0,"lr":1e-5}

{"epoch":3,"loss":0.5,"dice_loss":0.45,"con_loss":0.00081,"train_dice":0.55,"seconds":3.0,"extra":{"a":1}}
{"epoch":4,"loss":0.4,"dice_loss":0.35,"con_loss":0.0008,"train_dice":0.65,"val_dice":0.6,"val_loss":0.4,"seconds":3.2}
`

func TestCurvePlot(t *testing.T) {
	dir := outDir(t)
	path := filepath.Join(dir, "log.jsonl")
	os.WriteFile(path, []byte(sampleLog), 0o644)
	lg, err := ReadRunLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.Records) != 4 {
		t.Fatalf("%d records", len(lg.Records))
	}
	if got := fmt.Sprint(lg.Keys); got != "[con_loss dice_loss epoch loss seconds train_dice lr val_dice val_loss]" {
		t.Errorf("keys %s", got)
	}
	if v := lg.series("val_dice"); len(v) != 2 || v[1].X != 4 || v[1].Y != 0.6 {
		t.Errorf("val_dice series %v", v)
	}
	st, err := CurvePlot(lg, "run")
	if err != nil {
		t.Fatal(err)
	}
	// One panel per loss key (con_loss dice_loss loss val_loss), then Dice.
	if len(st.Panels) != 5 {
		t.Fatalf("%d panels, want 5", len(st.Panels))
	}
	for i, k := range []string{"con_loss", "dice_loss", "loss", "val_loss", "Dice"} {
		if got := st.Panels[i].Y.Label.Text; got != k {
			t.Errorf("panel %d: y label %q, want %q", i, got, k)
		}
	}
	// Each loss on its own scale: the contrastive term (≈ 8e-4) spans its
	// own panel instead of lying flat on the axis of the others.
	if y := st.Panels[0].Y; y.Max > 0.001 || y.Min < 0.0007 {
		t.Errorf("con_loss axis [%g, %g]", y.Min, y.Max)
	}
	if y := st.Panels[1].Y; y.Max > 1 || y.Min < 0.3 {
		t.Errorf("dice_loss axis [%g, %g]", y.Min, y.Max)
	}
	if st.Panels[0].Title.Text != "run" || st.Panels[1].Title.Text != "" {
		t.Errorf("titles %q %q", st.Panels[0].Title.Text, st.Panels[1].Title.Text)
	}
	if y := st.Panels[4].Y; y.Min != 0 || y.Max != 1 {
		t.Errorf("Dice axis [%g, %g]", y.Min, y.Max)
	}
	out := filepath.Join(dir, "curves.png")
	if err := Save(st, 6*vg.Inch, 10*vg.Inch, out); err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, out)
	for i := 0; i < 4; i++ { // four loss keys: con_loss dice_loss loss val_loss
		if n := countColour(img, seriesColour(i), 8); n < 20 {
			t.Errorf("loss series %d colour: %d pixels", i, n)
		}
	}
}

// TestCurvePlotSeparateScales: a large contrastive term (≈ 4.9) and a Dice
// loss (≈ 0.9) each fill a panel of their own; a term spanning more than
// two decades gets a logarithmic axis.
func TestCurvePlotSeparateScales(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	os.WriteFile(path, []byte(`{"epoch":1,"loss":5.8,"dice_loss":0.95,"con_loss":4.9,"aux_loss":10}
{"epoch":2,"loss":5.7,"dice_loss":0.90,"con_loss":4.85,"aux_loss":0.01}
`), 0o644)
	lg, err := ReadRunLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := CurvePlot(lg, "")
	if err != nil {
		t.Fatal(err)
	}
	axes := map[string]plot.Axis{}
	for _, p := range f.Panels {
		axes[p.Y.Label.Text] = p.Y
	}
	if len(axes) != 4 {
		t.Fatalf("panels %v", axes)
	}
	if y := axes["dice_loss"]; y.Max > 1 || y.Min < 0.85 {
		t.Errorf("dice_loss axis [%g, %g] is not its own", y.Min, y.Max)
	}
	if y := axes["con_loss"]; y.Min < 4.8 || y.Max > 5 {
		t.Errorf("con_loss axis [%g, %g]", y.Min, y.Max)
	}
	if _, ok := axes["aux_loss"].Scale.(plot.LogScale); !ok {
		t.Error("aux_loss spans three decades: want a log axis")
	}
	if _, ok := axes["loss"].Scale.(plot.LogScale); ok {
		t.Error("loss: linear axis wanted")
	}
	out := filepath.Join(t.TempDir(), "c.svg")
	if err := Save(f, 6*vg.Inch, 8*vg.Inch, out); err != nil {
		t.Fatal(err)
	}
}

func TestReadRunLogErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "log.jsonl")
	os.WriteFile(bad, []byte("{\"epoch\":1,\"loss\":1}\nnot json\n"), 0o644)
	_, err := ReadRunLog(bad)
	var ie *errs.InputError
	if !errors.As(err, &ie) || ie.File != bad || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ReadRunLog(filepath.Join(dir, "missing.jsonl")); !errors.As(err, &ie) {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(bad, []byte("\n\n"), 0o644)
	if _, err := ReadRunLog(bad); !errors.As(err, &ie) {
		t.Errorf("empty log: %v", err)
	}
	os.WriteFile(bad, []byte(`{"epoch":1,"seconds":2}`), 0o644)
	lg, _ := ReadRunLog(bad)
	if _, err := CurvePlot(lg, ""); !errors.As(err, &ie) {
		t.Errorf("log without curves: %v", err)
	}
}

func TestDistinctTicks(t *testing.T) {
	seen := map[string]bool{}
	for _, tk := range (distinctTicks{}).Ticks(4.75, 4.9) {
		if tk.Label == "" {
			continue
		}
		if seen[tk.Label] {
			t.Fatalf("label %q twice", tk.Label)
		}
		seen[tk.Label] = true
	}
	if !seen["4.85"] {
		t.Errorf("labels %v", seen)
	}
}

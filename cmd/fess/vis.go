package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/report"
	"github.com/fess-seg/fess/volume"
)

const visUsage = `usage: fess vis --data PREPARED (--runs RUN1,RUN2 | --preds DIR1,DIR2) [--cases ID1,ID2]
                [--views axial,coronal,sagittal] [--slice K] [--panel PX] --out DIR
       fess vis --curves RUN1[,RUN2] --out DIR

Case figures: for each case, one PNG (DIR/<id>.png) with a row per view: the
input slice (grey, 1–99th percentile window), the ground truth, and one panel
per run with true positives (bluish green), false positives (vermillion) and
false negatives (yellow), Okabe–Ito colours that stay distinct with colour-
blind vision. The slice goes through the centre of the lesion (the middle
slice if the case has none) unless --slice gives it; panels keep the voxel
spacing's aspect ratio. Views are in voxel axes: axial is z = K (x right,
y up), coronal y = K (x right, z up), sagittal x = K (y right, z up).

Predictions are TESTDIR/pred/<id>.nii.gz as written by fess test: --preds
names the test folders (or their pred/ folders), one per run; without
--preds, each RUN's RUN/test/pred and RUN/pred are tried. Panel titles are
the runs' folder names. Without --cases, the first 4 test cases are drawn.

Training curves: --curves draws each run's RUN/log.jsonl (every *loss* key
and the Dice keys per epoch) into DIR/<run>-curves.png and .svg.

examples:
  fess vis --data prepared --runs runs/fess,runs/dice --cases BraTS_001 --views axial,coronal --out figs
  fess vis --curves runs/fess --out figs`

func init() {
	register("vis", "figures: case slices with TP/FP/FN overlays, training curves",
		func(args []string) error { return runVis(args, os.Stdout) })
}

func runVis(args []string, stdout io.Writer) error {
	fs := newFlags("vis", visUsage)
	data := fs.String("data", "", "prepared data `folder` (fess prepare)")
	runs := fs.String("runs", "", "comma-separated run `folders`")
	preds := fs.String("preds", "", "comma-separated test `folders` (TESTDIR or TESTDIR/pred), one per run")
	cases := fs.String("cases", "", "comma-separated case `IDs` (default: first 4 test cases)")
	views := fs.String("views", "axial", "comma-separated `views`: axial, coronal, sagittal")
	slice := fs.Int("slice", report.AutoSlice, "slice `index` along each view's axis (default: through the lesion centre)")
	panel := fs.Int("panel", 256, "long side of a panel in `pixels`")
	curves := fs.String("curves", "", "comma-separated run `folders` whose training curves to draw")
	out := fs.String("out", "", "output `folder`")
	if err := parseFlags(fs, visUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("vis: unexpected argument %q\n%s", fs.Arg(0), visUsage)
	}
	if *out == "" {
		return errs.Usage("vis: need --out\n%s", visUsage)
	}
	if *curves == "" && *data == "" {
		return errs.Usage("vis: need --data (case figures) or --curves (training curves)\n%s", visUsage)
	}
	if *panel < 16 || *panel > 4096 {
		return errs.Usage("vis: --panel %d out of range [16, 4096]", *panel)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if *curves != "" {
		for _, run := range visSplitList(*curves) {
			if _, err := visCurves(run, *out, stdout); err != nil {
				return err
			}
		}
	}
	if *data == "" {
		return nil
	}
	var vs []report.View
	for _, s := range visSplitList(*views) {
		v, err := report.ParseView(s)
		if err != nil {
			return errs.Usage("vis: --views: %v", err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return errs.Usage("vis: --views is empty")
	}
	if *slice < 0 && *slice != report.AutoSlice {
		return errs.Usage("vis: --slice %d is negative", *slice)
	}
	runDirs, predDirs := visSplitList(*runs), visSplitList(*preds)
	if len(runDirs) == 0 && len(predDirs) == 0 {
		return errs.Usage("vis: need --runs or --preds with --data\n%s", visUsage)
	}
	if len(runDirs) > 0 && len(predDirs) > 0 && len(runDirs) != len(predDirs) {
		return errs.Usage("vis: %d runs but %d prediction folders", len(runDirs), len(predDirs))
	}
	var rp []visRun
	for i := range max(len(runDirs), len(predDirs)) {
		var r visRun
		if len(runDirs) > 0 {
			r.name = filepath.Base(filepath.Clean(runDirs[i]))
		}
		if len(predDirs) > 0 {
			r.dir = visPredDir(predDirs[i])
			if r.name == "" {
				r.name = filepath.Base(filepath.Clean(predDirs[i]))
			}
		} else {
			d, err := visFindPredDir(runDirs[i])
			if err != nil {
				return err
			}
			r.dir = d
		}
		rp = append(rp, r)
	}

	_, err := writeCaseFigures(*data, rp, visSplitList(*cases), report.SliceOptions{Views: vs, Slice: *slice, PanelSize: *panel}, *out, stdout)
	return err
}

// visRun is one run's predictions: the panel title and the folder holding
// <id>.nii.gz masks.
type visRun struct{ name, dir string }

// writeCaseFigures draws OUT/<id>.png for each case of the prepared data set
// in data (the first 4 test cases when ids is empty) with one panel per run,
// reports each file on stdout and returns the files written. Faults of the
// inputs are errs.Input errors naming the file. fess experiment calls it too.
func writeCaseFigures(data string, runs []visRun, ids []string, opt report.SliceOptions, out string, stdout io.Writer) ([]string, error) {
	prep, err := dataset.Open(data)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		for _, c := range prep.Split("test") {
			if len(ids) == 4 {
				break
			}
			ids = append(ids, c.ID)
		}
		if len(ids) == 0 {
			return nil, errs.Input(data, "no test cases in the manifest; name cases with --cases")
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, id := range ids {
		info, ok := prep.Case(id)
		if !ok {
			return files, errs.Input(filepath.Join(data, dataset.ManifestName), "no case %q", id)
		}
		imgPath := filepath.Join(data, info.Image)
		iv, err := visRead3D(imgPath)
		if err != nil {
			return files, err
		}
		truth, err := visReadMask(filepath.Join(data, info.Mask), iv)
		if err != nil {
			return files, err
		}
		c := &report.Case{ID: id, Image: iv.Data[:iv.NumVoxels()], Dims: [3]int(iv.Dims[:3]), Spacing: iv.Spacing, Truth: truth}
		for _, r := range runs {
			m, err := visReadMask(filepath.Join(r.dir, id+".nii.gz"), iv)
			if err != nil {
				return files, err
			}
			c.Runs = append(c.Runs, report.Mask{Name: r.name, Data: m})
		}
		img, choices, err := report.SliceFigure(c, opt)
		if err != nil {
			return files, errs.WrapInput(imgPath, err, "cannot draw")
		}
		dst := filepath.Join(out, visSafeName(id)+".png")
		if err := report.SavePNG(dst, img); err != nil {
			return files, err
		}
		files = append(files, dst)
		var where []string
		for _, ch := range choices {
			where = append(where, fmt.Sprintf("%s %d", ch.View, ch.Index))
		}
		fmt.Fprintf(stdout, "%s (%s)\n", dst, strings.Join(where, ", "))
	}
	return files, nil
}

// visCurves draws RUN/log.jsonl into OUT/<run>-curves.png and .svg and
// returns the two files.
func visCurves(run, out string, stdout io.Writer) ([]string, error) {
	lg, err := report.ReadRunLog(filepath.Join(run, "log.jsonl"))
	if err != nil {
		return nil, err
	}
	name := filepath.Base(filepath.Clean(run))
	fig, err := report.CurvePlot(lg, name+": training curves")
	if err != nil {
		return nil, err
	}
	var files []string
	h := 0.6*vg.Inch + 2.2*vg.Inch*vg.Length(len(fig.Panels)) // small multiples: one panel per curve
	for _, ext := range []string{".png", ".svg"} {
		dst := filepath.Join(out, visSafeName(name)+"-curves"+ext)
		if err := report.Save(fig, 7*vg.Inch, h, dst); err != nil {
			return files, err
		}
		files = append(files, dst)
		fmt.Fprintln(stdout, dst)
	}
	return files, nil
}

// visPredDir accepts a test folder or its pred/ folder.
func visPredDir(dir string) string {
	if st, err := os.Stat(filepath.Join(dir, "pred")); err == nil && st.IsDir() {
		return filepath.Join(dir, "pred")
	}
	return dir
}

// visFindPredDir looks for a run's predictions at RUN/test/pred and RUN/pred.
func visFindPredDir(run string) (string, error) {
	tried := []string{filepath.Join(run, "test", "pred"), filepath.Join(run, "pred")}
	for _, d := range tried {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, nil
		}
	}
	return "", errs.Input(run, "no predictions (looked in %s); run fess test or name the folder with --preds", strings.Join(tried, " and "))
}

// visRead3D reads a volume; of a prepared image with several channels
// it keeps the first.
func visRead3D(path string) (*volume.Volume, error) {
	v, err := volume.Read(path)
	if err != nil {
		return nil, err
	}
	if v.Dims[3] > 1 {
		if v, err = v.Volume3D(0); err != nil {
			return nil, errs.Input(path, "%v", err)
		}
	}
	return v, nil
}

// visReadMask reads a mask or label map on the grid of ref; nonzero voxels
// are foreground, and a mask with several regions (S×S×S×K) shows their
// union.
func visReadMask(path string, ref *volume.Volume) ([]uint8, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, errs.WrapInput(path, err, "missing mask")
	}
	v, err := volume.Read(path)
	if err != nil {
		return nil, err
	}
	if [3]int(v.Dims[:3]) != [3]int(ref.Dims[:3]) {
		return nil, errs.Input(path, "dims %v differ from the image's %v", v.Dims[:3], ref.Dims[:3])
	}
	n := v.NumVoxels()
	m := make([]uint8, n)
	for i, x := range v.Data[:n*v.Dims[3]] {
		if x != 0 {
			m[i%n] = 1
		}
	}
	return m, nil
}

// visSplitList splits a comma-separated flag value, dropping empty items.
func visSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// visSafeName replaces path separators and other awkward characters.
func visSafeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

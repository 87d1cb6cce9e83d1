package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// The spacing mode's dims follow R = max(1, round(n·native/target)) per
// axis; grids beyond the limits and bad spacings are errors.
func TestSpacingShape(t *testing.T) {
	for _, tc := range []struct {
		native, target [3]float64
		lo, hi         [3]int
		want           [3]int
	}{
		{[3]float64{1, 1, 1}, [3]float64{1, 1, 1}, [3]int{2, 3, 4}, [3]int{12, 13, 14}, [3]int{10, 10, 10}},
		{[3]float64{0.5, 1, 3}, [3]float64{1, 1, 1}, [3]int{}, [3]int{10, 7, 5}, [3]int{5, 7, 15}},
		// round half away from zero; never below one voxel.
		{[3]float64{1, 1, 1}, [3]float64{2, 4, 10}, [3]int{}, [3]int{5, 6, 3}, [3]int{3, 2, 1}},
		{[3]float64{0.9, 0.9, 2.5}, [3]float64{1.5, 1.5, 1.5}, [3]int{}, [3]int{100, 99, 40}, [3]int{60, 59, 67}},
	} {
		got, err := spacingShape(tc.native, tc.lo, tc.hi, tc.target)
		if err != nil || got != tc.want {
			t.Errorf("spacingShape(%v, %v..%v, %v) = %v, %v; want %v", tc.native, tc.lo, tc.hi, tc.target, got, err, tc.want)
		}
		for a := 0; a < 3; a++ {
			n := float64(tc.hi[a] - tc.lo[a])
			if f := max(1, int(math.Round(n*tc.native[a]/tc.target[a]))); f != got[a] {
				t.Errorf("axis %d: %d, formula %d", a, got[a], f)
			}
		}
	}
	one := [3]float64{1, 1, 1}
	if _, err := spacingShape(one, [3]int{}, [3]int{1025, 2, 2}, one); err == nil || !strings.Contains(err.Error(), "1024") {
		t.Errorf("1025 voxels along x: %v", err)
	}
	if _, err := spacingShape(one, [3]int{}, [3]int{1000, 1000, 300}, one); err == nil || !strings.Contains(err.Error(), "voxels (at most") {
		t.Errorf("3·10⁸ voxels: %v", err)
	}
	for _, bad := range [][3]float64{{0, 1, 1}, {1, -1, 1}, {1, 1, math.NaN()}, {math.Inf(1), 1, 1}} {
		if _, err := spacingShape(one, [3]int{}, [3]int{4, 4, 4}, bad); err == nil {
			t.Errorf("target %v accepted", bad)
		}
		if _, err := spacingShape(bad, [3]int{}, [3]int{4, 4, 4}, one); err == nil {
			t.Errorf("native %v accepted", bad)
		}
	}
}

// Per-axis resampling: a box resampled to its own extent is the identity
// along every axis, and a ramp is reproduced along a stretched axis.
func TestResampleToShape(t *testing.T) {
	d := [3]int{9, 7, 6}
	src := make([]float32, d[0]*d[1]*d[2])
	for i := range src {
		src[i] = float32(i%17) - 5
	}
	lo, hi := [3]int{1, 2, 0}, [3]int{6, 5, 2}
	shape := [3]int{5, 3, 2}
	lin := resampleLinearTo(src, d, lo, hi, shape)
	near := resampleNearestTo(src, d, lo, hi, shape, func(v float32) float32 { return v })
	for z := 0; z < 2; z++ {
		for y := 0; y < 3; y++ {
			for x := 0; x < 5; x++ {
				want := src[(x+1)+d[0]*((y+2)+d[1]*z)]
				o := x + 5*(y+3*z)
				if lin[o] != want || near[o] != want {
					t.Fatalf("(%d,%d,%d): linear %v nearest %v, want %v", x, y, z, lin[o], near[o], want)
				}
			}
		}
	}
	// A ramp along y, 20 voxels resampled to 8 (x and z kept).
	d = [3]int{3, 20, 2}
	src = make([]float32, 3*20*2)
	for i := range src {
		src[i] = float32(i / 3 % 20)
	}
	out := resampleLinearTo(src, d, [3]int{}, d, [3]int{3, 8, 2})
	for o := 1; o < 7; o++ {
		want := (float64(o)+0.5)*20/8 - 0.5
		for x := 0; x < 3; x++ {
			if v := out[x+3*o+24]; math.Abs(float64(v)-want) > 1e-5 {
				t.Errorf("y=%d x=%d: %v, want %v", o, x, v, want)
			}
		}
	}
}

// Prepared grids of the cube mode say Shape = S, S, S; a geometry from
// before Shape existed reads as S³.
func TestCubeShape(t *testing.T) {
	c := SynthBrain(1, 0, 24)
	_, g, err := PreprocessVolume(c.Images["flair"], Options{Layout: LayoutBraTS2017, Size: 12})
	if err != nil {
		t.Fatal(err)
	}
	if g.Shape != [3]int{12, 12, 12} || g.Size != 12 || g.PreparedDims() != g.Shape {
		t.Fatalf("cube geometry: size %d shape %v", g.Size, g.Shape)
	}
	m, _ := PrepareLabel(c.Label, nil, g)
	old := g
	old.Shape = [3]int{}
	if old.PreparedDims() != g.Shape || !reflect.DeepEqual(RestoreMask(m, old), RestoreMask(m, g)) {
		t.Error("a geometry without Shape must restore like one with Shape = S³")
	}
}

// nativeRegions returns the task's native region masks of a case.
func nativeRegions(t *testing.T, c CaseInfo, task Task) [][]uint8 {
	t.Helper()
	lab, err := volume.Read(c.SourceLabel)
	if err != nil {
		t.Fatal(err)
	}
	masks, err := task.RegionMasks(lab.Data)
	if err != nil {
		t.Fatal(err)
	}
	return masks
}

// sourceChannels reads a case's native channel volumes (3-D each).
func sourceChannels(t *testing.T, c CaseInfo, task Task) []*volume.Volume {
	t.Helper()
	files, frames := c.SourceImages, c.SourceFrames
	if len(files) == 0 {
		files, frames = []string{c.SourceImage}, []int{c.SourceFrame}
	}
	var out []*volume.Volume
	for k, f := range files {
		v, err := volume.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := frameData(v, frames[k])
		if err != nil {
			t.Fatal(err)
		}
		cp := *v
		cp.Dims[3], cp.Data = 1, data
		out = append(out, &cp)
	}
	if len(out) != len(task.Channels) {
		t.Fatalf("%d source channels for %v", len(out), task.Channels)
	}
	return out
}

// The spacing mode on every fixture layout: dims follow the formula, the
// files carry the prepared grid, LoadCase reads them, PreprocessChannels
// with the data set's options repeats the preparation, RestoreMask puts the
// regions back, and the median spacing is the median of the cases'.
func TestPrepareSpacingFixtures(t *testing.T) {
	exp := readExpected(t)
	for _, f := range layoutFixtures {
		t.Run(f.layout, func(t *testing.T) {
			dir := filepath.Join("testdata", "layouts", f.dir)
			key := strings.Split(f.dir, "/")[0]
			for _, mode := range []string{SpacingFixed, SpacingMedian} {
				o := Options{SpacingMode: mode, Split: [3]float64{1, 0, 0}, Workers: 2}
				if mode == SpacingFixed {
					o.Spacing = [3]float64{0.8, 1, 1.25}
				}
				if f.layout == LayoutAbdomenCT1K {
					o.Classes = "liver,kidney,spleen,pancreas"
				} else {
					o.Target = "wt,tc,et"
				}
				out := t.TempDir()
				m, cached, err := Prepare(dir, out, o)
				if err != nil || cached {
					t.Fatalf("%s: %v (cached %v)", mode, err, cached)
				}
				target := o.Spacing
				if mode == SpacingMedian {
					var sp [][3]float64
					for _, c := range exp[key] {
						var s [3]float64
						for a := range s {
							s[a] = float64(float32(c.Spacing[a]))
						}
						sp = append(sp, s)
					}
					target = MedianSpacing(sp)
					for a := 0; a < 3; a++ {
						if math.Abs(m.Options.Spacing[a]-target[a]) > 1e-6 {
							t.Errorf("median spacing %v, expected.json gives %v", m.Options.Spacing, target)
						}
					}
					target = m.Options.Spacing
				}
				if m.Options.Size != 0 || m.Options.SpacingMode != mode || m.Options.Spacing != target {
					t.Errorf("%s: recorded options %+v", mode, m.Options)
				}
				p, err := Open(out)
				if err != nil {
					t.Fatal(err)
				}
				if !p.Patched() || p.Size() != 0 {
					t.Errorf("Patched %v Size %d", p.Patched(), p.Size())
				}
				task := p.Task()
				nc, nk := len(task.Channels), len(task.Regions)
				for _, c := range p.Split("all") {
					g := c.Geometry
					want, err := spacingShape(g.Spacing, g.CropLo, g.CropHi, target)
					if err != nil || g.Shape != want || g.Size != 0 {
						t.Errorf("%s %s: shape %v size %d, formula %v (%v)", mode, c.ID, g.Shape, g.Size, want, err)
					}
					for a := 0; a < 3; a++ {
						n := g.CropHi[a] - g.CropLo[a]
						if math.Abs(g.PreparedSpacing[a]-g.Spacing[a]*float64(n)/float64(g.Shape[a])) > 1e-12 {
							t.Errorf("%s: prepared spacing %v", c.ID, g.PreparedSpacing)
						}
					}
					img, mask, dims, err := p.LoadCase(c.ID)
					vox := dims[0] * dims[1] * dims[2]
					if err != nil || dims != g.Shape || len(img) != nc*vox || len(mask) != nk*vox {
						t.Fatalf("LoadCase %s: dims %v, %d and %d values, %v", c.ID, dims, len(img), len(mask), err)
					}
					iv, err := volume.Read(filepath.Join(out, c.Image))
					if err != nil {
						t.Fatal(err)
					}
					for a := 0; a < 3; a++ {
						if math.Abs(iv.Spacing[a]-g.PreparedSpacing[a]) > 1e-5 {
							t.Errorf("%s: file spacing %v, geometry %v", c.ID, iv.Spacing, g.PreparedSpacing)
						}
						for b := 0; b < 4; b++ {
							if math.Abs(iv.Affine[a][b]-g.PreparedAffine[a][b]) > 1e-4 {
								t.Errorf("%s: file affine %v, geometry %v", c.ID, iv.Affine, g.PreparedAffine)
							}
						}
					}
					if _, _, err := p.Load(c.ID); errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "LoadCase") {
						t.Errorf("Load in the spacing mode: %v", err)
					}
					// The same preparation for a new input at predict time.
					x, g2, err := PreprocessChannels(sourceChannels(t, c, task), task.Channels, p.Options())
					if err != nil || !slices.Equal(x, img) || !reflect.DeepEqual(g2.Shape, g.Shape) || g2.Norm == nil && nc > 1 {
						t.Errorf("%s: PreprocessChannels differs from the prepared case (%v)", c.ID, err)
					}
					// Back to native space.
					native := nativeRegions(t, c, task)
					for k := 0; k < nk; k++ {
						back := RestoreMask(mask[k*vox:(k+1)*vox], g)
						restored := make([]uint8, len(native[k]))
						for i, v := range back.Data {
							restored[i] = uint8(v)
						}
						d := dice(native[k], restored)
						if d < 0.6 {
							t.Errorf("%s %s region %d: round-trip Dice %.3f", mode, c.ID, k, d)
						}
					}
				}
				if _, cached, err := Prepare(dir, out, o); err != nil || !cached {
					t.Errorf("%s: second run cached=%v err=%v", mode, cached, err)
				}
			}
		})
	}
}

// Explicit medians: an odd count takes the middle value, an even count the
// mean of the two middle ones, per axis.
func TestMedianSpacing(t *testing.T) {
	got := MedianSpacing([][3]float64{{1, 3, 5}, {2, 1, 4}, {3, 2, 6}})
	if got != [3]float64{2, 2, 5} {
		t.Errorf("odd: %v", got)
	}
	got = MedianSpacing([][3]float64{{1, 3, 5}, {2, 1, 4}, {3, 2, 6}, {10, 0.5, 4}})
	if got != [3]float64{2.5, 1.5, 4.5} {
		t.Errorf("even: %v", got)
	}
	if MedianSpacing(nil) != [3]float64{} {
		t.Error("none")
	}
}

// withSpacing returns v with its grid's spacing set to sp (affine columns
// scaled to match), the same voxels.
func withSpacing(v *volume.Volume, sp [3]float64) *volume.Volume {
	cp := *v
	for a := 0; a < 3; a++ {
		f := sp[a] / v.Spacing[a]
		for r := 0; r < 3; r++ {
			cp.Affine[r][a] *= f
		}
	}
	cp.Spacing = sp
	return &cp
}

// Median spacing over synthetic cases written with different spacings per
// axis, through the whole preparation.
func TestPrepareMedianSpacing(t *testing.T) {
	in := t.TempDir()
	spacings := [][3]float64{{1, 2, 3}, {0.5, 1.5, 2.5}, {1.25, 1, 4}, {0.75, 2.5, 5}, {2, 0.5, 1}}
	for i, sp := range spacings {
		c := SynthBrain(7, i, 16)
		cd := filepath.Join(in, c.ID)
		os.MkdirAll(cd, 0o755)
		if err := volume.WriteNIfTI(filepath.Join(cd, c.ID+"_flair.nii.gz"), withSpacing(c.Images["flair"], sp), "int16"); err != nil {
			t.Fatal(err)
		}
		if err := volume.WriteNIfTI(filepath.Join(cd, c.ID+"_seg.nii.gz"), withSpacing(c.Label, sp), "uint8"); err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := Prepare(in, t.TempDir(), Options{SpacingMode: SpacingMedian, Split: [3]float64{0.6, 0.2, 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := [3]float64{1, 1.5, 3}; m.Options.Spacing != want {
		t.Errorf("median spacing %v, want %v", m.Options.Spacing, want)
	}
	for _, c := range m.Cases {
		g := c.Geometry
		for a := 0; a < 3; a++ {
			n := g.CropHi[a] - g.CropLo[a]
			if want := max(1, int(math.Round(float64(n)*g.Spacing[a]/m.Options.Spacing[a]))); g.Shape[a] != want {
				t.Errorf("%s axis %d: %d voxels, formula %d", c.ID, a, g.Shape[a], want)
			}
		}
	}
}

// binaryLabel returns the label map's voxels > 0 as 0/1.
func binaryLabel(v *volume.Volume) []uint8 {
	out := make([]uint8, v.NumVoxels())
	for i := range out {
		if v.Data[i] > 0 {
			out[i] = 1
		}
	}
	return out
}

// Round trips prepare → RestoreMask in the spacing mode: exact at the
// native spacing (the prepared grid is the crop box itself, whole volume
// or not), and close at other spacings.
func TestSpacingRoundTrip(t *testing.T) {
	for _, kind := range []string{"brain", "abdomen"} {
		var c *SynthCase
		opts := Options{Layout: LayoutBraTS2017}
		mod := "flair"
		if kind == "abdomen" {
			c, mod = SynthAbdomen(2, 1, 48), "ct"
			opts.Layout = LayoutAbdomenCT1K
		} else {
			c = SynthBrain(2, 1, 48)
		}
		// An anisotropic grid: the same voxels at 1.2 × 0.9 × 2.5 mm.
		sp := [3]float64{1.2, 0.9, 2.5}
		img, lab := withSpacing(c.Images[mod], sp), withSpacing(c.Label, sp)
		native := binaryLabel(lab)
		for _, tc := range []struct {
			target [3]float64
			min    float64
		}{{sp, 1}, {[3]float64{1, 1, 1}, 0.95}, {[3]float64{1.5, 1.5, 1.5}, 0.85}, {[3]float64{0.8, 0.8, 2}, 0.95}} {
			o := opts
			o.Spacing = tc.target
			_, g, err := PreprocessVolume(img, o)
			if err != nil {
				t.Fatal(err)
			}
			m, err := PrepareLabel(lab, nil, g)
			if err != nil {
				t.Fatal(err)
			}
			back := RestoreMask(m, g)
			if back.Dims != lab.Dims || back.Affine != lab.Affine || back.Spacing != lab.Spacing {
				t.Fatalf("restored grid %v %v, native %v %v", back.Dims, back.Affine, lab.Dims, lab.Affine)
			}
			d := dice(native, binaryLabel(back))
			t.Logf("%s at %v mm: crop %v..%v → %v, round-trip Dice %.4f", kind, tc.target, g.CropLo, g.CropHi, g.Shape, d)
			if tc.min == 1 {
				if !slices.Equal(native, binaryLabel(back)) {
					t.Errorf("%s: at the native spacing the round trip must be exact (Dice %.4f)", kind, d)
				}
				for a := 0; a < 3; a++ {
					if g.Shape[a] != g.CropHi[a]-g.CropLo[a] {
						t.Errorf("%s: at the native spacing the grid %v is not the crop box", kind, g.Shape)
					}
				}
			} else if d < tc.min {
				t.Errorf("%s at %v mm: round-trip Dice %.4f < %.2f", kind, tc.target, d, tc.min)
			}
		}
	}
	// No foreground: the whole volume, and the round trip is exact.
	v := &volume.Volume{Dims: [4]int{7, 5, 4, 1}, Data: make([]float32, 140), Spacing: [3]float64{0.7, 1.1, 3}}
	v.Affine = [4][4]float64{{0.7, 0, 0, -3}, {0, 1.1, 0, 2}, {0, 0, 3, 1}, {0, 0, 0, 1}}
	lab := *v
	lab.Data = make([]float32, 140)
	for i := range lab.Data {
		lab.Data[i] = float32((i * 7) % 3)
	}
	_, g, err := PreprocessVolume(v, Options{Layout: LayoutBraTS2017, Spacing: v.Spacing})
	if err != nil {
		t.Fatal(err)
	}
	if g.CropLo != [3]int{} || g.CropHi != [3]int{7, 5, 4} || g.Shape != [3]int{7, 5, 4} || g.PreparedAffine != v.Affine {
		t.Fatalf("whole volume: crop %v..%v shape %v affine %v", g.CropLo, g.CropHi, g.Shape, g.PreparedAffine)
	}
	m, _ := PrepareLabel(&lab, []int{2}, g)
	back := RestoreMask(m, g)
	for i, x := range lab.Data {
		if want := float32(0); x == 2 && back.Data[i] != 1 || x != 2 && back.Data[i] != want {
			t.Fatalf("voxel %d: label %v restored %v", i, x, back.Data[i])
		}
	}
	probs := RestoreProbabilities([][]float32{make([]float32, 140), make([]float32, 140)}, g)
	if probs.Dims != [4]int{7, 5, 4, 2} {
		t.Errorf("RestoreProbabilities dims %v", probs.Dims)
	}
}

// Option checks: --size and --spacing are exclusive, spacings are positive
// and finite, fold counts sensible; a grid past the limits is an input
// error naming the case; the median mode needs its recorded spacing at
// predict time.
func TestSpacingOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{Size: 32, Spacing: [3]float64{1, 1, 1}},
		{Size: 32, SpacingMode: SpacingMedian},
		{Spacing: [3]float64{0, 1, 1}},
		{Spacing: [3]float64{1, -2, 1}},
		{Spacing: [3]float64{1, 1, math.NaN()}},
		{Spacing: [3]float64{1, math.Inf(1), 1}},
		{SpacingMode: SpacingFixed},
		{SpacingMode: "mean"},
		{Folds: 1},
		{Folds: -2},
	} {
		o.Layout = LayoutBraTS2017
		err := o.Defaults().Validate()
		var ue *errs.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
		if _, _, err := Prepare(filepath.Join("testdata", "layouts", "brats2021"), t.TempDir(), o); errs.ExitCode(err) != 2 {
			t.Errorf("Prepare %+v: %v", o, err)
		}
	}
	if err := (Options{Layout: LayoutBraTS2017, SpacingMode: SpacingMedian}).Defaults().Validate(); err != nil {
		t.Errorf("median before it is computed: %v", err)
	}
	dir := filepath.Join("testdata", "layouts", "brats2021")
	_, _, err := Prepare(dir, t.TempDir(), Options{Spacing: [3]float64{0.01, 0.01, 0.01}})
	if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "case BraTS2021_0000") || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a grid past the limits: %v", err)
	}
	c := SynthBrain(1, 0, 16)
	if _, _, err := PreprocessVolume(c.Images["flair"], Options{SpacingMode: SpacingMedian}); err == nil {
		t.Error("median mode without a recorded spacing accepted")
	}
}

// writeFoldSet writes n small synthetic BraTS cases.
func writeFoldSet(t *testing.T, n int) string {
	in := t.TempDir()
	if err := WriteSynth("brain", in, n, 16, 5, 2, nil); err != nil {
		t.Fatal(err)
	}
	return in
}

func readFolds(t *testing.T, dir string) []Fold {
	t.Helper()
	var f []Fold
	b, err := os.ReadFile(filepath.Join(dir, SplitsName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// --folds writes a deterministic k-fold of the cases outside the test
// split, each in exactly one val list; the manifest split is unchanged; a
// rerun keeps hand edits; another fold count rewrites splits.json only.
func TestPrepareFolds(t *testing.T) {
	in := writeFoldSet(t, 11)
	base := Options{Size: 8, Split: [3]float64{0.6, 0.2, 0.2}, Seed: 3}
	plain, _, err := Prepare(in, t.TempDir(), base)
	if err != nil {
		t.Fatal(err)
	}
	o := base
	o.Folds = 4
	out1, out2 := t.TempDir(), t.TempDir()
	m, _, err := Prepare(in, out1, o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Options.Folds != 4 {
		t.Errorf("folds not recorded: %+v", m.Options)
	}
	var nonTest []string
	for i, c := range m.Cases {
		if c.Split != plain.Cases[i].Split {
			t.Errorf("case %s: split %s with --folds, %s without", c.ID, c.Split, plain.Cases[i].Split)
		}
		if c.Split != "test" {
			nonTest = append(nonTest, c.ID)
		}
	}
	folds := readFolds(t, out1)
	if len(folds) != 4 {
		t.Fatalf("%d folds", len(folds))
	}
	count := map[string]int{}
	for k, f := range folds {
		if len(f.Val) < len(nonTest)/4 || len(f.Val) > len(nonTest)/4+1 {
			t.Errorf("fold %d: %d val cases of %d", k, len(f.Val), len(nonTest))
		}
		var all []string
		for _, id := range f.Val {
			count[id]++
			all = append(all, id)
		}
		all = append(all, f.Train...)
		slices.Sort(all)
		if !slices.Equal(all, nonTest) {
			t.Errorf("fold %d: train ∪ val = %v, want the non-test cases %v", k, all, nonTest)
		}
	}
	for _, id := range nonTest {
		if count[id] != 1 {
			t.Errorf("case %s is in %d val folds", id, count[id])
		}
	}
	p, err := Open(out1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Folds(); err != nil || !reflect.DeepEqual(got, folds) {
		t.Errorf("Folds() = %v, %v", got, err)
	}
	// Deterministic; another seed gives other folds.
	if _, _, err := Prepare(in, out2, o); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(filepath.Join(out1, SplitsName))
	b2, _ := os.ReadFile(filepath.Join(out2, SplitsName))
	if !bytes.Equal(b1, b2) {
		t.Error("splits.json differs between two runs")
	}
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = string(rune('a' + i))
	}
	if reflect.DeepEqual(makeFolds(ids, 5, 1), makeFolds(ids, 5, 2)) {
		t.Error("folds do not depend on the seed")
	}
	// A hand edit survives a cached rerun; a missing file is written again.
	edited := []Fold{{Train: nonTest[1:], Val: nonTest[:1]}}
	eb, _ := json.Marshal(edited)
	os.WriteFile(filepath.Join(out1, SplitsName), eb, 0o644)
	if _, cached, err := Prepare(in, out1, o); err != nil || !cached {
		t.Fatalf("rerun: cached=%v err=%v", cached, err)
	}
	if got := readFolds(t, out1); !reflect.DeepEqual(got, edited) {
		t.Errorf("hand-edited folds replaced: %v", got)
	}
	os.Remove(filepath.Join(out1, SplitsName))
	if _, cached, err := Prepare(in, out1, o); err != nil || !cached || !reflect.DeepEqual(readFolds(t, out1), folds) {
		t.Errorf("missing splits.json not rewritten (cached=%v err=%v)", cached, err)
	}
	// Another fold count: splits.json and the manifest, not the cases.
	st, _ := os.Stat(filepath.Join(out1, m.Cases[0].Image))
	o.Folds = 2
	m2, cached, err := Prepare(in, out1, o)
	if err != nil || !cached || m2.Options.Folds != 2 || len(readFolds(t, out1)) != 2 {
		t.Fatalf("2 folds: cached=%v err=%v", cached, err)
	}
	if st2, _ := os.Stat(filepath.Join(out1, m.Cases[0].Image)); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("case files rewritten for a new fold count")
	}
	if p, _ := Open(out1); p.Options().Folds != 2 {
		t.Errorf("manifest folds %d", p.Options().Folds)
	}
	// More folds than cases outside the test split.
	o.Folds = len(nonTest) + 1
	if _, _, err := Prepare(in, t.TempDir(), o); errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "only 9 cases") {
		t.Errorf("%d folds of %d cases: %v", o.Folds, len(nonTest), err)
	}
	// The spacing mode takes folds too.
	o = Options{Spacing: [3]float64{15, 15, 15}, Split: base.Split, Seed: 3, Folds: 3}
	if _, _, err := Prepare(in, out2, o); err != nil || len(readFolds(t, out2)) != 3 {
		t.Errorf("spacing mode with folds: %v", err)
	}
}

// Hand edits of splits.json that cannot work are input errors naming it.
func TestFoldsRejectsBadEdits(t *testing.T) {
	in := writeFoldSet(t, 6)
	out := t.TempDir()
	m, _, err := Prepare(in, out, Options{Size: 8, Split: [3]float64{0.5, 0.2, 0.3}, Folds: 2})
	if err != nil {
		t.Fatal(err)
	}
	var train, test []string
	for _, c := range m.Cases {
		if c.Split == "test" {
			test = append(test, c.ID)
		} else {
			train = append(train, c.ID)
		}
	}
	if len(test) == 0 || len(train) < 3 {
		t.Fatalf("split %v / %v", train, test)
	}
	p, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Folds(); err != nil {
		t.Fatalf("written folds rejected: %v", err)
	}
	path := filepath.Join(out, SplitsName)
	for _, tc := range []struct{ name, text, want string }{
		{"unknown id", `[{"train": ["` + train[0] + `", "nobody"], "val": ["` + train[1] + `"]}]`, `unknown case "nobody"`},
		{"both", `[{"train": ["` + train[0] + `", "` + train[1] + `"], "val": ["` + train[1] + `"]}]`, "in both train and val"},
		{"empty train", `[{"train": [], "val": ["` + train[1] + `"]}]`, "no train cases"},
		{"null train", `[{"val": ["` + train[1] + `"]}]`, "no train cases"},
		{"empty val", `[{"train": ["` + train[1] + `"], "val": []}]`, "no val cases"},
		{"test case", `[{"train": ["` + train[0] + `"], "val": ["` + test[0] + `"]}]`, "test split"},
		{"twice", `[{"train": ["` + train[0] + `", "` + train[0] + `"], "val": ["` + train[1] + `"]}]`, "twice"},
		{"no folds", `[]`, "no fold"},
		{"not a list", `{"train": []}`, "invalid folds"},
		{"typo", `[{"trian": ["` + train[0] + `"], "val": ["` + train[1] + `"]}]`, "invalid folds"},
		{"trailing", `[{"train": ["` + train[0] + `"], "val": ["` + train[1] + `"]}] []`, "after the list"},
	} {
		os.WriteFile(path, []byte(tc.text), 0o644)
		_, err := p.Folds()
		if errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), SplitsName) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an input error on %s saying %q", tc.name, err, SplitsName, tc.want)
		}
	}
	os.Remove(path)
	if _, err := p.Folds(); errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), "--folds") {
		t.Errorf("missing splits.json: %v", err)
	}
	// A hand-written subset is fine.
	os.WriteFile(path, []byte(`[{"train": ["`+train[0]+`"], "val": ["`+train[1]+`"]}]`), 0o644)
	if f, err := p.Folds(); err != nil || len(f) != 1 {
		t.Errorf("valid subset: %v %v", f, err)
	}
}

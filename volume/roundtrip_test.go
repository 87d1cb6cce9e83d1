package volume

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testVolume returns a 4-D volume with an oblique, reflected affine and
// values that fit d exactly.
func testVolume(d dtype, dims [4]int) *Volume {
	n := dims[0] * dims[1] * dims[2] * dims[3]
	v := &Volume{Dims: dims, Data: make([]float32, n)}
	lo, hi := d.limits()
	lo, hi = math.Max(lo, -1000), math.Min(hi, 1000)
	for i := range v.Data {
		x := lo + float64((i*7919)%int(hi-lo+1))
		if d.kind == 'f' {
			x += 0.25 * float64(i%4)
		}
		v.Data[i] = float32(x)
	}
	// 15° about z, then a reflection of x, spacing 0.8, 1.2, 2.5.
	c, s := math.Cos(math.Pi/12), math.Sin(math.Pi/12)
	v.Affine = [4][4]float64{
		{-0.8 * c, -1.2 * s, 0, 10.5},
		{-0.8 * s, 1.2 * c, 0, -20.25},
		{0, 0, 2.5, 33},
		{0, 0, 0, 1},
	}
	return v
}

func f32(x float64) float64 { return float64(float32(x)) }

func TestWriteReadRoundTripEveryDatatype(t *testing.T) {
	dir := t.TempDir()
	for _, d := range dtypes {
		if d.name == "bool" {
			continue
		}
		for _, ext := range []string{".nii", ".nii.gz"} {
			v := testVolume(d, [4]int{5, 4, 3, 2})
			path := filepath.Join(dir, d.name+ext)
			if err := WriteNIfTI(path, v, d.name); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if got.Dims != v.Dims || got.Datatype != d.name || got.Format != "nifti1" {
				t.Fatalf("%s: dims %v datatype %s format %s", path, got.Dims, got.Datatype, got.Format)
			}
			for i := range v.Data {
				if got.Data[i] != v.Data[i] {
					t.Fatalf("%s: voxel %d = %v, want %v", path, i, got.Data[i], v.Data[i])
				}
			}
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					if got.Affine[i][j] != f32(v.Affine[i][j]) {
						t.Fatalf("%s: affine[%d][%d] = %v, want %v", path, i, j, got.Affine[i][j], v.Affine[i][j])
					}
				}
			}
			want := [3]float64{0.8, 1.2, 2.5}
			for i := range want {
				if math.Abs(got.Spacing[i]-want[i]) > 1e-6 {
					t.Fatalf("%s: spacing %v, want %v", path, got.Spacing, want)
				}
			}
		}
	}
}

// The qform written beside the sform describes the same geometry (readers
// that prefer the qform, such as ITK, see the same affine).
func TestWrittenQformMatchesSform(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.nii")
	v := testVolume(dtype{"float32", 4, 'f'}, [4]int{3, 3, 3, 1})
	if err := WriteNIfTI(path, v, "float32"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _ := newStream(path, f, -1)
	h, err := decodeNIfTIHeader(s, true)
	if err != nil {
		t.Fatal(err)
	}
	q := h.qform()
	for i := 0; i < 3; i++ {
		for j := 0; j < 4; j++ {
			if math.Abs(q[i][j]-v.Affine[i][j]) > 1e-5 {
				t.Fatalf("qform[%d][%d] = %v, want %v (qform %v)", i, j, q[i][j], v.Affine[i][j], q)
			}
		}
	}
	if h.pixdim[0] != -1 {
		t.Errorf("qfac = %v, want -1 for a reflected affine", h.pixdim[0])
	}
}

// Values that do not fit an integer type are stored with scl_slope/scl_inter
// and come back within half a quantisation step.
func TestWriteIntegerWithScaling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.nii.gz")
	v := &Volume{Dims: [4]int{10, 1, 1, 1}, Affine: [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}}
	for i := 0; i < 10; i++ {
		v.Data = append(v.Data, float32(-3.7+1.1*float64(i)))
	}
	if err := WriteNIfTI(path, v, "uint8"); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	step := (9.9) / 255
	for i := range v.Data {
		if math.Abs(float64(got.Data[i]-v.Data[i])) > step/2+1e-5 {
			t.Errorf("voxel %d = %v, want %v ± %v", i, got.Data[i], v.Data[i], step/2)
		}
	}
	if got.Source.Slope == 1 {
		t.Errorf("expected scl_slope to be set")
	}
	v.Data[3] = float32(math.NaN())
	if err := WriteNIfTI(path, v, "int16"); err == nil {
		t.Errorf("NaN written as int16 without error")
	}
}

func TestVolume3D(t *testing.T) {
	v := testVolume(dtype{"int16", 2, 'i'}, [4]int{2, 2, 2, 3})
	w, err := v.Volume3D(2)
	if err != nil {
		t.Fatal(err)
	}
	if w.Dims != [4]int{2, 2, 2, 1} || w.Data[0] != v.Data[16] || w.Data[7] != v.Data[23] {
		t.Fatalf("Volume3D(2) = dims %v data %v", w.Dims, w.Data)
	}
	if _, err := v.Volume3D(3); err == nil {
		t.Error("Volume3D(3) of a 3-volume image did not fail")
	}
}

// TestWriteSamplesForNibabel writes one NIfTI-1 file per datatype, and an
// expected.json of what each holds, into $FESS_WRITE_SAMPLES, for
// testdata/gen_nibabel_fixtures.py to read back with nibabel. Without the
// variable it writes to a temporary directory and only checks that writing works.
func TestWriteSamplesForNibabel(t *testing.T) {
	dir := os.Getenv("FESS_WRITE_SAMPLES")
	if dir == "" {
		dir = t.TempDir()
	}
	type sample struct {
		Dims     [4]int        `json:"dims"`
		Datatype string        `json:"datatype"`
		Affine   [4][4]float64 `json:"affine"`
		Data     []float32     `json:"data"`
	}
	expected := map[string]sample{}
	for _, d := range dtypes {
		if d.name == "bool" {
			continue
		}
		for _, ext := range []string{".nii", ".nii.gz"} {
			dims := [4]int{5, 4, 3, 1}
			if ext == ".nii.gz" {
				dims[3] = 2
			}
			v := testVolume(d, dims)
			name := "fess_" + d.name + ext
			if err := WriteNIfTI(filepath.Join(dir, name), v, d.name); err != nil {
				t.Fatal(err)
			}
			var aff [4][4]float64
			for i := range aff {
				for j := range aff[i] {
					aff[i][j] = f32(v.Affine[i][j])
				}
			}
			expected[name] = sample{v.Dims, d.name, aff, v.Data}
		}
	}
	b, err := json.Marshal(expected)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expected.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A Volume built without an affine is written with diag(spacing).
func TestWriteWithoutAffine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noaff.nii")
	v := &Volume{Dims: [4]int{2, 2, 2, 1}, Data: make([]float32, 8), Spacing: [3]float64{2, 3, 0}}
	if err := WriteNIfTI(path, v, "uint8"); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := [4][4]float64{{2, 0, 0, 0}, {0, 3, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	if got.Affine != want || got.Spacing != [3]float64{2, 3, 1} {
		t.Errorf("affine %v spacing %v, want %v", got.Affine, got.Spacing, want)
	}
}

// A single-file NIfTI (magic n+1) named .hdr is read from that one file.
func TestSingleFileNamedHdr(t *testing.T) {
	dir := t.TempDir()
	v := testVolume(dtype{"int16", 2, 'i'}, [4]int{3, 2, 2, 1})
	if err := WriteNIfTI(filepath.Join(dir, "a.nii"), v, "int16"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a.nii"), filepath.Join(dir, "a.hdr")); err != nil {
		t.Fatal(err)
	}
	got, err := Read(filepath.Join(dir, "a.hdr"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Data[11] != v.Data[11] {
		t.Errorf("voxel 11 = %v, want %v", got.Data[11], v.Data[11])
	}
}

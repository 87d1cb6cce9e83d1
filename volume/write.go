package volume

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"github.com/fess-seg/fess/internal/atomicio"
	"io"
	"math"
	"strings"
)

// WriteNIfTI writes v as a single-file NIfTI-1 image, gzipped when path ends
// in .nii.gz, with samples of the named datatype ("uint8", "int8", "uint16",
// "int16", "uint32", "int32", "uint64", "int64", "float32", "float64").
// The file is written to a temporary file beside path and renamed over it.
//
// Geometry: the sform is v.Affine (if v.Affine is all zero, as in a Volume
// built without one, diag(Spacing) is used instead; rounded to float32, as the format stores
// it) and the qform is the nearest rotation-plus-zoom to it (exact when the
// affine has no shear); both codes are 1 (NIFTI_XFORM_SCANNER_ANAT), so
// readers that follow nibabel's rules (sform first) get v.Affine back.
// pixdim[1..3] are the affine's column norms, pixdim[0] the qform's qfac,
// units mm and s.
//
// Intensities: float types store the values as they are. Integer types store
// them exactly when every value is a whole number within the type's range;
// otherwise scl_slope/scl_inter are set so that [min, max] spans the type's
// range, and values are rounded to the nearest step. NaN or Inf cannot be
// stored in an integer type and are an error.
func WriteNIfTI(path string, v *Volume, datatype string) error {
	lower := strings.ToLower(path)
	gz := strings.HasSuffix(lower, ".nii.gz")
	if !gz && !strings.HasSuffix(lower, ".nii") {
		return fmt.Errorf("%s: WriteNIfTI writes .nii or .nii.gz files", path)
	}
	if err := checkWritable(v, datatype); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	err := atomicio.Write(path, 0o644, func(w io.Writer) error {
		if !gz {
			return EncodeNIfTI(w, v, datatype)
		}
		zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return err
		}
		if err := EncodeNIfTI(zw, v, datatype); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func checkWritable(v *Volume, datatype string) error {
	if _, ok := dtypeByName(datatype); !ok || niftiCode(datatype) == 0 {
		return fmt.Errorf("cannot write datatype %q (want uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32 or float64)", datatype)
	}
	n := 1
	for i, d := range v.Dims {
		if d < 1 || d > math.MaxInt16 {
			return fmt.Errorf("dimension %d is %d, NIfTI-1 holds 1..32767", i, d)
		}
		n *= d
	}
	if len(v.Data) != n {
		return fmt.Errorf("volume has %d values for dims %v (%d voxels)", len(v.Data), v.Dims, n)
	}
	return nil
}

// EncodeNIfTI writes v as an uncompressed single-file NIfTI-1 image to w
// (see WriteNIfTI for the conventions).
func EncodeNIfTI(w io.Writer, v *Volume, datatype string) error {
	if err := checkWritable(v, datatype); err != nil {
		return err
	}
	d, _ := dtypeByName(datatype)
	aff := writeAffine(v)
	slope, inter, err := intScaling(v.Data, d)
	if err != nil {
		return err
	}
	hdr := make([]byte, 352)
	le := binary.LittleEndian
	put16 := func(off int, x int) { le.PutUint16(hdr[off:], uint16(int16(x))) }
	putF := func(off int, x float64) { le.PutUint32(hdr[off:], math.Float32bits(float32(x))) }
	le.PutUint32(hdr[0:], 348)
	hdr[39] = 0 // dim_info
	ndim := 3
	if v.Dims[3] > 1 {
		ndim = 4
	}
	put16(40, ndim)
	for i := 0; i < 4; i++ {
		put16(42+2*i, v.Dims[i])
	}
	for i := 4; i < 7; i++ {
		put16(42+2*i, 1)
	}
	put16(70, niftiCode(datatype))
	put16(72, 8*d.size)
	q := affineToQform(aff)
	putF(76, q.qfac)
	for i := 0; i < 3; i++ {
		putF(80+4*i, q.zoom[i])
	}
	for i := 3; i < 7; i++ {
		putF(80+4*i, 1)
	}
	putF(108, 352)
	if slope != 0 {
		putF(112, slope)
		putF(116, inter)
	}
	hdr[123] = 2 | 8 // xyzt_units: mm, s
	copy(hdr[148:228], "fess")
	put16(252, 1) // qform_code: scanner anatomical
	put16(254, 1) // sform_code: scanner anatomical
	for i := 0; i < 3; i++ {
		putF(256+4*i, q.quat[i])
		putF(268+4*i, aff[i][3])
		for j := 0; j < 4; j++ {
			putF(280+16*i+4*j, aff[i][j])
		}
	}
	copy(hdr[344:348], "n+1\x00")
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	const chunk = 1 << 16
	buf := make([]byte, chunk*d.size)
	sl, in := float64(float32(slope)), float64(float32(inter))
	for start := 0; start < len(v.Data); start += chunk {
		end := min(start+chunk, len(v.Data))
		for i, x := range v.Data[start:end] {
			raw := float64(x)
			if d.kind != 'f' {
				if slope != 0 {
					raw = (raw - in) / sl
				}
				lo, hi := d.limits()
				raw = math.Max(lo, math.Min(hi, math.RoundToEven(raw)))
			}
			encodeSample(buf[i*d.size:], d, raw)
		}
		if _, err := w.Write(buf[:(end-start)*d.size]); err != nil {
			return err
		}
	}
	return nil
}

// writeAffine is v.Affine, or diag(Spacing) (1 where a spacing is not
// positive) when v.Affine was never set (all zero).
func writeAffine(v *Volume) [4][4]float64 {
	if v.Affine != ([4][4]float64{}) {
		return v.Affine
	}
	var a [4][4]float64
	for i := 0; i < 3; i++ {
		a[i][i] = v.Spacing[i]
		if !(a[i][i] > 0) {
			a[i][i] = 1
		}
	}
	a[3][3] = 1
	return a
}

// intScaling returns scl_slope and scl_inter for storing data in integer
// type d: 0, 0 (no scaling) when the values fit exactly.
func intScaling(data []float32, d dtype) (slope, inter float64, err error) {
	if d.kind == 'f' {
		return 0, 0, nil
	}
	lo, hi := d.limits()
	mn, mx := math.Inf(1), math.Inf(-1)
	exact := true
	for _, x := range data {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, 0, fmt.Errorf("value %v cannot be stored as %s", x, d.name)
		}
		mn, mx = math.Min(mn, f), math.Max(mx, f)
		if f != math.Trunc(f) || f < lo || f > hi {
			exact = false
		}
	}
	if exact {
		return 0, 0, nil
	}
	if mx == mn {
		return 1, mn, nil
	}
	slope = (mx - mn) / (hi - lo)
	inter = mn - lo*slope
	return slope, inter, nil
}

type qformParams struct {
	quat [3]float64 // b, c, d
	zoom [3]float64
	qfac float64
}

// affineToQform decomposes the 3×3 part of aff into zooms (column norms), a
// qfac of ±1 (the sign of the determinant, applied to the z column) and the
// nearest rotation (polar decomposition), returned as a quaternion b,c,d with
// a >= 0.
func affineToQform(aff [4][4]float64) qformParams {
	var p qformParams
	var r [3][3]float64
	for j := 0; j < 3; j++ {
		n := math.Sqrt(aff[0][j]*aff[0][j] + aff[1][j]*aff[1][j] + aff[2][j]*aff[2][j])
		if !(n > 0) || math.IsInf(n, 0) {
			n = 1
			for i := 0; i < 3; i++ {
				r[i][j] = 0
			}
			r[j][j] = 1
		} else {
			for i := 0; i < 3; i++ {
				r[i][j] = aff[i][j] / n
			}
		}
		p.zoom[j] = n
	}
	p.qfac = 1
	if det3(r) < 0 {
		p.qfac = -1
		for i := 0; i < 3; i++ {
			r[i][2] = -r[i][2]
		}
	}
	r = nearestRotation(r)
	a := r[0][0] + r[1][1] + r[2][2] + 1
	var b, c, d float64
	if a > 0.5 {
		a = 0.5 * math.Sqrt(a)
		b = 0.25 * (r[2][1] - r[1][2]) / a
		c = 0.25 * (r[0][2] - r[2][0]) / a
		d = 0.25 * (r[1][0] - r[0][1]) / a
	} else {
		xd := 1 + r[0][0] - (r[1][1] + r[2][2])
		yd := 1 + r[1][1] - (r[0][0] + r[2][2])
		zd := 1 + r[2][2] - (r[0][0] + r[1][1])
		switch {
		case xd > 1:
			b = 0.5 * math.Sqrt(xd)
			c = 0.25 * (r[0][1] + r[1][0]) / b
			d = 0.25 * (r[0][2] + r[2][0]) / b
			a = 0.25 * (r[2][1] - r[1][2]) / b
		case yd > 1:
			c = 0.5 * math.Sqrt(yd)
			b = 0.25 * (r[0][1] + r[1][0]) / c
			d = 0.25 * (r[1][2] + r[2][1]) / c
			a = 0.25 * (r[0][2] - r[2][0]) / c
		default:
			d = 0.5 * math.Sqrt(zd)
			b = 0.25 * (r[0][2] + r[2][0]) / d
			c = 0.25 * (r[1][2] + r[2][1]) / d
			a = 0.25 * (r[1][0] - r[0][1]) / d
		}
		if a < 0 {
			b, c, d = -b, -c, -d
		}
	}
	p.quat = [3]float64{b, c, d}
	return p
}

func det3(m [3][3]float64) float64 {
	return m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
}

// nearestRotation returns the orthogonal polar factor of m by the Newton
// iteration X ← (X + X⁻ᵀ)/2, which converges quadratically for a
// non-singular m; a singular m gives the identity.
func nearestRotation(m [3][3]float64) [3][3]float64 {
	x := m
	for it := 0; it < 50; it++ {
		det := det3(x)
		if math.Abs(det) < 1e-12 || math.IsNaN(det) {
			return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
		}
		// inverse transpose = cofactor matrix / det
		var n [3][3]float64
		diff := 0.0
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				i1, i2 := (i+1)%3, (i+2)%3
				j1, j2 := (j+1)%3, (j+2)%3
				cof := x[i1][j1]*x[i2][j2] - x[i1][j2]*x[i2][j1]
				n[i][j] = 0.5 * (x[i][j] + cof/det)
				diff = math.Max(diff, math.Abs(n[i][j]-x[i][j]))
			}
		}
		x = n
		if diff < 1e-15 {
			break
		}
	}
	return x
}

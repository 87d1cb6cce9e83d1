package volume

// NIfTI-1 and NIfTI-2 reading, following the format definitions at
// https://nifti.nimh.nih.gov/nifti-1 and https://nifti.nimh.nih.gov/nifti-2
// and nibabel's interpretation of the header (the reference reader for the
// conformance tests):
//
//   - byte order: the one in which sizeof_hdr reads 348 (NIfTI-1) or 540
//     (NIfTI-2);
//   - intensity: value = raw*scl_slope + scl_inter, except that a scl_slope of
//     0 or a non-finite one means "no scaling" (nibabel's rule);
//   - affine: the sform if sform_code > 0, else the qform if qform_code > 0,
//     else the "base" affine from pixdim with a flipped x axis and the origin
//     at the centre of the image (nibabel's get_best_affine);
//   - qform: R(quaternion b,c,d with a = sqrt(1-b²-c²-d²)) · diag(pixdim1,
//     pixdim2, qfac·pixdim3) plus (qoffset_x,y,z); qfac = pixdim[0], taken as 1
//     unless it is -1 (nibabel fixes other values to 1 on load).

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// niftiCodes maps NIfTI datatype codes to sample types.
var niftiCodes = map[int]string{
	2: "uint8", 4: "int16", 8: "int32", 16: "float32", 64: "float64",
	256: "int8", 512: "uint16", 768: "uint32", 1024: "int64", 1280: "uint64",
}

// niftiUnsupported names the NIfTI datatypes fess does not read.
var niftiUnsupported = map[int]string{
	1: "binary (1 bit)", 32: "complex64", 128: "RGB24", 1536: "float128",
	1792: "complex128", 2048: "complex256", 2304: "RGBA32",
}

func niftiCode(name string) int {
	for c, n := range niftiCodes {
		if n == name {
			return c
		}
	}
	return 0
}

// niftiHeader holds the header fields fess uses, widened to NIfTI-2 types.
type niftiHeader struct {
	version    int // 1 or 2
	bo         binary.ByteOrder
	single     bool // magic n+1/n+2 (one file) rather than ni1/ni2 (pair)
	dim        [8]int64
	datatype   int
	pixdim     [8]float64
	voxOffset  float64
	sclSlope   float64
	sclInter   float64
	qformCode  int
	sformCode  int
	quatern    [3]float64 // b, c, d
	qoffset    [3]float64
	srow       [3][4]float64
	descrip    string
	hdrSize    int // 348 or 540
	extensions int
}

// decodeNIfTIHeader reads and checks a NIfTI-1 or NIfTI-2 header from s.
// wantSingle is true for .nii files (magic n+1/n+2), false for .hdr files.
func decodeNIfTIHeader(s *stream, wantSingle bool) (*niftiHeader, error) {
	buf := make([]byte, 540)
	if err := s.readFull(buf[:348], "NIfTI header"); err != nil {
		if s.pos < 4 {
			return nil, errs.Input(s.name, "not a NIfTI file: too short for a header (%d bytes)", s.pos)
		}
		return nil, err
	}
	h := &niftiHeader{}
	switch {
	case binary.LittleEndian.Uint32(buf) == 348:
		h.version, h.bo = 1, binary.LittleEndian
	case binary.BigEndian.Uint32(buf) == 348:
		h.version, h.bo = 1, binary.BigEndian
	case binary.LittleEndian.Uint32(buf) == 540:
		h.version, h.bo = 2, binary.LittleEndian
	case binary.BigEndian.Uint32(buf) == 540:
		h.version, h.bo = 2, binary.BigEndian
	default:
		return nil, errs.Input(s.name, "not a NIfTI file: sizeof_hdr is %d, want 348 (NIfTI-1) or 540 (NIfTI-2)",
			int32(binary.LittleEndian.Uint32(buf)))
	}
	var err error
	if h.version == 1 {
		h.hdrSize = 348
		err = h.parse1(s.name, buf[:348])
	} else {
		h.hdrSize = 540
		if err := s.readFull(buf[348:540], "NIfTI-2 header"); err != nil {
			return nil, err
		}
		err = h.parse2(s.name, buf)
	}
	if err != nil {
		return nil, err
	}
	if wantSingle && !h.single {
		return nil, errs.Input(s.name, "NIfTI magic says the voxel data is in a separate .img file; name a .hdr file to read a pair")
	}
	return h, h.check(s.name)
}

func (h *niftiHeader) parse1(name string, b []byte) error {
	bo := h.bo
	f32 := func(off int) float64 { return float64(math.Float32frombits(bo.Uint32(b[off:]))) }
	i16 := func(off int) int64 { return int64(int16(bo.Uint16(b[off:]))) }
	switch string(b[344:348]) {
	case "n+1\x00":
		h.single = true
	case "ni1\x00":
	default:
		return errs.Input(name, "wrong magic %q, want \"n+1\" or \"ni1\" (Analyze 7.5 headers are not supported)", cstring(b[344:348]))
	}
	for i := 0; i < 8; i++ {
		h.dim[i] = i16(40 + 2*i)
		h.pixdim[i] = f32(76 + 4*i)
	}
	h.datatype = int(i16(70))
	h.voxOffset = f32(108)
	h.sclSlope, h.sclInter = f32(112), f32(116)
	h.descrip = cstring(b[148:228])
	h.qformCode, h.sformCode = int(i16(252)), int(i16(254))
	for i := 0; i < 3; i++ {
		h.quatern[i] = f32(256 + 4*i)
		h.qoffset[i] = f32(268 + 4*i)
		for j := 0; j < 4; j++ {
			h.srow[i][j] = f32(280 + 16*i + 4*j)
		}
	}
	return nil
}

func (h *niftiHeader) parse2(name string, b []byte) error {
	bo := h.bo
	f64 := func(off int) float64 { return math.Float64frombits(bo.Uint64(b[off:])) }
	i64 := func(off int) int64 { return int64(bo.Uint64(b[off:])) }
	i32 := func(off int) int { return int(int32(bo.Uint32(b[off:]))) }
	switch string(b[4:12]) {
	case "n+2\x00\r\n\x1a\n":
		h.single = true
	case "ni2\x00\r\n\x1a\n":
	default:
		return errs.Input(name, "wrong NIfTI-2 magic %q, want \"n+2\" or \"ni2\"", cstring(b[4:8]))
	}
	h.datatype = int(int16(bo.Uint16(b[12:])))
	for i := 0; i < 8; i++ {
		h.dim[i] = i64(16 + 8*i)
		h.pixdim[i] = f64(104 + 8*i)
	}
	h.voxOffset = float64(i64(168))
	h.sclSlope, h.sclInter = f64(176), f64(184)
	h.descrip = cstring(b[240:320])
	h.qformCode, h.sformCode = i32(344), i32(348)
	for i := 0; i < 3; i++ {
		h.quatern[i] = f64(352 + 8*i)
		h.qoffset[i] = f64(376 + 8*i)
		for j := 0; j < 4; j++ {
			h.srow[i][j] = f64(400 + 32*i + 8*j)
		}
	}
	return nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// check validates dims, datatype, offset and scaling.
func (h *niftiHeader) check(name string) error {
	nd := h.dim[0]
	if nd < 1 || nd > 7 {
		return errs.Input(name, "dim[0] = %d, want 1..7", nd)
	}
	nvox := int64(1)
	for i := int64(1); i <= nd; i++ {
		d := h.dim[i]
		if d < 1 {
			return errs.Input(name, "dim[%d] = %d, want >= 1", i, d)
		}
		if d > 1<<31 {
			return errs.Input(name, "absurd dim[%d] = %d", i, d)
		}
		if i > 4 && d > 1 {
			return errs.Input(name, "%d-D image (dim[%d] = %d): only 3-D and 4-D images are supported", nd, i, d)
		}
		nvox *= d
		if nvox > maxVoxels {
			return errs.Input(name, "absurd dimensions %v: more than %d voxels", h.dim[1:nd+1], int64(maxVoxels))
		}
	}
	if _, ok := niftiCodes[h.datatype]; !ok {
		if n, ok := niftiUnsupported[h.datatype]; ok {
			return errs.Input(name, "unsupported datatype %s (code %d)", n, h.datatype)
		}
		return errs.Input(name, "unknown datatype code %d", h.datatype)
	}
	if math.IsNaN(h.voxOffset) || h.voxOffset < 0 || h.voxOffset > float64(MaxDataBytes) {
		return errs.Input(name, "absurd vox_offset %g", h.voxOffset)
	}
	if h.scaled() && (math.IsNaN(h.sclInter) || math.IsInf(h.sclInter, 0)) {
		return errs.Input(name, "scl_slope %g is valid but scl_inter %g is not", h.sclSlope, h.sclInter)
	}
	return nil
}

// scaled reports whether scl_slope/scl_inter apply (nibabel: slope 0 or
// non-finite means no scaling).
func (h *niftiHeader) scaled() bool {
	s := h.sclSlope
	return s != 0 && !math.IsNaN(s) && !math.IsInf(s, 0) && !(s == 1 && h.sclInter == 0)
}

// dims returns x, y, z, t sizes (1 for absent axes).
func (h *niftiHeader) dims() [4]int {
	var d [4]int
	for i := 0; i < 4; i++ {
		d[i] = 1
		if int64(i+1) <= h.dim[0] {
			d[i] = int(h.dim[i+1])
		}
	}
	return d
}

// dataOffset is where the voxel data starts: int(vox_offset), and for a
// single file never inside the header (nibabel fixes such offsets to 352).
func (h *niftiHeader) dataOffset() int64 {
	off := int64(h.voxOffset)
	if h.single && off < int64(h.hdrSize+4) {
		off = int64(h.hdrSize + 4)
	}
	return off
}

// affine returns the voxel-to-world affine by nibabel's rules and the rule used.
func (h *niftiHeader) affine() ([4][4]float64, string) {
	if h.sformCode != 0 {
		var a [4][4]float64
		for i := 0; i < 3; i++ {
			a[i] = h.srow[i]
		}
		a[3][3] = 1
		return a, "sform"
	}
	if h.qformCode != 0 {
		return h.qform(), "qform"
	}
	return h.baseAffine(), "pixdim"
}

// qform builds the affine from the quaternion (see the file comment).
func (h *niftiHeader) qform() [4][4]float64 {
	b, c, d := h.quatern[0], h.quatern[1], h.quatern[2]
	w2 := 1 - (b*b + c*c + d*d)
	a := 0.0
	if w2 > 0 {
		a = math.Sqrt(w2)
	}
	r := quatToMat(a, b, c, d)
	vox := [3]float64{math.Abs(h.pixdim[1]), math.Abs(h.pixdim[2]), math.Abs(h.pixdim[3])}
	if h.pixdim[0] == -1 {
		vox[2] = -vox[2]
	}
	var m [4][4]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			m[i][j] = r[i][j] * vox[j]
		}
		m[i][3] = h.qoffset[i]
	}
	m[3][3] = 1
	return m
}

// quatToMat is the rotation matrix of quaternion (a,b,c,d) = (w,x,y,z),
// normalised (identity when its norm is ~0).
func quatToMat(w, x, y, z float64) [3][3]float64 {
	n := w*w + x*x + y*y + z*z
	if n < 1e-15 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	s := 2 / n
	X, Y, Z := x*s, y*s, z*s
	wX, wY, wZ := w*X, w*Y, w*Z
	xX, xY, xZ := x*X, x*Y, x*Z
	yY, yZ, zZ := y*Y, y*Z, z*Z
	return [3][3]float64{
		{1 - (yY + zZ), xY - wZ, xZ + wY},
		{xY + wZ, 1 - (xX + zZ), yZ - wX},
		{xZ - wY, yZ + wX, 1 - (xX + yY)},
	}
}

// baseAffine is nibabel's fallback: diag(-pixdim1, pixdim2, pixdim3) with the
// world origin at the centre of the first three axes, (shape-1)/2.
func (h *niftiHeader) baseAffine() [4][4]float64 {
	shape := [3]float64{1, 1, 1}
	zoom := [3]float64{1, 1, 1}
	for i := 0; i < 3; i++ {
		if int64(i+1) <= h.dim[0] {
			shape[i] = float64(h.dim[i+1])
			zoom[i] = h.pixdim[i+1]
		}
	}
	zoom[0] = -zoom[0]
	var m [4][4]float64
	for i := 0; i < 3; i++ {
		m[i][i] = zoom[i]
		m[i][3] = -(shape[i] - 1) / 2 * zoom[i]
	}
	m[3][3] = 1
	return m
}

// spacing is |pixdim[1..3]|, falling back to the affine's column norms (and
// then 1) where pixdim is zero or not finite.
func (h *niftiHeader) spacing(aff [4][4]float64) [3]float64 {
	var sp [3]float64
	for i := 0; i < 3; i++ {
		p := math.Abs(h.pixdim[i+1])
		if int64(i+1) > h.dim[0] {
			p = 1
		}
		if !(p > 0) || math.IsInf(p, 0) {
			p = math.Sqrt(aff[0][i]*aff[0][i] + aff[1][i]*aff[1][i] + aff[2][i]*aff[2][i])
		}
		if !(p > 0) || math.IsInf(p, 0) {
			p = 1
		}
		sp[i] = p
	}
	return sp
}

// volume returns a Volume with the header's geometry and no data.
func (h *niftiHeader) volume() *Volume {
	aff, rule := h.affine()
	v := &Volume{
		Dims:     h.dims(),
		Spacing:  h.spacing(aff),
		Affine:   aff,
		Datatype: niftiCodes[h.datatype],
		Format:   "nifti1",
	}
	if h.version == 2 {
		v.Format = "nifti2"
	}
	v.Source = Source{
		ByteOrder:   byteOrderName(h.bo, niftiCodes[h.datatype]),
		Slope:       1,
		AffineRule:  rule,
		SformCode:   h.sformCode,
		QformCode:   h.qformCode,
		Description: h.descrip,
	}
	if h.scaled() {
		v.Source.Slope, v.Source.Inter = h.sclSlope, h.sclInter
	}
	return v
}

func byteOrderName(bo binary.ByteOrder, dt string) string {
	if d, ok := dtypeByName(dt); ok && d.size == 1 {
		return ""
	}
	if bo == binary.BigEndian {
		return "big"
	}
	return "little"
}

// readData reads the voxel data that starts at the current position of s.
func (h *niftiHeader) readData(s *stream, v *Volume) error {
	d, _ := dtypeByName(niftiCodes[h.datatype])
	nvox := int64(v.Dims[0]) * int64(v.Dims[1]) * int64(v.Dims[2]) * int64(v.Dims[3])
	data, err := s.readSamples(nvox, d, h.bo, h.scaled(), h.sclSlope, h.sclInter)
	if err != nil {
		return err
	}
	v.Data = data
	return s.finish()
}

// skipExtensions reads the 4-byte extender after a single-file header and
// the extensions up to the data offset, counting the well-formed ones.
func (h *niftiHeader) skipExtensions(s *stream) error {
	off := h.dataOffset()
	if s.exact && off > s.bound {
		return errs.Input(s.name, "vox_offset %d is past the end of the file (%d bytes)", off, s.bound)
	}
	if s.bound >= 0 && off > s.bound {
		return errs.Input(s.name, "vox_offset %d is more than this compressed file can hold", off)
	}
	if off < s.pos+4 {
		return nil
	}
	ext := make([]byte, 4)
	if err := s.readFull(ext, "NIfTI extender"); err != nil {
		return err
	}
	if ext[0] != 0 {
		hdr := make([]byte, 8)
		for s.pos+8 <= off {
			if err := s.readFull(hdr, "NIfTI extension"); err != nil {
				return err
			}
			esize := int64(int32(h.bo.Uint32(hdr)))
			if esize < 8 || s.pos-8+esize > off {
				break // malformed chain: the rest is skipped as padding
			}
			h.extensions++
			if err := s.skip(esize-8, "NIfTI extension"); err != nil {
				return err
			}
		}
	}
	return s.skip(off-s.pos, "padding before the voxel data")
}

// DecodeNIfTI decodes a single-file NIfTI-1 or NIfTI-2 image (.nii, gzipped
// or not, detected from the content) from r. name is used in error messages.
// When r is an in-memory reader its length bounds the header's promises.
func DecodeNIfTI(name string, r io.Reader) (*Volume, error) {
	s, err := newStream(name, r, sizedReader(r))
	if err != nil {
		return nil, err
	}
	return decodeNIfTI(s)
}

func decodeNIfTI(s *stream) (*Volume, error) {
	h, err := decodeNIfTIHeader(s, true)
	if err != nil {
		return nil, err
	}
	v := h.volume()
	if err := h.skipExtensions(s); err != nil {
		return nil, err
	}
	v.Source.Extensions = h.extensions
	if err := h.readData(s, v); err != nil {
		return nil, err
	}
	return v, nil
}

func readNIfTIFile(path string) (*Volume, error) {
	s, c, err := openStream(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return decodeNIfTI(s)
}

// pairPaths returns the header and image paths of a NIfTI pair given either.
func pairPaths(path string) (hdr, img string, err error) {
	lower := strings.ToLower(path)
	gz := strings.HasSuffix(lower, ".gz")
	base := path
	if gz {
		base = path[:len(path)-3]
	}
	stem, ext := base[:len(base)-4], base[len(base)-4:]
	other := map[string][]string{
		".hdr": {".img", ".img.gz", ".IMG", ".IMG.gz"},
		".HDR": {".IMG", ".IMG.gz", ".img", ".img.gz"},
		".img": {".hdr", ".hdr.gz", ".HDR", ".HDR.gz"},
		".IMG": {".HDR", ".HDR.gz", ".hdr", ".hdr.gz"},
	}[ext]
	if other == nil {
		other = []string{".img", ".hdr"}
	}
	found := ""
	for _, o := range other {
		if _, err := os.Stat(stem + o); err == nil {
			found = stem + o
			break
		}
	}
	isHdr := strings.EqualFold(ext, ".hdr")
	if found == "" {
		want := "image (.img)"
		if !isHdr {
			want = "header (.hdr)"
		}
		return "", "", errs.Input(path, "NIfTI pair: the %s file %s is missing", want, filepath.Base(stem+other[0]))
	}
	if isHdr {
		return path, found, nil
	}
	return found, path, nil
}

// readNIfTIPair reads a .hdr/.img pair; vox_offset is the data's offset in
// the .img file.
func readNIfTIPair(path string) (*Volume, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, inputOpenError(path, err)
	}
	// A .hdr is decoded before its .img is looked for, so that a file that
	// is not a NIfTI header is reported as such.
	var h *niftiHeader
	var err error
	if strings.HasSuffix(strings.TrimSuffix(strings.ToLower(path), ".gz"), ".hdr") {
		if h, err = readPairHeader(path); err != nil {
			return nil, err
		}
		if h.single { // single-file magic: the data follow the header
			return readNIfTIFile(path)
		}
	}
	hdrPath, imgPath, err := pairPaths(path)
	if err != nil {
		return nil, err
	}
	if h == nil {
		if h, err = readPairHeader(hdrPath); err != nil {
			return nil, err
		}
	}
	v := h.volume()
	is, ic, err := openStream(imgPath)
	if err != nil {
		return nil, err
	}
	defer ic.Close()
	if err := is.skip(int64(h.voxOffset), "padding before the voxel data"); err != nil {
		return nil, err
	}
	if err := h.readData(is, v); err != nil {
		return nil, err
	}
	return v, nil
}

func readPairHeader(path string) (*niftiHeader, error) {
	hs, hc, err := openStream(path)
	if err != nil {
		return nil, err
	}
	defer hc.Close()
	return decodeNIfTIHeader(hs, false)
}

// readNIfTIHeader reads only the header of a .nii or .hdr file: a Volume
// with geometry and no Data (used by tests on header-only files).
func readNIfTIHeader(path string) (*Volume, error) {
	s, c, err := openStream(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h, err := decodeNIfTIHeader(s, false)
	if err != nil {
		return nil, err
	}
	return h.volume(), nil
}

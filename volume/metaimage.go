package volume

// MetaImage (.mha, .mhd) reading, after the MetaIO description at
// https://itk.org/Wiki/ITK/MetaIO/Documentation: a text header of
// "Key = Value" lines ending with ElementDataFile, which is LOCAL (the data
// follows the header in the same file, .mha) or the name of a raw file
// beside the header (.mhd). CompressedData = True means a zlib stream.
//
// Geometry: MetaImage, like ITK, uses LPS world coordinates, NIfTI uses RAS.
// With spacing s (ElementSpacing, else ElementSize), origin o (Offset, else
// Position, else Origin) and direction D, where TransformMatrix (or Rotation,
// Orientation) lists D column by column as ITK reads it (entry i*N+j is
// component j of the direction of axis i), the voxel-to-LPS affine is
// [D·diag(s) | o]; the returned affine is diag(-1,-1,1)·that, i.e. the x and
// y rows negated, as ITK and nibabel do when converting to NIfTI.

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
)

var metaTypes = map[string]string{
	"MET_UCHAR": "uint8", "MET_CHAR": "int8", "MET_USHORT": "uint16", "MET_SHORT": "int16",
	"MET_UINT": "uint32", "MET_INT": "int32", "MET_ULONG": "uint32", "MET_LONG": "int32",
	"MET_ULONG_LONG": "uint64", "MET_LONG_LONG": "int64", "MET_FLOAT": "float32", "MET_DOUBLE": "float64",
}

// DecodeMetaImage decodes a MetaImage with its data in the same stream
// (.mha, ElementDataFile = LOCAL) from r; name is used in errors.
func DecodeMetaImage(name string, r io.Reader) (*Volume, error) {
	s := &stream{name: name, r: bufio.NewReader(r), bound: sizedReader(r)}
	s.exact = s.bound >= 0
	return decodeMetaImage(s, "")
}

func readMetaImageFile(path string) (*Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputOpenError(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return nil, errs.Input(path, "not a regular file")
	}
	s := &stream{name: path, r: bufio.NewReaderSize(f, 64<<10), bound: st.Size(), exact: true}
	return decodeMetaImage(s, filepath.Dir(path))
}

type metaHeader struct {
	fields map[string]string // keys lower-cased
	order  []string
}

// decodeMetaImage reads the header from s and the data from s (LOCAL) or
// from a file in dir (dir == "" forbids external files).
func decodeMetaImage(s *stream, dir string) (*Volume, error) {
	br, ok := s.r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(s.r)
		s.r = br
	}
	h := metaHeader{fields: map[string]string{}}
	for line := 0; ; line++ {
		if line > 1000 || s.pos > 1<<20 {
			return nil, errs.Input(s.name, "MetaImage header longer than 1000 lines or 1 MiB")
		}
		raw, err := readLine(br, 1<<16)
		s.pos += int64(len(raw))
		if err != nil {
			if err == io.EOF {
				if line == 0 && len(raw) == 0 {
					return nil, errs.Input(s.name, "empty file")
				}
				return nil, errs.Input(s.name, "MetaImage header ends without ElementDataFile (truncated)")
			}
			return nil, errs.WrapInput(s.name, err, "reading MetaImage header")
		}
		text := strings.TrimSpace(strings.TrimRight(string(raw), "\r\n"))
		if text == "" {
			continue
		}
		eq := strings.IndexByte(text, '=')
		if eq < 0 {
			return nil, errs.Input(s.name, "not a MetaImage header: line %d %q has no '='", line+1, truncate(text, 60))
		}
		key := strings.ToLower(strings.TrimSpace(text[:eq]))
		val := strings.TrimSpace(text[eq+1:])
		if line == 0 && key != "objecttype" && key != "ndims" && key != "comment" {
			return nil, errs.Input(s.name, "not a MetaImage header: first key is %q, want ObjectType or NDims", truncate(text[:eq], 40))
		}
		h.fields[key] = val
		h.order = append(h.order, key)
		if key == "elementdatafile" {
			break
		}
	}
	return h.decode(s, dir)
}

// readLine reads up to and including '\n', at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		out = append(out, b...)
		if len(out) > max {
			return out, fmt.Errorf("header line longer than %d bytes", max)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(out) > 0 {
			return out, nil // last line without newline; the caller sees EOF next
		}
		return out, err
	}
}

func (h metaHeader) floats(name string, key string, n int) ([]float64, bool, error) {
	v, ok := h.fields[key]
	if !ok {
		return nil, false, nil
	}
	parts := strings.Fields(v)
	if len(parts) < n {
		return nil, true, errs.Input(name, "MetaImage %s has %d values, want %d", key, len(parts), n)
	}
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		f, err := strconv.ParseFloat(parts[i], 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, true, errs.Input(name, "MetaImage %s: bad number %q", key, parts[i])
		}
		out[i] = f
	}
	return out, true, nil
}

func metaBool(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "true" || v == "1" || v == "yes"
}

func (h metaHeader) decode(s *stream, dir string) (*Volume, error) {
	name := s.name
	if ot, ok := h.fields["objecttype"]; ok && !strings.EqualFold(ot, "Image") {
		return nil, errs.Input(name, "MetaImage ObjectType is %q, want Image", ot)
	}
	nd, err := strconv.Atoi(h.fields["ndims"])
	if err != nil || nd < 1 || nd > 4 {
		return nil, errs.Input(name, "MetaImage NDims = %q, want 1..4", h.fields["ndims"])
	}
	ds := strings.Fields(h.fields["dimsize"])
	if len(ds) != nd {
		return nil, errs.Input(name, "MetaImage DimSize %q does not have NDims = %d values", h.fields["dimsize"], nd)
	}
	dims := [4]int{1, 1, 1, 1}
	nvox := int64(1)
	for i, f := range ds {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1 || n > 1<<31 {
			return nil, errs.Input(name, "absurd MetaImage DimSize %q", h.fields["dimsize"])
		}
		dims[i] = int(n)
		nvox *= n
		if nvox > maxVoxels {
			return nil, errs.Input(name, "absurd MetaImage DimSize %q: more than %d voxels", h.fields["dimsize"], int64(maxVoxels))
		}
	}
	et := strings.ToUpper(h.fields["elementtype"])
	dt, ok := metaTypes[et]
	if !ok {
		return nil, errs.Input(name, "unsupported MetaImage ElementType %q", h.fields["elementtype"])
	}
	if c, ok := h.fields["elementnumberofchannels"]; ok && strings.TrimSpace(c) != "1" {
		return nil, errs.Input(name, "MetaImage with %s channels per voxel is not supported", c)
	}
	if b, ok := h.fields["binarydata"]; ok && !metaBool(b) {
		return nil, errs.Input(name, "ASCII MetaImage data (BinaryData = False) is not supported")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if metaBool(h.fields["binarydatabyteordermsb"]) || metaBool(h.fields["elementbyteordermsb"]) {
		bo = binary.BigEndian
	}
	d, _ := dtypeByName(dt)

	// Geometry.
	n3 := min(nd, 3)
	sp := []float64{1, 1, 1}
	if v, ok, err := h.floats(name, "elementspacing", n3); err != nil {
		return nil, err
	} else if ok {
		copy(sp, v)
	} else if v, ok, err := h.floats(name, "elementsize", n3); err != nil {
		return nil, err
	} else if ok {
		copy(sp, v)
	}
	origin := []float64{0, 0, 0}
	for _, k := range []string{"offset", "position", "origin"} {
		v, ok, err := h.floats(name, k, n3)
		if err != nil {
			return nil, err
		}
		if ok {
			copy(origin, v)
			break
		}
	}
	dir3 := [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	for _, k := range []string{"transformmatrix", "rotation", "orientation"} {
		v, ok, err := h.floats(name, k, nd*nd)
		if err != nil {
			return nil, err
		}
		if ok {
			for ax := 0; ax < n3; ax++ {
				for c := 0; c < n3; c++ {
					dir3[c][ax] = v[ax*nd+c]
				}
			}
			break
		}
	}
	var aff [4][4]float64
	for r := 0; r < 3; r++ {
		sign := 1.0
		if r < 2 {
			sign = -1 // LPS -> RAS
		}
		for c := 0; c < 3; c++ {
			aff[r][c] = sign*dir3[r][c]*sp[c] + 0 // + 0 turns -0 into 0
		}
		aff[r][3] = sign*origin[r] + 0
	}
	aff[3][3] = 1
	var spacing [3]float64
	for i := range spacing {
		spacing[i] = math.Abs(sp[i])
		if spacing[i] == 0 {
			spacing[i] = 1
		}
	}
	v := &Volume{
		Dims: dims, Spacing: spacing, Affine: aff, Datatype: dt, Format: "metaimage",
		Source: Source{ByteOrder: byteOrderName(bo, dt), Slope: 1, AffineRule: "header"},
	}

	// Data.
	file := h.fields["elementdatafile"]
	src := s
	if !strings.EqualFold(file, "LOCAL") {
		if dir == "" {
			return nil, errs.Input(name, "MetaImage data is in another file (%q); only LOCAL data can be decoded from a stream", file)
		}
		if strings.HasPrefix(strings.ToUpper(file), "LIST") || strings.ContainsAny(file, "%") {
			return nil, errs.Input(name, "MetaImage ElementDataFile %q (file lists and patterns) is not supported", file)
		}
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, errs.Input(name, "MetaImage data file %s: %v", p, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, errs.WrapInput(p, err, "cannot stat")
		}
		src = &stream{name: p, r: bufio.NewReaderSize(f, 64<<10), bound: st.Size(), exact: true}
		hs := int64(0)
		if v, ok := h.fields["headersize"]; ok {
			hs, err = strconv.ParseInt(v, 10, 64)
			if err != nil || hs < -1 {
				return nil, errs.Input(name, "bad MetaImage HeaderSize %q", v)
			}
			if hs == -1 { // data at the end of the file
				hs = st.Size() - nvox*int64(d.size)
				if hs < 0 || metaBool(h.fields["compresseddata"]) {
					hs = 0
				}
			}
		}
		if err := src.skip(hs, "MetaImage HeaderSize bytes"); err != nil {
			return nil, err
		}
	}
	if metaBool(h.fields["compresseddata"]) {
		csize := src.left()
		if v, ok := h.fields["compresseddatasize"]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return nil, errs.Input(name, "bad MetaImage CompressedDataSize %q", v)
			}
			if csize >= 0 && n > csize {
				return nil, errs.Input(src.name, "CompressedDataSize %d is more than the %d bytes left in the file", n, csize)
			}
			csize = n
		}
		var cr io.Reader = src.r
		if csize >= 0 {
			cr = io.LimitReader(src.r, csize)
		}
		zr, err := zlib.NewReader(cr)
		if err != nil {
			return nil, errs.WrapInput(src.name, err, "bad zlib data")
		}
		bound := int64(-1)
		if csize >= 0 {
			bound = csize*maxDeflateRatio + 1<<16
		}
		src = &stream{name: src.name, r: zr, bound: bound, gz: true}
	}
	data, err := src.readSamples(nvox, d, bo, false, 1, 0)
	if err != nil {
		return nil, err
	}
	v.Data = data
	if err := src.finish(); err != nil {
		return nil, err
	}
	return v, nil
}

package volume

// NumPy .npy reading, following the format description at
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html:
// the magic "\x93NUMPY", a major and minor version byte, the header length
// (uint16 little-endian in version 1, uint32 in versions 2 and 3), then a
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (…)}.
//
// Axis convention: array element arr[i,j,k(,t)] is voxel x=i, y=j, z=k (and
// volume t), the same indexing as nibabel's get_fdata(), so
// np.save(f, nib.load(x).get_fdata()) reads back with the same voxels. A
// trailing singleton (channel) axis is dropped; 1-D and 2-D arrays get
// singleton y/z axes. An .npy file has no geometry: identity affine,
// spacing 1.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// DecodeNPY decodes a NumPy .npy array from r; name is used in errors.
func DecodeNPY(name string, r io.Reader) (*Volume, error) {
	s := &stream{name: name, r: r, bound: sizedReader(r)}
	s.exact = s.bound >= 0
	return decodeNPY(s)
}

func readNPYFile(path string) (*Volume, error) {
	s, c, err := openStream(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if s.gz {
		return nil, errs.Input(path, "gzip-compressed .npy is not supported; gunzip it first")
	}
	return decodeNPY(s)
}

func decodeNPY(s *stream) (*Volume, error) {
	pre := make([]byte, 8)
	if err := s.readFull(pre, "NPY preamble"); err != nil {
		return nil, err
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, errs.Input(s.name, "wrong magic %q, want \"\\x93NUMPY\" (not a .npy file)", pre[:6])
	}
	var hlen int64
	switch pre[6] {
	case 1:
		b := make([]byte, 2)
		if err := s.readFull(b, "NPY header length"); err != nil {
			return nil, err
		}
		hlen = int64(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b := make([]byte, 4)
		if err := s.readFull(b, "NPY header length"); err != nil {
			return nil, err
		}
		hlen = int64(binary.LittleEndian.Uint32(b))
	default:
		return nil, errs.Input(s.name, "unsupported .npy version %d.%d", pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return nil, errs.Input(s.name, "absurd .npy header length %d", hlen)
	}
	if l := s.left(); l >= 0 && hlen > l {
		return nil, errs.Input(s.name, ".npy header length %d runs past the end of the file", hlen)
	}
	hb := make([]byte, hlen)
	if err := s.readFull(hb, "NPY header"); err != nil {
		return nil, err
	}
	descr, fortran, shape, err := parseNPYHeader(string(hb))
	if err != nil {
		return nil, errs.Input(s.name, "bad .npy header %q: %v", truncate(string(hb), 120), err)
	}
	d, bo, err := npyDtype(descr)
	if err != nil {
		return nil, errs.Input(s.name, "%v", err)
	}
	for len(shape) > 4 && shape[len(shape)-1] == 1 {
		shape = shape[:len(shape)-1]
	}
	if len(shape) == 4 && shape[3] == 1 {
		shape = shape[:3]
	}
	if len(shape) == 0 || len(shape) > 4 {
		return nil, errs.Input(s.name, "array of shape %v: want 1 to 4 axes (x, y, z, t)", shape)
	}
	dims := [4]int{1, 1, 1, 1}
	nvox := int64(1)
	for i, n := range shape {
		if n < 1 || n > 1<<31 {
			return nil, errs.Input(s.name, "absurd array shape %v", shape)
		}
		dims[i] = int(n)
		nvox *= n
		if nvox > maxVoxels {
			return nil, errs.Input(s.name, "absurd array shape %v: more than %d voxels", shape, int64(maxVoxels))
		}
	}
	var data []float32
	if d.name == "float16" {
		data, err = readFloat16(s, nvox, bo)
	} else {
		data, err = s.readSamples(nvox, d, bo, false, 1, 0)
	}
	if err != nil {
		return nil, err
	}
	if !fortran && len(shape) > 1 {
		data = cToFortran(data, dims)
	}
	v := &Volume{
		Dims:     dims,
		Data:     data,
		Spacing:  [3]float64{1, 1, 1},
		Affine:   [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}},
		Datatype: d.name,
		Format:   "npy",
		Source:   Source{ByteOrder: byteOrderName(bo, d.name), Slope: 1, AffineRule: "identity"},
	}
	if d.name == "float16" {
		v.Source.ByteOrder = byteOrderName(bo, "int16")
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// cToFortran reorders row-major (last axis fastest) data of shape dims
// into x-fastest order.
func cToFortran(src []float32, dims [4]int) []float32 {
	out := make([]float32, len(src))
	X, Y, Z, T := dims[0], dims[1], dims[2], dims[3]
	// C strides of (X, Y, Z, T) with absent trailing axes of size 1.
	st := [4]int{Y * Z * T, Z * T, T, 1}
	o := 0
	for t := 0; t < T; t++ {
		for k := 0; k < Z; k++ {
			for j := 0; j < Y; j++ {
				base := j*st[1] + k*st[2] + t*st[3]
				for i := 0; i < X; i++ {
					out[o] = src[base+i*st[0]]
					o++
				}
			}
		}
	}
	return out
}

// npyDtype parses a descr string such as "<f4", "|u1", ">i2".
func npyDtype(descr string) (dtype, binary.ByteOrder, error) {
	if len(descr) < 3 {
		return dtype{}, nil, fmt.Errorf("unsupported .npy dtype %q", descr)
	}
	var bo binary.ByteOrder
	switch descr[0] {
	case '<', '|', '=':
		bo = binary.LittleEndian
	case '>':
		bo = binary.BigEndian
	default:
		return dtype{}, nil, fmt.Errorf("unsupported .npy dtype %q", descr)
	}
	name := map[string]string{
		"b1": "bool", "u1": "uint8", "i1": "int8", "u2": "uint16", "i2": "int16",
		"u4": "uint32", "i4": "int32", "u8": "uint64", "i8": "int64",
		"f2": "float16", "f4": "float32", "f8": "float64",
	}[descr[1:]]
	if name == "float16" {
		return dtype{"float16", 2, 'f'}, bo, nil
	}
	d, ok := dtypeByName(name)
	if !ok {
		return dtype{}, nil, fmt.Errorf("unsupported .npy dtype %q (want bool, integer or float)", descr)
	}
	return d, bo, nil
}

// readFloat16 reads IEEE half-precision samples.
func readFloat16(s *stream, nvox int64, bo binary.ByteOrder) ([]float32, error) {
	raw, err := s.readSamples(nvox, dtype{"uint16", 2, 'u'}, bo, false, 1, 0)
	if err != nil {
		return nil, err
	}
	for i, r := range raw {
		raw[i] = halfToFloat(uint16(r))
	}
	return raw, nil
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | frac<<13)
}

// parseNPYHeader parses the header dict literal.
func parseNPYHeader(h string) (descr string, fortran bool, shape []int64, err error) {
	p := &pyParser{s: h}
	p.ws()
	if !p.eat('{') {
		return "", false, nil, fmt.Errorf("want '{'")
	}
	seen := map[string]bool{}
	for {
		p.ws()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return "", false, nil, err
		}
		p.ws()
		if !p.eat(':') {
			return "", false, nil, fmt.Errorf("want ':' after %q", key)
		}
		p.ws()
		switch key {
		case "descr":
			descr, err = p.str()
		case "fortran_order":
			fortran, err = p.boolean()
		case "shape":
			shape, err = p.tuple()
		default:
			return "", false, nil, fmt.Errorf("unexpected key %q", key)
		}
		if err != nil {
			return "", false, nil, err
		}
		seen[key] = true
		p.ws()
		if p.eat(',') {
			continue
		}
		p.ws()
		if !p.eat('}') {
			return "", false, nil, fmt.Errorf("want ',' or '}'")
		}
		break
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, fmt.Errorf("missing key %q", k)
		}
	}
	return descr, fortran, shape, nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) ws() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\r\n", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("want a string at offset %d", p.i)
	}
	q := p.s[p.i]
	j := strings.IndexByte(p.s[p.i+1:], q)
	if j < 0 {
		return "", fmt.Errorf("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+j]
	p.i += j + 2
	return v, nil
}

func (p *pyParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, fmt.Errorf("want True or False at offset %d", p.i)
}

func (p *pyParser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("want '(' for shape")
	}
	var out []int64
	for {
		p.ws()
		if p.eat(')') {
			return out, nil
		}
		j := p.i
		for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '-') {
			j++
		}
		// numpy may write Python 2 longs as 3L.
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad shape entry %q", p.s[p.i:j])
		}
		p.i = j
		p.eat('L')
		out = append(out, n)
		if len(out) > 32 {
			return nil, fmt.Errorf("too many axes")
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		p.ws()
		if !p.eat(')') {
			return nil, fmt.Errorf("want ',' or ')' in shape")
		}
		return out, nil
	}
}

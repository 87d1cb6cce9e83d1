// Package safetensors reads and writes the safetensors tensor file format,
// the format PyTorch, JAX and the Hugging Face tools exchange weights in:
//
//	u64 N (little-endian)      length of the header
//	N bytes of JSON            {"NAME": {"dtype": "F32", "shape": [..],
//	                            "data_offsets": [begin, end]}, …,
//	                            "__metadata__": {"key": "value", …}}
//	the data section           every tensor's raw little-endian values
//
// Offsets count from the start of the data section; the header may be
// padded with spaces. Encode pads it so the data section starts at a
// multiple of 8 bytes, writes the header keys sorted and the tensors in the
// order given, and stores the hex SHA-256 of the data section as the
// metadata entry "fess_sha256"; Decode verifies that checksum when present.
//
// Decode trusts nothing in the file: the header length is checked against
// the file size before anything is allocated, every dtype must be known,
// every tensor's byte span must match its dtype and shape, and the spans must
// tile the data section exactly (no gaps, overlaps or trailing bytes).
// Faults are *errs.InputError values naming the file.
package safetensors

// Written by hand: the only Go implementation on the module proxy
// (github.com/nlpodyssey/safetensors) is an unmaintained snapshot, and this
// keeps the validation of untrusted files in our hands.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
)

// FessVersion is the version of fess written as the "fess_version"
// metadata entry of the files fess writes.
const FessVersion = "0.2.0"

// ChecksumKey is the metadata entry holding the hex SHA-256 of the data
// section.
const ChecksumKey = "fess_sha256"

// metadataKey is the reserved header key of the string→string metadata.
const metadataKey = "__metadata__"

// maxRank bounds the number of dimensions a tensor may have.
const maxRank = 64

// Tensor is one named tensor: DType is one of "F32", "F64", "I64", "I32",
// "U8", "BF16", "F16", "BOOL"; Data holds the raw little-endian values,
// DTypeSize(DType) bytes each, row-major (C order) in Shape.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// dtypeSizes are the bytes per element of the known dtypes.
var dtypeSizes = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "U8": 1, "BOOL": 1,
}

// DTypeSize returns the bytes per element of dtype, or 0 if it is unknown.
func DTypeSize(dtype string) int { return dtypeSizes[dtype] }

// F32 returns a float32 tensor holding a little-endian copy of v.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: "F32", Shape: append([]int{}, shape...), Data: b}
}

// I64 returns an int64 tensor holding a little-endian copy of v.
func I64(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: "I64", Shape: append([]int{}, shape...), Data: b}
}

// Len returns the number of elements the shape holds (1 for a scalar), or
// -1 if a dimension is negative or the product overflows.
func (t Tensor) Len() int { return numel(t.Shape) }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt/d {
			return -1
		}
		n *= d
	}
	return n
}

// check reports a tensor whose data does not match its dtype and shape.
func (t Tensor) check() error {
	size := DTypeSize(t.DType)
	if size == 0 {
		return fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	n := t.Len()
	if n < 0 || n > math.MaxInt/size {
		return fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if len(t.Data) != n*size {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, has %d", t.Name, t.DType, t.Shape, n*size, len(t.Data))
	}
	return nil
}

// Float32s returns the values of an F32 tensor, or of an F16 or BF16 one
// widened exactly to float32.
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := make([]float32, t.Len())
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case "F16":
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor %q is %s, want F32 (or F16/BF16)", t.Name, t.DType)
	}
	return out, nil
}

// Int64s returns the values of an I64 tensor, or of an I32 one widened.
func (t Tensor) Int64s() ([]int64, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := make([]int64, t.Len())
	switch t.DType {
	case "I64":
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
	case "I32":
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %q is %s, want I64 (or I32)", t.Name, t.DType)
	}
	return out, nil
}

// halfToFloat32 widens an IEEE 754 binary16 value.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: normalise.
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	}
}

// File is a decoded safetensors file: its tensors in data-section order and
// its metadata (nil if the header had none).
type File struct {
	Tensors  []Tensor
	Metadata map[string]string
}

// Get returns the tensor called name.
func (f *File) Get(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// headerEntry is one tensor's header object.
type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Encode writes tensors (in the given order) and meta, plus the checksum
// entry, in the safetensors format. Names must be unique and non-empty and
// every tensor's data must match its dtype and shape.
func Encode(w io.Writer, tensors []Tensor, meta map[string]string) error {
	header := make(map[string]any, len(tensors)+1)
	h := sha256.New()
	var off int64
	for _, t := range tensors {
		if t.Name == "" || t.Name == metadataKey {
			return fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("safetensors: %w", err)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
		h.Write(t.Data)
	}
	md := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		md[k] = v
	}
	md[ChecksumKey] = hex.EncodeToString(h.Sum(nil))
	header[metadataKey] = md
	js, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return fmt.Errorf("safetensors: encode header: %w", err)
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes tensors and meta to path atomically (temporary file,
// sync, rename), so a killed process leaves the old file or the new one.
func WriteFile(path string, tensors []Tensor, meta map[string]string) error {
	if err := atomicio.Write(path, 0o644, func(w io.Writer) error { return Encode(w, tensors, meta) }); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadFile reads and validates the safetensors file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.WrapInput(path, err, "cannot read safetensors file")
	}
	return Decode(data, path)
}

// Decode parses and validates a safetensors file held in data; name (the
// file's path) is used in errors. The tensors' Data share data's memory.
func Decode(data []byte, name string) (*File, error) {
	bad := func(format string, args ...any) (*File, error) {
		return nil, errs.Input(name, "not a valid safetensors file: "+format, args...)
	}
	if len(data) == 0 {
		return bad("the file is empty")
	}
	if len(data) < 8 {
		return bad("truncated: %d bytes, shorter than the 8-byte header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > uint64(len(data)-8) {
		return bad("truncated: the header is %d bytes long but only %d bytes follow the length", hlen, len(data)-8)
	}
	hdr := data[8 : 8+hlen]
	body := data[8+hlen:]
	if len(bytes.TrimLeft(hdr, " \t\r\n")) == 0 || bytes.TrimLeft(hdr, " \t\r\n")[0] != '{' {
		return bad("the header is not a JSON object")
	}
	raw, err := headerObject(hdr)
	if err != nil {
		return bad("header: %v", err)
	}
	f := &File{}
	type span struct {
		begin, end int64
		idx        int
	}
	var spans []span
	for _, kv := range raw {
		if kv.key == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(kv.val, &md); err != nil {
				return bad("%s must map strings to strings: %v", metadataKey, err)
			}
			f.Metadata = md
			continue
		}
		if kv.key == "" {
			return bad("a tensor has an empty name")
		}
		var e struct {
			DType       *string  `json:"dtype"`
			Shape       *[]int64 `json:"shape"`
			DataOffsets *[]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(kv.val, &e); err != nil {
			return bad("tensor %q: malformed entry: %v", kv.key, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return bad("tensor %q: entry needs dtype, shape and data_offsets", kv.key)
		}
		size := DTypeSize(*e.DType)
		if size == 0 {
			return bad("tensor %q: unknown dtype %q", kv.key, *e.DType)
		}
		if len(*e.Shape) > maxRank {
			return bad("tensor %q: %d dimensions (at most %d)", kv.key, len(*e.Shape), maxRank)
		}
		// Bound the element count by the data section before trusting it.
		off := *e.DataOffsets
		if len(off) != 2 {
			return bad("tensor %q: data_offsets must be [begin, end]", kv.key)
		}
		b, en := off[0], off[1]
		if b < 0 || en < b {
			return bad("tensor %q: invalid data_offsets [%d, %d]", kv.key, b, en)
		}
		if en > int64(len(body)) {
			return bad("truncated: tensor %q ends at byte %d of the data section, which holds %d", kv.key, en, len(body))
		}
		shape := make([]int, len(*e.Shape))
		empty := false
		for i, d := range *e.Shape {
			if d < 0 {
				return bad("tensor %q: negative dimension in shape %v", kv.key, *e.Shape)
			}
			empty = empty || d == 0
			shape[i] = int(d)
		}
		// The element count is bounded by the span before it is trusted,
		// so the product cannot overflow.
		count, limit := int64(1), (en-b)/int64(size)
		if empty {
			count = 0
		}
		for _, d := range *e.Shape {
			if count == 0 {
				break
			}
			if count > limit/d {
				return bad("tensor %q: %s %v needs more bytes than its data_offsets span of %d", kv.key, *e.DType, *e.Shape, en-b)
			}
			count *= d
		}
		if want := count * int64(size); en-b != want {
			return bad("tensor %q: %s %v needs %d bytes, its data_offsets span %d", kv.key, *e.DType, *e.Shape, want, en-b)
		}
		spans = append(spans, span{b, en, len(f.Tensors)})
		f.Tensors = append(f.Tensors, Tensor{Name: kv.key, DType: *e.DType, Shape: shape, Data: body[b:en:en]})
	}
	// The spans must tile the data section: sorted by start, each begins
	// where the previous one ended and the last ends at the file's end.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		if spans[i].end != spans[j].end {
			return spans[i].end < spans[j].end
		}
		return f.Tensors[spans[i].idx].Name < f.Tensors[spans[j].idx].Name
	})
	pos := int64(0)
	for _, s := range spans {
		t := f.Tensors[s.idx]
		if s.begin < pos {
			return bad("tensor %q overlaps another tensor's data (bytes %d–%d)", t.Name, s.begin, s.end)
		}
		if s.begin > pos {
			return bad("bytes %d–%d of the data section belong to no tensor", pos, s.begin)
		}
		pos = s.end
	}
	if pos != int64(len(body)) {
		return bad("%d trailing bytes after the last tensor", int64(len(body))-pos)
	}
	ordered := make([]Tensor, len(spans))
	for i, s := range spans {
		ordered[i] = f.Tensors[s.idx]
	}
	f.Tensors = ordered
	if want, ok := f.Metadata[ChecksumKey]; ok {
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want) {
			return nil, errs.Input(name, "checksum mismatch: the data section is corrupted or was modified (the header records SHA-256 %s, the data has %s)", want, got)
		}
	}
	return f, nil
}

type keyValue struct {
	key string
	val json.RawMessage
}

// headerObject splits the top-level JSON object into its members in file
// order, rejecting duplicate keys (which encoding/json would silently merge)
// and anything after the closing brace but whitespace.
func headerObject(hdr []byte) ([]keyValue, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	var out []keyValue
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("invalid JSON: expected a key")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate name %q", key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("invalid JSON at %q: %v", key, err)
		}
		out = append(out, keyValue{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if rest := bytes.TrimLeft(hdr[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the JSON object", len(rest))
	}
	return out, nil
}

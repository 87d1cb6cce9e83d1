package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

func sample() []Tensor {
	return []Tensor{
		F32("z.weight", []int{2, 1, 3}, []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.25}),
		I64("a.steps", []int{3}, []int64{0, -1, math.MaxInt64}),
		F32("scalar", nil, []float32{7}),
		F32("empty", []int{0, 5}, nil),
		{Name: "mask", DType: "U8", Shape: []int{4}, Data: []byte{0, 1, 2, 255}},
	}
}

func encode(t *testing.T, ts []Tensor, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, ts, meta); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	ts := sample()
	data := encode(t, ts, map[string]string{"config": `{"a":1}`})
	n := binary.LittleEndian.Uint64(data)
	if (8+n)%8 != 0 {
		t.Fatalf("data section starts at %d, not 8-aligned", 8+n)
	}
	// Header keys come out sorted; tensors lie in the order given.
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+n]))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v json.RawMessage
		dec.Decode(&v)
	}
	want := []string{"__metadata__", "a.steps", "empty", "mask", "scalar", "z.weight"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("header keys %v, want %v", keys, want)
	}
	f, err := Decode(data, "x.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(ts))
	}
	for i, got := range f.Tensors {
		w := ts[i]
		if w.Shape == nil {
			w.Shape = []int{}
		}
		if got.Name != w.Name || got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) || !bytes.Equal(got.Data, w.Data) {
			t.Fatalf("tensor %d: got %+v, want %+v", i, got, w)
		}
	}
	if f.Metadata["config"] != `{"a":1}` || len(f.Metadata[ChecksumKey]) != 64 {
		t.Fatalf("metadata %v", f.Metadata)
	}
	w, ok := f.Get("z.weight")
	if !ok {
		t.Fatal("Get z.weight")
	}
	v, err := w.Float32s()
	if err != nil || v[1] != -2 || !math.IsInf(float64(v[3]), 1) {
		t.Fatalf("Float32s %v %v", v, err)
	}
	iv, err := f.Tensors[1].Int64s()
	if err != nil || iv[2] != math.MaxInt64 || iv[1] != -1 {
		t.Fatalf("Int64s %v %v", iv, err)
	}
	if _, err := f.Tensors[1].Float32s(); err == nil {
		t.Fatal("Float32s of an I64 tensor succeeded")
	}
	if _, err := w.Int64s(); err == nil {
		t.Fatal("Int64s of an F32 tensor succeeded")
	}
	if _, ok := f.Get("nope"); ok {
		t.Fatal("Get of a missing name succeeded")
	}
	// Encoding is deterministic.
	if !bytes.Equal(data, encode(t, ts, map[string]string{"config": `{"a":1}`})) {
		t.Fatal("two encodings differ")
	}
}

func TestEncodeRejects(t *testing.T) {
	for name, ts := range map[string][]Tensor{
		"duplicate":  {F32("a", []int{1}, []float32{1}), F32("a", []int{1}, []float32{2})},
		"empty name": {F32("", []int{1}, []float32{1})},
		"metadata":   {F32("__metadata__", []int{1}, []float32{1})},
		"short data": {{Name: "a", DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}},
		"dtype":      {{Name: "a", DType: "Q7", Shape: []int{1}, Data: make([]byte, 4)}},
		"negative":   {{Name: "a", DType: "U8", Shape: []int{-1}}},
	} {
		if err := Encode(&bytes.Buffer{}, ts, nil); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(p, sample(), nil); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 5 || f.Metadata[ChecksumKey] == "" {
		t.Fatalf("%+v", f)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("folder holds %d entries, want only the file", len(ents))
	}
	_, err = ReadFile(filepath.Join(dir, "missing.safetensors"))
	var ie *errs.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestPythonFixture reads testdata/python.safetensors, written by
// testdata/make_python_fixture.py with the reference library's layout.
func TestPythonFixture(t *testing.T) {
	f, err := ReadFile("testdata/python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Fatalf("metadata %v", f.Metadata)
	}
	f32 := func(name string) []float32 {
		tt, ok := f.Get(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		v, err := tt.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	i64 := func(name string) []int64 {
		tt, _ := f.Get(name)
		v, err := tt.Int64s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if w, _ := f.Get("conv.weight"); !reflect.DeepEqual(w.Shape, []int{2, 3}) {
		t.Fatalf("conv.weight shape %v", w.Shape)
	}
	if v := f32("conv.weight"); !reflect.DeepEqual(v, []float32{1, -2, 0.5, 3.25, 0, -0.125}) {
		t.Fatalf("conv.weight %v", v)
	}
	if v := f32("bf"); !reflect.DeepEqual(v, []float32{1.5, -2}) {
		t.Fatalf("bf %v", v)
	}
	if v := f32("half"); !reflect.DeepEqual(v, []float32{1, -2.5, float32(math.Ldexp(1, -24))}) {
		t.Fatalf("half %v", v)
	}
	if v := i64("steps"); !reflect.DeepEqual(v, []int64{7, -3}) {
		t.Fatalf("steps %v", v)
	}
	if v := i64("counts"); !reflect.DeepEqual(v, []int64{40000, -1}) {
		t.Fatalf("counts %v", v)
	}
	sc, _ := f.Get("scale")
	if len(sc.Shape) != 0 || sc.DType != "F64" || math.Float64frombits(binary.LittleEndian.Uint64(sc.Data)) != 2.5 {
		t.Fatalf("scale %+v", sc)
	}
	if m, _ := f.Get("mask"); !bytes.Equal(m.Data, []byte{0, 255, 3, 4}) {
		t.Fatalf("mask %+v", m)
	}
	if e, _ := f.Get("empty"); len(e.Data) != 0 || !reflect.DeepEqual(e.Shape, []int{0, 4}) {
		t.Fatalf("empty %+v", e)
	}
	if len(f.Tensors) != 9 {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
}

// TestHandBuilt decodes a minimal file built byte by byte, without
// metadata (so without a checksum) and with an unpadded header.
func TestHandBuilt(t *testing.T) {
	h := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	b = append(b, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0) // 1.0, -2.0
	f, err := Decode(b, "hand")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Tensors[0].Float32s()
	if !reflect.DeepEqual(v, []float32{1, -2}) || f.Metadata != nil {
		t.Fatalf("%v %v", v, f.Metadata)
	}
}

func build(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestDecodeRejects(t *testing.T) {
	good := encode(t, sample(), nil)
	flip := append([]byte(nil), good...)
	flip[len(flip)-3] ^= 0x10
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge, math.MaxUint64)
	cases := []struct {
		name, fault string
		data        []byte
	}{
		{"empty", "empty", nil},
		{"short", "truncated", []byte{1, 2, 3}},
		{"huge header length", "truncated", huge},
		{"truncated", "truncated", good[:len(good)-5]},
		{"corrupt data", "checksum mismatch", flip},
		{"not json", "header", build("{nope", nil)},
		{"array", "not a JSON object", build("[1]", nil)},
		{"trailing json", "after the JSON object", build(`{} {}`, nil)},
		{"dtype", "unknown dtype", build(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"span", "data_offsets span of 4", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"out of bounds", "truncated", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4))},
		{"overlap", "overlaps", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"gap", "belong to no tensor", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8))},
		{"trailing data", "trailing bytes", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 6))},
		{"duplicate", "duplicate name", build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2))},
		{"negative dim", "negative dimension", build(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, nil)},
		{"giant shape", "needs more bytes than its data_offsets span", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}`, nil)},
		{"reversed offsets", "invalid data_offsets", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4))},
		{"three offsets", "data_offsets must be", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0,0]}}`, nil)},
		{"missing field", "needs dtype", build(`{"a":{"dtype":"U8","shape":[0]}}`, nil)},
		{"float dim", "malformed entry", build(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`, nil)},
		{"metadata type", "must map strings", build(`{"__metadata__":{"a":1}}`, nil)},
		{"empty name", "empty name", build(`{"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil)},
	}
	for _, c := range cases {
		_, err := Decode(c.data, "bad.safetensors")
		var ie *errs.InputError
		if !errors.As(err, &ie) || ie.File != "bad.safetensors" || errs.ExitCode(err) != 2 {
			t.Errorf("%s: err %v, want an input error naming the file", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.fault) {
			t.Errorf("%s: %q does not mention %q", c.name, err, c.fault)
		}
	}
}

// TestEveryPrefixFails: no proper prefix of a valid file decodes.
func TestEveryPrefixFails(t *testing.T) {
	good := encode(t, sample(), map[string]string{"k": "v"})
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n], "p"); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded", n, len(good))
		}
	}
}

func TestHalf(t *testing.T) {
	for h, want := range map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0400: float32(math.Ldexp(1, -14)),
		0x03ff: float32(math.Ldexp(1023, -24)), 0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1)),
	} {
		if got := halfToFloat32(h); got != want {
			t.Errorf("half %#04x = %v, want %v", h, got, want)
		}
	}
	if v := halfToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("half NaN = %v", v)
	}
	if v := halfToFloat32(0x8000); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("half -0 = %v", v)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// a file that decodes to the same tensors.
func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	Encode(&b, sample(), map[string]string{"k": "v"})
	f.Add(b.Bytes())
	if py, err := os.ReadFile("testdata/python.safetensors"); err == nil {
		f.Add(py)
	}
	f.Add(build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add([]byte{})
	f.Add(build(`{}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data, "fuzz")
		if err != nil {
			var ie *errs.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, file.Tensors, file.Metadata); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := Decode(out.Bytes(), "again")
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("%d tensors, then %d", len(file.Tensors), len(again.Tensors))
		}
		for i := range again.Tensors {
			a, b := file.Tensors[i], again.Tensors[i]
			if a.Name != b.Name || a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("tensor %d changed: %+v → %+v", i, a, b)
			}
		}
	})
}

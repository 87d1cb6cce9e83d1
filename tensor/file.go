package tensor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/fess-seg/fess/internal/atomicio"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/fess-seg/fess/errs"
)

// Record is one named entry of a state file: either a float32 tensor
// (parameters, gradients' moments, BatchNorm running statistics) or a vector
// of int64 (step counters, RNG states). Exactly one of Tensor and Ints is set.
type Record struct {
	Name   string
	Tensor *Tensor
	Ints   []int64
}

// Magic opens every state file.
const Magic = "FESSST01"

// Encode writes records in the state format (all integers little-endian):
//
//	"FESSST01"  uint32 count
//	count × { uint32 len(name), name bytes, uint8 kind (0 float32, 1 int64),
//	          uint32 ndim, ndim × int64 dims, values (float32 or int64) }
//	uint32 CRC-32 (IEEE) of every preceding byte
//
// An int64 record has ndim 1.
func Encode(w io.Writer, recs []Record) error {
	h := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	var b8 [8]byte
	u32 := func(v uint32) { binary.LittleEndian.PutUint32(b8[:4], v); bw.Write(b8[:4]) }
	u64 := func(v uint64) { binary.LittleEndian.PutUint64(b8[:], v); bw.Write(b8[:]) }
	bw.WriteString(Magic)
	u32(uint32(len(recs)))
	for _, r := range recs {
		if (r.Tensor == nil) == (r.Ints == nil) {
			return fmt.Errorf("tensor: record %q must hold exactly one of Tensor and Ints", r.Name)
		}
		u32(uint32(len(r.Name)))
		bw.WriteString(r.Name)
		if r.Tensor != nil {
			bw.WriteByte(0)
			u32(uint32(len(r.Tensor.Shape)))
			for _, d := range r.Tensor.Shape {
				u64(uint64(d))
			}
			for _, v := range r.Tensor.Data {
				u32(math.Float32bits(v))
			}
		} else {
			bw.WriteByte(1)
			u32(1)
			u64(uint64(len(r.Ints)))
			for _, v := range r.Ints {
				u64(uint64(v))
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b8[:4], h.Sum32())
	_, err := w.Write(b8[:4])
	return err
}

// Decode reads a state file's records from data. name is used in errors.
// Every length is checked against the bytes present before allocating.
func Decode(name string, data []byte) ([]Record, error) {
	if len(data) < len(Magic)+8 || string(data[:len(Magic)]) != Magic {
		return nil, errs.Input(name, "not a fess state file (bad magic or too short)")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, errs.Input(name, "checksum mismatch (file truncated or corrupted)")
	}
	r := bytes.NewReader(body[len(Magic):])
	fail := func(what string) ([]Record, error) {
		return nil, errs.Input(name, "truncated or malformed %s at byte %d", what, len(body)-r.Len())
	}
	var n uint32
	if binary.Read(r, binary.LittleEndian, &n) != nil {
		return fail("record count")
	}
	var recs []Record
	for i := 0; i < int(n); i++ {
		var nl uint32
		if binary.Read(r, binary.LittleEndian, &nl) != nil || int64(nl) > int64(r.Len()) {
			return fail("record name")
		}
		nb := make([]byte, nl)
		io.ReadFull(r, nb)
		kind, err := r.ReadByte()
		if err != nil || kind > 1 {
			return fail("record kind")
		}
		var nd uint32
		if binary.Read(r, binary.LittleEndian, &nd) != nil || nd > 16 || (kind == 1 && nd != 1) {
			return fail("record rank")
		}
		shape := make([]int, nd)
		count := int64(1)
		for j := range shape {
			var d uint64
			if binary.Read(r, binary.LittleEndian, &d) != nil || d > uint64(r.Len()) {
				return fail("record dims")
			}
			shape[j] = int(d)
			if d > 0 && count > int64(r.Len())/int64(d) {
				return fail("record dims (too many elements)")
			}
			count *= int64(d)
		}
		esz := int64(4)
		if kind == 1 {
			esz = 8
		}
		if count*esz > int64(r.Len()) {
			return fail(fmt.Sprintf("values of %q (%v)", nb, shape))
		}
		raw := make([]byte, count*esz)
		io.ReadFull(r, raw)
		rec := Record{Name: string(nb)}
		if kind == 0 {
			t := New(shape...)
			for k := range t.Data {
				t.Data[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
			}
			rec.Tensor = t
		} else {
			rec.Ints = make([]int64, count)
			for k := range rec.Ints {
				rec.Ints[k] = int64(binary.LittleEndian.Uint64(raw[8*k:]))
			}
		}
		recs = append(recs, rec)
	}
	if r.Len() != 0 {
		return nil, errs.Input(name, "%d trailing bytes after %d records", r.Len(), n)
	}
	return recs, nil
}

// SaveFile writes records to path atomically: a temporary file in the same
// directory is written, synced and renamed over path.
func SaveFile(path string, recs []Record) error {
	if err := atomicio.Write(path, 0o644, func(w io.Writer) error { return Encode(w, recs) }); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// LoadFile reads a state file written by SaveFile.
func LoadFile(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.WrapInput(path, err, "cannot read state file")
	}
	return Decode(path, data)
}

package volume

import (
	"encoding/binary"
	"math"
)

// dtype describes an on-disk sample type. Names are numpy's.
type dtype struct {
	name string
	size int  // bytes per sample
	kind byte // 'b' bool, 'i' signed, 'u' unsigned, 'f' float
}

var dtypes = []dtype{
	{"bool", 1, 'b'},
	{"uint8", 1, 'u'}, {"int8", 1, 'i'},
	{"uint16", 2, 'u'}, {"int16", 2, 'i'},
	{"uint32", 4, 'u'}, {"int32", 4, 'i'},
	{"uint64", 8, 'u'}, {"int64", 8, 'i'},
	{"float32", 4, 'f'}, {"float64", 8, 'f'},
}

func dtypeByName(name string) (dtype, bool) {
	for _, d := range dtypes {
		if d.name == name {
			return d, true
		}
	}
	return dtype{}, false
}

// limits returns the smallest and largest value an integer dtype holds.
func (d dtype) limits() (lo, hi float64) {
	switch d.kind {
	case 'u':
		return 0, math.Pow(2, float64(8*d.size)) - 1
	case 'i':
		return -math.Pow(2, float64(8*d.size-1)), math.Pow(2, float64(8*d.size-1)) - 1
	case 'b':
		return 0, 1
	}
	return math.Inf(-1), math.Inf(1)
}

// decodeSamples converts len(dst) samples of type d in byte order bo from
// src into dst, applying v = raw*slope + inter in float64 when scale is set.
// src must hold len(dst)*d.size bytes.
func decodeSamples(dst []float32, src []byte, d dtype, bo binary.ByteOrder, scale bool, slope, inter float64) {
	n := len(dst)
	put := func(i int, v float64) {
		if scale {
			v = v*slope + inter
		}
		dst[i] = float32(v)
	}
	switch d.name {
	case "bool", "uint8":
		for i := 0; i < n; i++ {
			put(i, float64(src[i]))
		}
	case "int8":
		for i := 0; i < n; i++ {
			put(i, float64(int8(src[i])))
		}
	case "uint16":
		for i := 0; i < n; i++ {
			put(i, float64(bo.Uint16(src[2*i:])))
		}
	case "int16":
		for i := 0; i < n; i++ {
			put(i, float64(int16(bo.Uint16(src[2*i:]))))
		}
	case "uint32":
		for i := 0; i < n; i++ {
			put(i, float64(bo.Uint32(src[4*i:])))
		}
	case "int32":
		for i := 0; i < n; i++ {
			put(i, float64(int32(bo.Uint32(src[4*i:]))))
		}
	case "uint64":
		for i := 0; i < n; i++ {
			put(i, float64(bo.Uint64(src[8*i:])))
		}
	case "int64":
		for i := 0; i < n; i++ {
			put(i, float64(int64(bo.Uint64(src[8*i:]))))
		}
	case "float32":
		if !scale {
			for i := 0; i < n; i++ {
				dst[i] = math.Float32frombits(bo.Uint32(src[4*i:]))
			}
			return
		}
		for i := 0; i < n; i++ {
			put(i, float64(math.Float32frombits(bo.Uint32(src[4*i:]))))
		}
	case "float64":
		for i := 0; i < n; i++ {
			put(i, math.Float64frombits(bo.Uint64(src[8*i:])))
		}
	default:
		panic("volume: decodeSamples: unknown dtype " + d.name)
	}
}

// encodeSample writes raw (already scaled and rounded for integer types)
// into dst in little-endian order.
func encodeSample(dst []byte, d dtype, raw float64) {
	le := binary.LittleEndian
	switch d.name {
	case "bool", "uint8":
		dst[0] = uint8(raw)
	case "int8":
		dst[0] = uint8(int8(raw))
	case "uint16":
		le.PutUint16(dst, uint16(raw))
	case "int16":
		le.PutUint16(dst, uint16(int16(raw)))
	case "uint32":
		le.PutUint32(dst, uint32(raw))
	case "int32":
		le.PutUint32(dst, uint32(int32(raw)))
	case "uint64":
		le.PutUint64(dst, uint64(raw))
	case "int64":
		le.PutUint64(dst, uint64(int64(raw)))
	case "float32":
		le.PutUint32(dst, math.Float32bits(float32(raw)))
	case "float64":
		le.PutUint64(dst, math.Float64bits(raw))
	default:
		panic("volume: encodeSample: unknown dtype " + d.name)
	}
}

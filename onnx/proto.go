package onnx

// The ONNX file is a protobuf ModelProto. It is encoded here by hand with
// google.golang.org/protobuf/encoding/protowire, the protobuf project's own
// low-level wire-format API, rather than through generated Go bindings of
// onnx.proto: the module proxy has no maintained generated ONNX package.
// github.com/owulveryck/onnx-go (last release v0.5.0, December 2019) keeps
// its bindings in an internal package, so they cannot be imported, and they
// are an old protoc-gen-go (APIv1) build of IR version 3; generating our own
// would add protoc to the build for the dozen messages written here. The
// field numbers below are those of onnx.proto (proto2; checked against the
// descriptors that onnx 1.12 ships). Repeated scalars are written unpacked,
// proto2's default; parsers accept either form.

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto.
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphDocString   = 10
	graphInput       = 11
	graphOutput      = 12

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5

	attrName   = 1
	attrF      = 2
	attrI      = 3
	attrFloats = 7
	attrInts   = 8
	attrType   = 20

	tensorDims     = 1
	tensorDataType = 2
	tensorName     = 8
	tensorRawData  = 9

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType   = 1
	tensorElemType   = 1
	tensorShape      = 2
	shapeDim         = 1
	dimValue         = 1
	dimParam         = 2
	opsetDomain      = 1
	opsetVersion     = 2
	stringEntryKey   = 1
	stringEntryValue = 2
)

// AttributeProto.AttributeType and TensorProto.DataType values.
const (
	attrTypeFloat  = 1
	attrTypeInt    = 2
	attrTypeFloats = 6
	attrTypeInts   = 7

	dataTypeFloat = 1
)

// pb accumulates one message's encoded fields.
type pb []byte

func (b *pb) varint(num protowire.Number, v uint64) {
	*b = protowire.AppendTag(*b, num, protowire.VarintType)
	*b = protowire.AppendVarint(*b, v)
}

// int64 writes a (possibly negative) int64 field, two's complement as
// protobuf's int64 type does.
func (b *pb) int64(num protowire.Number, v int64) { b.varint(num, uint64(v)) }

func (b *pb) float(num protowire.Number, v float32) {
	*b = protowire.AppendTag(*b, num, protowire.Fixed32Type)
	*b = protowire.AppendFixed32(*b, math.Float32bits(v))
}

func (b *pb) bytes(num protowire.Number, v []byte) {
	*b = protowire.AppendTag(*b, num, protowire.BytesType)
	*b = protowire.AppendBytes(*b, v)
}

func (b *pb) str(num protowire.Number, s string) {
	*b = protowire.AppendTag(*b, num, protowire.BytesType)
	*b = protowire.AppendString(*b, s)
}

func (b *pb) msg(num protowire.Number, m pb) { b.bytes(num, m) }

// attribute encodings (AttributeProto).

func attrInt(name string, v int64) pb {
	var a pb
	a.str(attrName, name)
	a.int64(attrI, v)
	a.varint(attrType, attrTypeInt)
	return a
}

func attrFloat(name string, v float32) pb {
	var a pb
	a.str(attrName, name)
	a.float(attrF, v)
	a.varint(attrType, attrTypeFloat)
	return a
}

func attrIntList(name string, vs ...int64) pb {
	var a pb
	a.str(attrName, name)
	for _, v := range vs {
		a.int64(attrInts, v)
	}
	a.varint(attrType, attrTypeInts)
	return a
}

// floatTensor encodes a float32 TensorProto with raw (little-endian) data.
func floatTensor(name string, dims []int, data []float32) pb {
	var t pb
	for _, d := range dims {
		t.int64(tensorDims, int64(d))
	}
	t.varint(tensorDataType, dataTypeFloat)
	t.str(tensorName, name)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	t.bytes(tensorRawData, raw)
	return t
}

// dim is one axis of a value's shape: a fixed size or a symbolic name.
type dim struct {
	value int
	param string
}

// valueInfo encodes a float32 tensor ValueInfoProto.
func valueInfo(name string, dims []dim) pb {
	var shape pb
	for _, d := range dims {
		var dd pb
		if d.param != "" {
			dd.str(dimParam, d.param)
		} else {
			dd.int64(dimValue, int64(d.value))
		}
		shape.msg(shapeDim, dd)
	}
	var tt pb
	tt.varint(tensorElemType, dataTypeFloat)
	tt.msg(tensorShape, shape)
	var typ pb
	typ.msg(typeTensorType, tt)
	var v pb
	v.str(valueInfoName, name)
	v.msg(valueInfoType, typ)
	return v
}

// Package tensor holds the engine's float32 N-dimensional arrays, their
// shape checks, a deterministic parallel-for helper and the binary file format
// that parameters, BatchNorm statistics and optimiser state are saved in.
//
// Layout: row-major (last axis fastest). Volumes are channels-last, NDHWC:
// element (n,z,y,x,c) of a tensor of shape [N,D,H,W,C] sits at
// (((n*D+z)*H+y)*W+x)*C+c. Convolution weights are DHWIO: [kd,kh,kw,Cin,Cout].
//
// Shape mismatches are programmer errors and panic with a message naming the
// operation and both shapes; bad files return errors.
//
//	x := tensor.New(2, 16, 16, 16, 1)     // zeros
//	y := tensor.FromSlice([]float32{1, 2, 3, 4}, 2, 2)
//	fmt.Println(y.At(1, 0))               // 3
package tensor

import (
	"fmt"
	"math"
)

// Tensor is a dense float32 array. Shape may be empty (a scalar, one element).
type Tensor struct {
	Shape []int
	Data  []float32
}

// Numel returns the number of elements a shape holds (1 for the empty shape).
// It panics on a negative dimension.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	return &Tensor{Shape: s, Data: make([]float32, Numel(s))}
}

// Scalar returns a 0-d tensor holding v.
func Scalar(v float32) *Tensor { return &Tensor{Shape: []int{}, Data: []float32{v}} }

// FromSlice wraps data (not copied) as a tensor of the given shape; it panics
// if len(data) differs from the shape's element count.
func FromSlice(data []float32, shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	if Numel(s) != len(data) {
		panic(fmt.Sprintf("tensor: FromSlice: %d values for shape %v", len(data), s))
	}
	return &Tensor{Shape: s, Data: data}
}

// Full returns a tensor of the given shape filled with v.
func Full(v float32, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = v
	}
	return t
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Dims returns the number of axes.
func (t *Tensor) Dims() int { return len(t.Shape) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// ZerosLike returns a zero tensor of t's shape.
func ZerosLike(t *Tensor) *Tensor { return New(t.Shape...) }

// Reshape returns a tensor sharing t's data with a new shape; one dimension
// may be -1 (inferred). It panics if the element counts differ.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	infer, known := -1, 1
	for i, d := range s {
		if d == -1 {
			if infer >= 0 {
				panic(fmt.Sprintf("tensor: Reshape %v: more than one -1", shape))
			}
			infer = i
			continue
		}
		known *= d
	}
	if infer >= 0 {
		if known == 0 || len(t.Data)%known != 0 {
			panic(fmt.Sprintf("tensor: Reshape %v -> %v: cannot infer", t.Shape, shape))
		}
		s[infer] = len(t.Data) / known
	}
	if Numel(s) != len(t.Data) {
		panic(fmt.Sprintf("tensor: Reshape %v (%d elements) -> %v", t.Shape, len(t.Data), s))
	}
	return &Tensor{Shape: s, Data: t.Data}
}

// Offset returns the flat index of the element at idx; it panics if idx is
// out of range.
func (t *Tensor) Offset(idx ...int) int {
	if len(idx) != len(t.Shape) {
		panic(fmt.Sprintf("tensor: %d indices for shape %v", len(idx), t.Shape))
	}
	off := 0
	for i, v := range idx {
		if v < 0 || v >= t.Shape[i] {
			panic(fmt.Sprintf("tensor: index %v out of range for shape %v", idx, t.Shape))
		}
		off = off*t.Shape[i] + v
	}
	return off
}

// At returns the element at idx.
func (t *Tensor) At(idx ...int) float32 { return t.Data[t.Offset(idx...)] }

// Set sets the element at idx.
func (t *Tensor) Set(v float32, idx ...int) { t.Data[t.Offset(idx...)] = v }

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// CopyFrom copies src's values into t; shapes must match.
func (t *Tensor) CopyFrom(src *Tensor) {
	MustSameShape("CopyFrom", t, src)
	copy(t.Data, src.Data)
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// MustSameShape panics, naming op, unless a and b have the same shape.
func MustSameShape(op string, a, b *Tensor) {
	if !SameShape(a.Shape, b.Shape) {
		panic(fmt.Sprintf("%s: shape mismatch %v vs %v", op, a.Shape, b.Shape))
	}
}

// MustRank panics, naming op, unless t has n axes.
func MustRank(op string, t *Tensor, n int) {
	if len(t.Shape) != n {
		panic(fmt.Sprintf("%s: want a %d-d tensor, got shape %v", op, n, t.Shape))
	}
}

// HasNaN reports whether any element is NaN or ±Inf.
func (t *Tensor) HasNaN() bool {
	for _, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}

// String prints the shape and up to 8 values.
func (t *Tensor) String() string {
	n := len(t.Data)
	if n > 8 {
		return fmt.Sprintf("Tensor%v%v…", t.Shape, t.Data[:8])
	}
	return fmt.Sprintf("Tensor%v%v", t.Shape, t.Data)
}

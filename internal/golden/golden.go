// Package golden reads the fixture files that the PyTorch scripts under
// */testdata/gen_golden.py write: NAME.json, an index
//
//	{"tensors": {"conv/x": {"shape": [2,5,6,4,3], "dtype": "f32", "offset": 0}, …},
//	 "values":  {"unet/loss": [0.61, …], …}}
//
// and NAME.bin, the little-endian tensor data (dtype "f32" or "f16", IEEE
// half precision, used where the values are exactly representable or only
// compared within a tolerance). Volumes are stored already permuted to the
// engine's NDHWC / DHWIO layouts.
package golden

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/fess-seg/fess/tensor"
)

// File is a loaded fixture.
type File struct {
	Tensors map[string]*tensor.Tensor
	Values  map[string][]float64
}

type entry struct {
	Shape  []int  `json:"shape"`
	Dtype  string `json:"dtype"`
	Offset int    `json:"offset"`
}

// Load reads base+".json" and base+".bin".
func Load(base string) (*File, error) {
	idx, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil, err
	}
	var raw struct {
		Tensors map[string]entry     `json:"tensors"`
		Values  map[string][]float64 `json:"values"`
	}
	if err := json.Unmarshal(idx, &raw); err != nil {
		return nil, fmt.Errorf("%s.json: %w", base, err)
	}
	bin, err := os.ReadFile(base + ".bin")
	if err != nil {
		return nil, err
	}
	f := &File{Tensors: map[string]*tensor.Tensor{}, Values: raw.Values}
	for name, e := range raw.Tensors {
		t := tensor.New(e.Shape...)
		size := 4
		if e.Dtype == "f16" {
			size = 2
		} else if e.Dtype != "f32" {
			return nil, fmt.Errorf("%s: tensor %s: dtype %q", base, name, e.Dtype)
		}
		if e.Offset < 0 || e.Offset+size*t.Len() > len(bin) {
			return nil, fmt.Errorf("%s.bin: tensor %s out of range", base, name)
		}
		for i := range t.Data {
			p := bin[e.Offset+size*i:]
			if size == 4 {
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(p))
			} else {
				t.Data[i] = Half(binary.LittleEndian.Uint16(p))
			}
		}
		f.Tensors[name] = t
	}
	return f, nil
}

// Get returns a tensor or panics naming the missing fixture entry.
func (f *File) Get(name string) *tensor.Tensor {
	t, ok := f.Tensors[name]
	if !ok {
		panic("golden: no tensor " + name)
	}
	return t
}

// Half converts IEEE 754 binary16 bits to float32 (exactly).
func Half(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0:
		// zero or subnormal: man·2^−24
		v := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | man<<13)
}

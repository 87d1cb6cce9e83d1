package model

import (
	"encoding/binary"
	"encoding/json"
	"math"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/safetensors"
)

// TorchConfigKey is the safetensors metadata entry holding the model's
// Config as JSON (Go field names), which model/torch/fess_unet.py's
// build() and load_fess() read.
const TorchConfigKey = "config"

// WriteTorchFile writes TorchTensors to path as a safetensors file (F32
// tensors, I64 num_batches_tracked), with meta plus TorchConfigKey (the
// model's Config) and "format": "pt" as its metadata.
func (m *UNet3D) WriteTorchFile(path string, meta map[string]string) error {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return err
	}
	md := map[string]string{TorchConfigKey: string(cfg), "format": "pt"}
	for k, v := range meta {
		md[k] = v
	}
	ts := m.TorchTensors()
	out := make([]safetensors.Tensor, len(ts))
	for i, t := range ts {
		if t.Ints != nil {
			out[i] = safetensors.I64(t.Name, t.Shape, t.Ints)
		} else {
			out[i] = safetensors.F32(t.Name, t.Shape, t.Data)
		}
	}
	return safetensors.WriteFile(path, out, md)
}

// ReadTorchFile reads a safetensors state_dict: float tensors (F32, F16,
// BF16, F64) as Data, integer ones (I64, I32) as Ints, and the metadata.
func ReadTorchFile(path string) ([]NamedTensor, map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	out := make([]NamedTensor, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		nt := NamedTensor{Name: t.Name, Shape: append([]int{}, t.Shape...)}
		switch t.DType {
		case "I64", "I32":
			nt.Ints, err = t.Int64s()
		case "F64":
			nt.Data = make([]float32, len(t.Data)/8)
			for i := range nt.Data {
				nt.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
			}
		default:
			nt.Data, err = t.Float32s()
		}
		if err != nil {
			return nil, nil, errs.Input(path, "tensor %q: %v", t.Name, err)
		}
		out = append(out, nt)
	}
	return out, f.Metadata, nil
}

// TorchFileConfig returns the model Config in a safetensors file's
// TorchConfigKey metadata; ok is false when the file has none.
func TorchFileConfig(path string, meta map[string]string) (cfg Config, ok bool, err error) {
	js, ok := meta[TorchConfigKey]
	if !ok {
		return cfg, false, nil
	}
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return cfg, true, errs.Input(path, "metadata %q is not a fess model config: %v", TorchConfigKey, err)
	}
	return cfg, true, nil
}

// LoadTorchFile loads the safetensors state_dict at path into m
// (LoadTorchTensors). When the file's metadata names a model config, its
// preset and output kind (sigmoid regions or softmax classes) must be m's:
// they change BatchNorm's eps and what the outputs mean without changing
// any tensor's shape.
func (m *UNet3D) LoadTorchFile(path string) error {
	ts, meta, err := ReadTorchFile(path)
	if err != nil {
		return err
	}
	fc, ok, err := TorchFileConfig(path, meta)
	if err != nil {
		return err
	}
	if ok {
		if fc.Preset == "" {
			fc.Preset = "unet3d"
		}
		if fc.Preset != m.Cfg.Preset {
			return errs.Input(path, "weights are of the %s preset, the model is %s", fc.Preset, m.Cfg.Preset)
		}
		if fc.Softmax != m.Cfg.Softmax {
			kind := func(s bool) string {
				if s {
					return "softmax classes"
				}
				return "sigmoid regions"
			}
			return errs.Input(path, "weights have %s outputs, the model %s", kind(fc.Softmax), kind(m.Cfg.Softmax))
		}
	}
	return m.LoadTorchTensors(ts, path)
}

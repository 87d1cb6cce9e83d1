package optim

import (
	"fmt"

	"github.com/fess-seg/fess/tensor"
)

// EMA keeps an exponential moving average of a set of tensors (a model's
// parameters and BatchNorm running statistics): after every optimiser
// step, Update sets, element by element in float32,
//
//	avg ← d·avg + (1 − d)·live
//
// (each product rounded to float32 before the sum) with d = Decay (no
// warm-up of d). The averages are tensors the caller
// owns (typically a second model's, so it can be evaluated and saved as
// is); NewEMA starts them equal to the live tensors, as PyTorch's
// AveragedModel and timm's ModelEmaV2 do. Steps counts the updates.
type EMA struct {
	Decay float64
	Steps int64
	avg   []*tensor.Tensor
	live  []*tensor.Tensor
}

// NewEMA pairs avg[i] with live[i] (same shapes), copies live into avg and
// returns the average with Steps 0. decay must lie in [0, 1).
func NewEMA(decay float64, avg, live []*tensor.Tensor) (*EMA, error) {
	if !(decay >= 0 && decay < 1) {
		return nil, fmt.Errorf("optim: EMA decay %v outside [0, 1)", decay)
	}
	if len(avg) != len(live) {
		return nil, fmt.Errorf("optim: EMA of %d tensors into %d", len(live), len(avg))
	}
	for i := range avg {
		if !tensor.SameShape(avg[i].Shape, live[i].Shape) {
			return nil, fmt.Errorf("optim: EMA tensor %d: shape %v, live %v", i, avg[i].Shape, live[i].Shape)
		}
		copy(avg[i].Data, live[i].Data)
	}
	return &EMA{Decay: decay, avg: avg, live: live}, nil
}

// Update folds the live tensors into the averages once.
func (e *EMA) Update() {
	e.Steps++
	d, od := float32(e.Decay), float32(1-e.Decay)
	for i, a := range e.avg {
		ad, ld := a.Data, e.live[i].Data
		tensor.Parallel(len(ad), 0, func(_, lo, hi int) {
			for j := lo; j < hi; j++ {
				// The conversions keep the two products rounded (no fused
				// multiply-add), so every architecture gets the same bits.
				ad[j] = float32(d*ad[j]) + float32(od*ld[j])
			}
		})
	}
}

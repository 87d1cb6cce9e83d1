package loss

import (
	"fmt"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// DiceEps is the smoothing ε of the reference's Dice loss.
const DiceEps = 1e-5

// channels returns K, the size of the channel axis of a volume batch
// [N,D,H,W,K]; any other rank counts as one channel (the whole tensor).
func channels(v *autodiff.Var) int {
	if len(v.Value.Shape) == 5 {
		return v.Value.Shape[4]
	}
	return 1
}

// Dice returns the soft Dice loss of probabilities p against a target y
// (same shape, values in [0,1]). For one channel (K = 1, or any tensor
// not of rank 5):
//
//	L = 1 − (2·Σ y·p + ε) / (Σ y + Σ p + ε)
//
// with the sums over the whole batch (the FESS reference's reduction,
// "batch" Dice). For p, y of shape [N,D,H,W,K] with K > 1, each channel k
// gets its own such Dice, summed over the batch and the voxels, and L is
// their mean over the K channels:
//
//	L = (1/K)·Σ_k [ 1 − (2·Σ_{n,v} y_k·p_k + ε) / (Σ y_k + Σ p_k + ε) ]
//
// (MONAI's DiceLoss with batch=True, mean over channels; pass only the
// foreground channels of a softmax output to leave the background out, see
// Foreground). A channel with both masks empty contributes 0 (ε/ε); an
// empty target with a non-empty prediction drives that channel's p towards
// 0. Sums use float64. The K = 1 computation is exactly the single-channel
// one.
func Dice(tp *autodiff.Tape, p, y *autodiff.Var, eps float32) *autodiff.Var {
	tensor.MustSameShape("loss.Dice", p.Value, y.Value)
	if k := channels(p); k > 1 {
		pf, yf := tp.Reshape(p, -1, k), tp.Reshape(y, -1, k)
		ax := []int{0}
		inter := tp.Sum(tp.Mul(pf, yf), ax) // [K]
		den := tp.AddScalar(tp.Add(tp.Sum(yf, ax), tp.Sum(pf, ax)), eps)
		num := tp.AddScalar(tp.Scale(inter, 2), eps)
		return tp.AddScalar(tp.Neg(tp.Mean(tp.Div(num, den), nil)), 1)
	}
	inter := tp.Sum(tp.Mul(p, y), nil)
	den := tp.AddScalar(tp.Add(tp.Sum(y, nil), tp.Sum(p, nil)), eps)
	num := tp.AddScalar(tp.Scale(inter, 2), eps)
	return tp.AddScalar(tp.Neg(tp.Div(num, den)), 1)
}

// DicePerSample returns the mean over the batch (axis 0) of each sample's
// soft Dice loss 1 − (2·Σ y·p + ε)/(Σ y + Σ p + ε), sums over that sample's
// voxels (MONAI's batch=False reduction). For [N,D,H,W,K] with K > 1 the
// Dice is taken per sample and per channel, and L is the mean over the N·K
// (sample, channel) pairs. Empty masks as in Dice, per pair.
func DicePerSample(tp *autodiff.Tape, p, y *autodiff.Var, eps float32) *autodiff.Var {
	tensor.MustSameShape("loss.DicePerSample", p.Value, y.Value)
	n := p.Value.Shape[0]
	if k := channels(p); k > 1 {
		pf, yf := tp.Reshape(p, n, -1, k), tp.Reshape(y, n, -1, k)
		ax := []int{1}
		inter := tp.Sum(tp.Mul(pf, yf), ax) // [N,K]
		den := tp.AddScalar(tp.Add(tp.Sum(yf, ax), tp.Sum(pf, ax)), eps)
		num := tp.AddScalar(tp.Scale(inter, 2), eps)
		return tp.AddScalar(tp.Neg(tp.Mean(tp.Div(num, den), nil)), 1)
	}
	pf, yf := tp.Reshape(p, n, -1), tp.Reshape(y, n, -1)
	inter := tp.Sum(tp.Mul(pf, yf), []int{1})
	den := tp.AddScalar(tp.Add(tp.Sum(yf, []int{1}), tp.Sum(pf, []int{1})), eps)
	num := tp.AddScalar(tp.Scale(inter, 2), eps)
	return tp.AddScalar(tp.Neg(tp.Mean(tp.Div(num, den), nil)), 1)
}

// Foreground returns channels 1..K−1 of a softmax output or one-hot target
// v [N,D,H,W,K] (channel 0 is the background), K ≥ 2: the part the Dice
// term of a softmax model is computed on (nnU-Net's do_bg=False). The
// gradient flows back into v's foreground channels.
func Foreground(tp *autodiff.Tape, v *autodiff.Var) *autodiff.Var {
	if len(v.Value.Shape) != 5 || v.Value.Shape[4] < 2 {
		panic(fmt.Sprintf("loss.Foreground: shape %v, want [N,D,H,W,K] with K ≥ 2", v.Value.Shape))
	}
	return tp.Slice(v, 4, 1, v.Value.Shape[4])
}

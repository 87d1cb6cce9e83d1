package loss

import (
	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// DiceEps is the smoothing ε of the reference's Dice loss.
const DiceEps = 1e-5

// Dice returns the soft Dice loss of probabilities p against a target y
// (same shape, values in [0,1]):
//
//	L = 1 − (2·Σ y·p + ε) / (Σ y + Σ p + ε)
//
// with the sums over the whole batch (the FESS reference's reduction,
// "batch" Dice). Both masks empty gives L = 0 (ε/ε); an empty target with a
// non-empty prediction drives p towards 0. Sums use float64.
func Dice(tp *autodiff.Tape, p, y *autodiff.Var, eps float32) *autodiff.Var {
	tensor.MustSameShape("loss.Dice", p.Value, y.Value)
	inter := tp.Sum(tp.Mul(p, y), nil)
	den := tp.AddScalar(tp.Add(tp.Sum(y, nil), tp.Sum(p, nil)), eps)
	num := tp.AddScalar(tp.Scale(inter, 2), eps)
	return tp.AddScalar(tp.Neg(tp.Div(num, den)), 1)
}

// DicePerSample returns the mean over the batch (axis 0) of each sample's
// soft Dice loss 1 − (2·Σ y·p + ε)/(Σ y + Σ p + ε), sums over that sample's
// voxels (MONAI's batch=False reduction).
func DicePerSample(tp *autodiff.Tape, p, y *autodiff.Var, eps float32) *autodiff.Var {
	tensor.MustSameShape("loss.DicePerSample", p.Value, y.Value)
	n := p.Value.Shape[0]
	pf, yf := tp.Reshape(p, n, -1), tp.Reshape(y, n, -1)
	inter := tp.Sum(tp.Mul(pf, yf), []int{1})
	den := tp.AddScalar(tp.Add(tp.Sum(yf, []int{1}), tp.Sum(pf, []int{1})), eps)
	num := tp.AddScalar(tp.Scale(inter, 2), eps)
	return tp.AddScalar(tp.Neg(tp.Mean(tp.Div(num, den), nil)), 1)
}

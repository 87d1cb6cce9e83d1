package loss

import (
	"fmt"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// NormEps is the ε of the L2 normalisations in the contrastive losses:
// x / max(‖x‖₂, ε), torch.nn.functional.normalize's default.
const NormEps = 1e-12

// ContrastiveFESS returns FESS's contrastive term between two bottleneck
// maps prev and pres of shape [N,d,h,w,C], exactly as the reference codes
// it (docs/method.md; the PyTorch peer's contrastive_loss):
//
//	â[n,:,c] = prev[n,:,c] / max(‖prev[n,:,c]‖₂, 1e-12)    (norm over the d·h·w voxels)
//	b̂[n,:,c] = pres[n,:,c] / max(‖pres[n,:,c]‖₂, 1e-12)
//	s[n,c]   = Σ_voxels â·b̂                                  (cosine similarity, in [−1,1])
//	L        = mean over the M = N·C pairs (n,c) of
//	           −log( exp(s[n,c]/T) / Σ_(n',c') exp(s[n',c']/T) )
//
// i.e. −mean(log_softmax(s/T)) over all N·C entries (computed stably). The
// reduction is the mean over (n,c); the value equals log M when all s are
// equal. An all-zero channel (an empty feature map, e.g. a dead ReLU)
// normalises to zero, so its s = 0, with no gradient through it.
//
// prev is used as given: the caller passes a detached Var (Detach, or a
// nil-tape forward) for the detached view; which maps are paired is the
// Pairing (see there). Reference: the FESS paper's "contrastive loss on
// feature maps" as implemented in the FeSS_Loss repository.
func ContrastiveFESS(tp *autodiff.Tape, prev, pres *autodiff.Var, temperature float32) *autodiff.Var {
	tensor.MustRank("loss.ContrastiveFESS", prev.Value, 5)
	tensor.MustSameShape("loss.ContrastiveFESS", prev.Value, pres.Value)
	if !(temperature > 0) {
		panic(fmt.Sprintf("loss.ContrastiveFESS: temperature %v, want > 0", temperature))
	}
	spatial := []int{1, 2, 3}
	a := tp.L2Normalize(prev, spatial, NormEps)
	b := tp.L2Normalize(pres, spatial, NormEps)
	s := tp.Sum(tp.Mul(a, b), spatial) // [N,C]
	logits := tp.Scale(tp.Reshape(s, -1), 1/temperature)
	return tp.Neg(tp.Mean(tp.LogSoftmax(logits, 0), nil))
}

// FESSOptions parameterises FESS; the zero value is not valid, start from
// DefaultFESSOptions.
type FESSOptions struct {
	Lambda      float32 // λ, weight of the Dice term (0.5)
	Scale       float32 // scale of the contrastive term (1e-4: the reference passes lr=1e-4 into it)
	Temperature float32 // T (0.5)
	Eps         float32 // Dice smoothing ε (1e-5)
}

// DefaultFESSOptions returns the reference's values: λ 0.5, scale 1e-4,
// T 0.5, ε 1e-5.
func DefaultFESSOptions() FESSOptions {
	return FESSOptions{Lambda: 0.5, Scale: 1e-4, Temperature: 0.5, Eps: DiceEps}
}

// Parts is a combined loss and its unweighted components, for logging.
type Parts struct {
	Total *autodiff.Var // what is back-propagated
	Dice  *autodiff.Var // the batch soft Dice loss (mean over its channels)
	Con   *autodiff.Var // the contrastive term before λ and scale (nil if none)
}

// FESS returns the FESS loss (docs/method.md):
//
//	Total = λ·Dice(probs, target) + (1−λ)·scale·ContrastiveFESS(prev, pres, T)
//
// with Dice the batch soft Dice loss (see Dice: for K > 1 channels the mean
// of the per-channel Dice, so a softmax model passes its Foreground
// channels; ε smoothing, both masks empty gives 0) and the contrastive term
// as ContrastiveFESS on the bottleneck, which does not depend on K.
// Parts.Con is the contrastive term before weighting. The pairing of prev and pres is
// the training loop's (see Pairing).
func FESS(tp *autodiff.Tape, probs, target, prev, pres *autodiff.Var, opt FESSOptions) Parts {
	d := Dice(tp, probs, target, opt.Eps)
	c := ContrastiveFESS(tp, prev, pres, opt.Temperature)
	return Parts{Total: Combine(tp, d, c, opt.Lambda, opt.Scale), Dice: d, Con: c}
}

// Combine returns λ·dice + (1−λ)·scale·con, the weighting shared by FESS,
// SimCLR and InfoNCE so the comparison is fair.
func Combine(tp *autodiff.Tape, dice, con *autodiff.Var, lambda, scale float32) *autodiff.Var {
	return tp.Add(tp.Scale(dice, lambda), tp.Scale(con, (1-lambda)*scale))
}

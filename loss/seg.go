package loss

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// ProbClamp is the clamp of probabilities inside BCE and focal:
// p ← min(max(p, 1e-7), 1 − 1e-7), so log p and log(1−p) stay finite
// (|log| ≤ 16.1); the gradient is zero where p lies outside that range
// (torch.clamp's rule). Prefer BCEWithLogits, which needs no clamp.
const ProbClamp = 1e-7

// bceElem returns the elementwise −[y·log p + (1−y)·log(1−p)] with p
// clamped to [ProbClamp, 1−ProbClamp].
func bceElem(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
	pc := tp.Clamp(p, ProbClamp, 1-ProbClamp)
	pos := tp.Mul(y, tp.Log(pc))
	neg := tp.Mul(tp.AddScalar(tp.Neg(y), 1), tp.Log(tp.AddScalar(tp.Neg(pc), 1)))
	return tp.Neg(tp.Add(pos, neg))
}

// BCE returns the binary cross-entropy of probabilities p against targets
// y (same shape, y may be soft):
//
//	L = −mean over all voxels of [ y·log p̃ + (1−y)·log(1−p̃) ],   p̃ = clamp(p, 1e-7, 1−1e-7)
//
// (the clamp: see ProbClamp; PyTorch's binary_cross_entropy instead clamps
// each log at −100, which agrees wherever p ∈ [1e-7, 1−1e-7]). Empty masks
// need no convention: every voxel contributes. Mean reduction over every
// element, so for K sigmoid channels [N,D,H,W,K] the mean over all voxels
// and channels. For softmax outputs use CrossEntropy.
func BCE(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
	tensor.MustSameShape("loss.BCE", p.Value, y.Value)
	return tp.Mean(bceElem(tp, p, y), nil)
}

// BCEWithLogits returns BCE(σ(z), y) computed stably from the logits z
// (model.ForwardLogits), without a clamp:
//
//	L = mean over all voxels of [ softplus(z) − z·y ],   softplus(z) = log(1+eᶻ)
//
// as torch.nn.functional.binary_cross_entropy_with_logits. Mean reduction
// over every element (voxels and channels).
func BCEWithLogits(tp *autodiff.Tape, z, y *autodiff.Var) *autodiff.Var {
	tensor.MustSameShape("loss.BCEWithLogits", z.Value, y.Value)
	return tp.Mean(tp.Sub(tp.Softplus(z), tp.Mul(z, y)), nil)
}

// DiceBCEOptions weights the two terms of DiceBCE.
type DiceBCEOptions struct {
	DiceWeight, BCEWeight float32 // 1 and 1
	Eps                   float32 // Dice ε (1e-5)
}

// DefaultDiceBCEOptions returns weights 1 and 1, ε = 1e-5.
func DefaultDiceBCEOptions() DiceBCEOptions {
	return DiceBCEOptions{DiceWeight: 1, BCEWeight: 1, Eps: DiceEps}
}

// DiceBCE returns the weighted sum of the batch soft Dice loss and BCE
// (the common "Dice + cross-entropy" compound loss, e.g. nnU-Net's, here
// for sigmoid outputs: one foreground, or K independent regions):
//
//	L = w_D·Dice(p, y; ε) + w_B·BCE(p, y)
//
// with Dice's reduction (K > 1: mean of the per-channel batch Dice) and
// empty-mask behaviour (both empty: that channel's Dice 0), and BCE's clamp
// and mean over all elements. For softmax outputs use DiceCE.
func DiceBCE(tp *autodiff.Tape, p, y *autodiff.Var, opt DiceBCEOptions) Parts {
	d := Dice(tp, p, y, opt.Eps)
	b := BCE(tp, p, y)
	return Parts{Total: tp.Add(tp.Scale(d, opt.DiceWeight), tp.Scale(b, opt.BCEWeight)), Dice: d}
}

// Focal returns the binary focal loss of Lin et al. 2017 ("Focal Loss for
// Dense Object Detection") on probabilities, in torchvision's
// sigmoid_focal_loss form (which also admits soft targets):
//
//	p_t = p·y + (1−p)(1−y),   α_t = α·y + (1−α)(1−y)
//	L   = mean over all voxels of α_t · (1−p_t)^γ · BCE(p, y)
//
// with BCE the clamped elementwise cross-entropy (= −log p_t for hard
// labels). Defaults α = 0.25, γ = 2; α < 0 disables the α_t weighting
// (torchvision's convention). Integer γ is computed by repeated products,
// other γ as exp(γ·log(max(1−p_t, 1e-12))). Mean reduction over every
// element (voxels and, for K sigmoid regions, channels); every voxel
// contributes, so empty masks need no convention. It is a sigmoid loss:
// softmax outputs have no binary focal form here.
func Focal(tp *autodiff.Tape, p, y *autodiff.Var, alpha, gamma float32) *autodiff.Var {
	tensor.MustSameShape("loss.Focal", p.Value, y.Value)
	if gamma < 0 {
		panic(fmt.Sprintf("loss.Focal: gamma %v, want ≥ 0", gamma))
	}
	ce := bceElem(tp, p, y)
	// 1 − p_t = p + y − 2·p·y
	q := tp.Sub(tp.Add(p, y), tp.Scale(tp.Mul(p, y), 2))
	var w *autodiff.Var
	switch g := float64(gamma); {
	case g == 0:
	case g == math.Trunc(g) && g <= 8:
		w = q
		for i := 1; i < int(g); i++ {
			w = tp.Mul(w, q)
		}
	default:
		w = tp.Exp(tp.Scale(tp.Log(tp.Clamp(q, 1e-12, 1)), gamma))
	}
	l := ce
	if w != nil {
		l = tp.Mul(w, l)
	}
	if alpha >= 0 {
		// α_t = (1−α) + (2α−1)·y
		at := tp.AddScalar(tp.Scale(y, 2*alpha-1), 1-alpha)
		l = tp.Mul(at, l)
	}
	return tp.Mean(l, nil)
}

// Tversky returns the soft Tversky loss of Salehi et al. 2017 ("Tversky
// loss function for image segmentation using 3D fully convolutional deep
// networks"), with sums over the whole batch (as Dice):
//
//	TP = Σ p·y,   FP = Σ p·(1−y),   FN = Σ (1−p)·y
//	L  = 1 − (TP + ε) / (TP + α·FP + β·FN + ε)
//
// α weights the false positives and β the false negatives; the defaults
// α = 0.3, β = 0.7 penalise missed foreground more (favouring recall).
// α = β = 0.5 gives the Dice loss. Both masks empty gives L = 0 (ε/ε). For
// [N,D,H,W,K] with K > 1, TP, FP and FN are summed per channel over the
// batch and voxels, and L is the mean over the K channels of each
// channel's Tversky loss (as Dice; K = 1 is the single-channel formula).
func Tversky(tp *autodiff.Tape, p, y *autodiff.Var, alpha, beta, eps float32) *autodiff.Var {
	tensor.MustSameShape("loss.Tversky", p.Value, y.Value)
	var ax []int // nil: the whole tensor
	if k := channels(p); k > 1 {
		p, y = tp.Reshape(p, -1, k), tp.Reshape(y, -1, k)
		ax = []int{0}
	}
	inter := tp.Sum(tp.Mul(p, y), ax)
	sp, sy := tp.Sum(p, ax), tp.Sum(y, ax)
	fp := tp.Sub(sp, inter)
	fn := tp.Sub(sy, inter)
	num := tp.AddScalar(inter, eps)
	den := tp.AddScalar(tp.Add(inter, tp.Add(tp.Scale(fp, alpha), tp.Scale(fn, beta))), eps)
	if ax != nil {
		return tp.AddScalar(tp.Neg(tp.Mean(tp.Div(num, den), nil)), 1)
	}
	return tp.AddScalar(tp.Neg(tp.Div(num, den)), 1)
}

// CrossEntropy returns the categorical cross-entropy of softmax
// probabilities p [N,D,H,W,K] (the channel axis last; model.Forward with
// Softmax) against a one-hot (or soft, rows summing to 1) target y of the
// same shape, background channel 0 included:
//
//	L = −(1/V)·Σ_{voxels} Σ_k y_k·log p̃_k,   p̃ = clamp(p, 1e-7, 1),   V = N·D·H·W
//
// i.e. the mean over voxels of each voxel's cross-entropy (every channel
// counts; torch.nn.functional.nll_loss of log p with mean reduction, for
// hard labels). The clamp keeps log finite (|log| ≤ 16.1); the gradient is
// zero where p < 1e-7 (see ProbClamp). A tensor of another rank is read as
// [..., K], its last axis the classes. Every voxel contributes, so empty
// masks need no convention.
func CrossEntropy(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
	tensor.MustSameShape("loss.CrossEntropy", p.Value, y.Value)
	sh := p.Value.Shape
	if len(sh) == 0 || sh[len(sh)-1] < 1 {
		panic(fmt.Sprintf("loss.CrossEntropy: shape %v", sh))
	}
	v := p.Value.Len() / sh[len(sh)-1]
	ll := tp.Sum(tp.Mul(y, tp.Log(tp.Clamp(p, ProbClamp, 1))), nil)
	return tp.Scale(ll, float32(-1/float64(v)))
}

// DiceCEOptions weights the two terms of DiceCE.
type DiceCEOptions struct {
	DiceWeight, CEWeight float32 // 1 and 1
	Eps                  float32 // Dice ε (1e-5)
	// Background also includes channel 0 in the Dice term (nnU-Net
	// excludes it by default, and so does DiceCE unless this is set).
	Background bool
}

// DefaultDiceCEOptions returns weights 1 and 1, ε = 1e-5, the Dice term on
// the foreground channels only (DiceBCE's weights).
func DefaultDiceCEOptions() DiceCEOptions {
	return DiceCEOptions{DiceWeight: 1, CEWeight: 1, Eps: DiceEps}
}

// DiceCE returns the softmax counterpart of DiceBCE (nnU-Net's
// DC_and_CE_loss) for softmax probabilities p and a one-hot target y
// [N,D,H,W,K], K ≥ 2, channel 0 the background:
//
//	L = w_D·Dice(p[…,1:], y[…,1:]; ε) + w_C·CrossEntropy(p, y)
//
// The Dice term is the multi-channel batch Dice (mean over the foreground
// channels of each channel's Dice summed over the batch and voxels; all K
// channels with opt.Background), the cross-entropy the mean over voxels on
// all channels. Parts.Dice is the unweighted Dice term.
func DiceCE(tp *autodiff.Tape, p, y *autodiff.Var, opt DiceCEOptions) Parts {
	tensor.MustSameShape("loss.DiceCE", p.Value, y.Value)
	dp, dy := p, y
	if !opt.Background {
		dp, dy = Foreground(tp, p), Foreground(tp, y)
	}
	d := Dice(tp, dp, dy, opt.Eps)
	c := CrossEntropy(tp, p, y)
	return Parts{Total: tp.Add(tp.Scale(d, opt.DiceWeight), tp.Scale(c, opt.CEWeight)), Dice: d}
}

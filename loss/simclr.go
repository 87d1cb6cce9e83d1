package loss

import (
	"fmt"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/nn"
	"github.com/fess-seg/fess/tensor"
)

// ProjectionDim is the default output size of the projection head (SimCLR's
// 128).
const ProjectionDim = 128

// ProjectionHead maps a bottleneck feature map [N,d,h,w,C] to an embedding
// [N,out] for the contrastive baselines (Chen et al. 2020, SimCLR):
//
//	z = W₂·ReLU(W₁·GAP(x) + b₁) + b₂
//
// with GAP the global average over the spatial axes.
type ProjectionHead struct {
	L1, L2 *nn.Dense
}

// NewProjectionHead registers the head's two dense layers (name+".fc1",
// name+".fc2", with biases) in b's State: in → hidden → out.
func NewProjectionHead(b *nn.Builder, name string, in, hidden, out int) *ProjectionHead {
	return &ProjectionHead{
		L1: b.NewDense(name+".fc1", in, hidden, true),
		L2: b.NewDense(name+".fc2", hidden, out, true),
	}
}

// Forward returns the projection [N,out] of a bottleneck map [N,d,h,w,in].
func (h *ProjectionHead) Forward(tp *autodiff.Tape, bottleneck *autodiff.Var) *autodiff.Var {
	return h.L2.Forward(tp, tp.ReLU(h.L1.Forward(tp, tp.GlobalAvgPool(bottleneck))))
}

// Params returns the head's parameters.
func (h *ProjectionHead) Params() []*autodiff.Var {
	return []*autodiff.Var{h.L1.W, h.L1.B, h.L2.W, h.L2.B}
}

// NTXent returns SimCLR's normalised-temperature cross-entropy (Chen et
// al. 2020, "A Simple Framework for Contrastive Learning of Visual
// Representations") of two views' projections z1, z2 [N,D] (row i of each
// comes from the same volume):
//
//	u_i  = z_i / max(‖z_i‖₂, 1e-12)       for the 2N rows of [z1; z2]
//	ℓ_i  = −log( exp(u_i·u_p(i)/T) / Σ_{k≠i} exp(u_i·u_k/T) ),   p(i) = i±N
//	L    = mean over the 2N views of ℓ_i
//
// so each view's positive is the other view of its volume and its negatives
// are the other 2N−2 views. Computed as a masked log-softmax of the 2N×2N
// cosine-similarity matrix (the diagonal set to −1e9, whose exp is 0 in
// float32). Needs N ≥ 1 (with N = 1 the positive is the only candidate and
// L = 0). Masks do not enter; a zero projection normalises to zero
// (similarity 0 with everything).
func NTXent(tp *autodiff.Tape, z1, z2 *autodiff.Var, temperature float32) *autodiff.Var {
	tensor.MustRank("loss.NTXent", z1.Value, 2)
	tensor.MustSameShape("loss.NTXent", z1.Value, z2.Value)
	if !(temperature > 0) {
		panic(fmt.Sprintf("loss.NTXent: temperature %v, want > 0", temperature))
	}
	n := z1.Value.Shape[0]
	u := tp.L2Normalize(tp.Concat(0, z1, z2), []int{1}, NormEps) // [2N,D]
	sim := tp.Scale(tp.MatMul(u, tp.Transpose(u)), 1/temperature)
	m := 2 * n
	diag := tensor.New(m, m)
	pos := tensor.New(m, m)
	for i := 0; i < m; i++ {
		diag.Data[i*m+i] = -1e9
		pos.Data[i*m+(i+n)%m] = 1
	}
	ls := tp.LogSoftmax(tp.Add(sim, autodiff.Const(diag)), 1)
	return tp.Scale(tp.Sum(tp.Mul(ls, autodiff.Const(pos)), nil), -1/float32(m))
}

// SimCLR returns the SimCLR baseline of docs/method.md (not in the reference's
// code; defined here), weighted as FESS so the comparison is fair:
//
//	Total = λ·Dice(probs, target) + (1−λ)·scale·NTXent(z1, z2, T)
//
// with z1, z2 the projection-head outputs of two augmented views of the
// batch (package augment) and probs the segmentation of the first view
// (target: its mask; Dice is the multi-channel batch Dice, see there).
// Parts.Con is the unweighted NT-Xent.
func SimCLR(tp *autodiff.Tape, probs, target, z1, z2 *autodiff.Var, opt FESSOptions) Parts {
	d := Dice(tp, probs, target, opt.Eps)
	c := NTXent(tp, z1, z2, opt.Temperature)
	return Parts{Total: Combine(tp, d, c, opt.Lambda, opt.Scale), Dice: d, Con: c}
}

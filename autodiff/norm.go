package autodiff

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// BNState is a BatchNorm layer's running statistics and hyper-parameters.
// PyTorch defaults: Momentum 0.1, Eps 1e-5; Keras: 0.01 (its momentum 0.99)
// and 1e-3.
type BNState struct {
	RunMean, RunVar *tensor.Tensor // [C]; start at 0 and 1
	Momentum, Eps   float32
}

// NewBNState returns running statistics for c channels (mean 0, var 1).
func NewBNState(c int, momentum, eps float32) *BNState {
	return &BNState{RunMean: tensor.New(c), RunVar: tensor.Full(1, c), Momentum: momentum, Eps: eps}
}

// channelSums returns per-channel sums over the rows of a [M,C] view: fn
// adds its chunk [lo,hi) of rows into the worker's float64 accumulators,
// which are then combined in worker order.
func channelSums(m, c int, fn func(lo, hi int, acc []float64)) []float64 {
	p := tensor.Chunks(m, 512)
	part := make([]float64, p*c)
	tensor.Parallel(m, 512, func(w, lo, hi int) {
		fn(lo, hi, part[w*c:(w+1)*c])
	})
	out := make([]float64, c)
	for w := 0; w < p; w++ {
		for j := 0; j < c; j++ {
			out[j] += part[w*c+j]
		}
	}
	return out
}

// BatchNorm normalises x (any rank; channels on the last axis, statistics
// over all other axes, M values per channel) and applies y = γ·x̂ + β.
//
// Training (train=true): x̂ = (x − μ)/√(σ² + eps) with the batch mean μ and
// biased variance σ² (float64 sums); the running statistics are updated as
// PyTorch does: run = (1−m)·run + m·stat, with the unbiased variance
// σ²·M/(M−1). Backward: dβ = Σg, dγ = Σ g·x̂,
// dx = γ/(M·√(σ²+eps)) · (M·g − dβ − x̂·dγ).
//
// Inference (train=false): x̂ = (x − run_mean)/√(run_var + eps), statistics
// untouched; dx = g·γ/√(run_var+eps).
func (tp *Tape) BatchNorm(x, gamma, beta *Var, st *BNState, train bool) *Var {
	return tp.batchNorm(x, gamma, beta, st, train, false)
}

// BatchNormReLU returns ReLU(BatchNorm(x, …)) as one op: the same values
// and gradients, bit for bit, as tp.ReLU(tp.BatchNorm(x, …)) (the ReLU's
// gradient mask, output > 0, is applied while the BatchNorm backward reads
// the output gradient), without the intermediate tensor, its gradient and
// two passes over memory.
func (tp *Tape) BatchNormReLU(x, gamma, beta *Var, st *BNState, train bool) *Var {
	return tp.batchNorm(x, gamma, beta, st, train, true)
}

// BatchNormReLUDropout returns DropoutInPlace(BatchNormReLU(x, …), p,
// train, rng) as one op: on an arena tape, in training with p > 0, the
// normalisation and the dropout mask run one block of the output at a
// time, the block still in cache for the mask, instead of as two passes
// over memory. The same values, gradients and RNG draws, bit for bit; on
// other tapes and settings it is the two ops.
func (tp *Tape) BatchNormReLUDropout(x, gamma, beta *Var, st *BNState, train bool, p float32, rng *RNG) *Var {
	if tp == nil || !tp.arena || !train || p <= 0 {
		return tp.DropoutInPlace(tp.BatchNormReLU(x, gamma, beta, st, train), p, train, rng)
	}
	d := newDropDraw(p, rng)
	return tp.batchNormDrop(x, gamma, beta, st, train, true, &d)
}

func (tp *Tape) batchNorm(x, gamma, beta *Var, st *BNState, train, relu bool) *Var {
	return tp.batchNormDrop(x, gamma, beta, st, train, relu, nil)
}

// batchNormDrop is batchNorm followed, if drop is set, by the in-place
// dropout of its output with that draw (DropoutInPlace), fused.
func (tp *Tape) batchNormDrop(x, gamma, beta *Var, st *BNState, train, relu bool, drop *dropDraw) *Var {
	xs := x.Value.Shape
	c := xs[len(xs)-1]
	if len(gamma.Value.Data) != c || len(beta.Value.Data) != c || st.RunMean.Len() != c || st.RunVar.Len() != c {
		panic(fmt.Sprintf("autodiff.BatchNorm: input %v, gamma %v, beta %v, running %v/%v",
			xs, gamma.Value.Shape, beta.Value.Shape, st.RunMean.Shape, st.RunVar.Shape))
	}
	xd := x.Value.Data
	m := len(xd) / c
	mean := make([]float32, c)
	invstd := make([]float32, c)
	if train {
		if m < 2 {
			panic(fmt.Sprintf("autodiff.BatchNorm: training needs more than one value per channel, input %v", xs))
		}
		s := channelSums(m, c, func(lo, hi int, acc []float64) {
			kernels.BNSum(acc, xd[lo*c:hi*c], hi-lo, c)
		})
		mu := make([]float64, c)
		for j := range s {
			mu[j] = s[j] / float64(m)
		}
		ss := channelSums(m, c, func(lo, hi int, acc []float64) {
			kernels.BNSumSqDev(acc, xd[lo*c:hi*c], mu, hi-lo, c)
		})
		mom := st.Momentum
		for j := 0; j < c; j++ {
			v := ss[j] / float64(m)
			mean[j] = float32(mu[j])
			invstd[j] = float32(1 / math.Sqrt(v+float64(st.Eps)))
			unb := float32(ss[j] / float64(m-1))
			st.RunMean.Data[j] = (1-mom)*st.RunMean.Data[j] + mom*mean[j]
			st.RunVar.Data[j] = (1-mom)*st.RunVar.Data[j] + mom*unb
		}
	} else {
		for j := 0; j < c; j++ {
			mean[j] = st.RunMean.Data[j]
			invstd[j] = float32(1 / math.Sqrt(float64(st.RunVar.Data[j])+float64(st.Eps)))
		}
	}
	out := tp.allocFull(xs...)
	od := out.Data
	gd, bd := gamma.Value.Data, beta.Value.Data
	scale := make([]float32, c)
	shift := make([]float32, c)
	for j := 0; j < c; j++ {
		scale[j] = gd[j] * invstd[j]
		shift[j] = bd[j] - mean[j]*scale[j]
	}
	var bits []uint16 // the dropout's mask record, when a backward will run
	if drop == nil {
		parOwn(m, 512, func(lo, hi int) {
			kernels.BNApply(od[lo*c:hi*c], xd[lo*c:hi*c], scale, shift, hi-lo, c, relu)
		})
	} else {
		n := len(od)
		if tp.needs(x, gamma, beta) {
			bits = dropBits(tp, n)
		}
		// blocks of whole rows and whole 16-element mask words, ~32 KiB
		unit := 16 / gcd(16, c) * c
		blk := unit * max(1, 8192/unit)
		units := (n + unit - 1) / unit
		parOwn(units, max(1, 4096/unit), func(lo, hi int) {
			end := min(hi*unit, n)
			for e0 := lo * unit; e0 < end; e0 += blk {
				e1 := min(e0+blk, end)
				kernels.BNApply(od[e0:e1], xd[e0:e1], scale, shift, (e1-e0)/c, c, relu)
				if bits != nil {
					kernels.DropMaskRecord(od[e0:e1], e0, drop.key, drop.th, drop.s, bits[e0/16:])
				} else {
					kernels.DropMask(od[e0:e1], e0, drop.key, drop.th, drop.s, false)
				}
			}
		})
	}
	var res *Var
	res = tp.result(out, func(g []float32) {
		// The output is read here (with relu) and the input always, as they
		// are at backward time: an arena tape may have recomputed the
		// output into another buffer (Tape.Recompute; DropoutInPlace may
		// have scaled it, which keeps its sign, and zeroed it only where g
		// is 0).
		xd, od := x.Value.Data, res.Value.Data
		// With relu, the BatchNorm output's gradient is g where the output
		// is positive, else 0 (the ReLU's backward), applied as g is read.
		// dβ and dγ in one pass (two independent accumulators per channel)
		both := channelSums(m, 2*c, func(lo, hi int, acc []float64) {
			var o []float32
			if relu {
				o = od[lo*c : hi*c]
			}
			kernels.BNGradSums(acc[:c], acc[c:], xd[lo*c:hi*c], g[lo*c:hi*c], o, mean, invstd, hi-lo, c, relu)
		})
		sums, dots := both[:c], both[c:]
		if gamma.RequiresGrad {
			gg := gamma.grad()
			for j := range gg {
				gg[j] += float32(dots[j])
			}
		}
		if beta.RequiresGrad {
			gb := beta.grad()
			for j := range gb {
				gb[j] += float32(sums[j])
			}
		}
		if !x.RequiresGrad {
			return
		}
		// the first gradient of x (the usual case: x is a conv output read
		// only here) is written, not added to zeros
		gx, set := x.gradFresh()
		if !train {
			parOwn(m, 512, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					gr, xg, or := g[r*c:(r+1)*c], gx[r*c:(r+1)*c], od[r*c:(r+1)*c]
					for j := range gr {
						gv := gr[j]
						if relu {
							gv = reluMask(gv, or[j])
						}
						if set {
							xg[j] = gv * scale[j]
						} else {
							xg[j] += gv * scale[j]
						}
					}
				}
			})
			return
		}
		// dx = scale·(g − dβ/M − x̂·dγ/M)
		a := make([]float32, c)
		bb := make([]float32, c)
		for j := 0; j < c; j++ {
			a[j] = float32(sums[j] / float64(m))
			bb[j] = float32(dots[j] / float64(m))
		}
		parOwn(m, 512, func(lo, hi int) {
			var o []float32
			if relu {
				o = od[lo*c : hi*c]
			}
			kernels.BNGradInput(gx[lo*c:hi*c], xd[lo*c:hi*c], g[lo*c:hi*c], o, mean, invstd, scale, a, bb, hi-lo, c, relu, set)
		})
	}, x, gamma, beta)
	if tp.recording() {
		// the output from the input, as computed above (Tape.Recompute)
		res.remat = func(dst []float32) {
			xv, done := valueOf(x)
			parOwn(m, 512, func(lo, hi int) {
				kernels.BNApply(dst[lo*c:hi*c], xv[lo*c:hi*c], scale, shift, hi-lo, c, relu)
			})
			done()
		}
	}
	if bits != nil {
		drop.attach(tp, res, bits)
	}
	return res
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// reluMask returns g where the ReLU output o is > 0, else +0 (see
// kernels.ReLUMask).
func reluMask(g, o float32) float32 { return kernels.ReLUMask(g, o) }

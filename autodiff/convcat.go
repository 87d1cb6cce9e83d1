package autodiff

import (
	"fmt"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// Conv3DCat returns Conv3D(Concat(4, a, b), w, bias, spec), the U-Net
// decoder's first conv on [up-sampled, skip], bit for bit, without forming
// the concatenation where the conv takes the Winograd path and both parts
// have a multiple of 8 channels: the input transform reads each tile's
// channels from a and from b in place, and the input gradient's output
// transform writes a's and b's gradients directly. That spares writing
// and reading the concatenated map in every forward pass, its
// recomputation for the backward, and splitting its gradient. Elsewhere it
// is the two ops.
//
// The backward reads a's and b's values as they are then (recomputed into
// temporary buffers if an arena tape released them: Tape.Release,
// Tape.Recompute), so the caller may release both once this op has run.
func (tp *Tape) Conv3DCat(a, b, w, bias *Var, spec ConvSpec) *Var {
	tensor.MustRank("autodiff.Conv3DCat input a", a.Value, 5)
	tensor.MustRank("autodiff.Conv3DCat input b", b.Value, 5)
	tensor.MustRank("autodiff.Conv3DCat weight", w.Value, 5)
	as, bs, ws := a.Value.Shape, b.Value.Shape, w.Value.Shape
	for i := 0; i < 4; i++ {
		if as[i] != bs[i] {
			panic(fmt.Sprintf("autodiff.Conv3DCat: inputs %v and %v differ off the channel axis", as, bs))
		}
	}
	ca, cb := as[4], bs[4]
	if ws[3] != ca+cb {
		panic(fmt.Sprintf("autodiff.Conv3DCat: inputs %v and %v have %d channels together, weight %v expects %d",
			as, bs, ca+cb, ws, ws[3]))
	}
	co := ws[4]
	checkBias("Conv3DCat", bias, co)
	xs := []int{as[0], as[1], as[2], as[3], ca + cb}
	g := newConvGeom("autodiff.Conv3DCat", xs, [3]int{ws[0], ws[1], ws[2]}, co, spec)
	if !useConvCat || !g.winograd() || ca%8 != 0 || cb%8 != 0 {
		cat := tp.Concat(4, a, b)
		y := tp.Conv3D(cat, w, bias, spec)
		tp.Free(cat)
		tp.Recompute(cat, y) // from a and b when the conv's backward reads it
		tp.FreeAfterBackwardOf(cat, y)
		return y
	}
	out := tp.allocFull(g.n, g.od, g.oh, g.ow, co)
	var bd []float32
	if bias != nil {
		bd = bias.Value.Data
	}
	g.winoConvParts(catParts(a.Value.Data, ca, b.Value.Data, cb), w.Value.Data, false, onePart(out.Data, co, false), bd)
	return tp.result(out, func(gy []float32) {
		if bias != nil && bias.RequiresGrad {
			biasGrad(gy, co, bias.grad())
		}
		if w.RequiresGrad {
			ad, doneA := valueOf(a)
			bd, doneB := valueOf(b)
			g.winoWeightGradParts(catParts(ad, ca, bd, cb), gy, w.grad())
			doneA()
			doneB()
		}
		if a.RequiresGrad || b.RequiresGrad {
			catInputGrad(&g, gy, w.Value.Data, a, b)
		}
	}, a, b, w, bias)
}

// useConvCat enables Conv3DCat's fused path (a variable so the tests
// compare it with the two ops).
var useConvCat = true

// catInputGrad adds (writes, where fresh) the input gradient of g's conv
// on the concatenation [a, b] to a's and b's gradients: the forward conv
// of gy with the flipped kernels (inputGradAsConv), its output split by
// channels. Where that conv is not on the Winograd path, the whole
// gradient goes through a temporary buffer.
func catInputGrad(g *convGeom, gy, wd []float32, a, b *Var) {
	ca := a.Value.Shape[4]
	cb := b.Value.Shape[4]
	var dsts []chanPart
	for _, p := range []struct {
		v      *Var
		c, off int
	}{{a, ca, 0}, {b, cb, ca}} {
		if p.v.RequiresGrad {
			d, fresh := p.v.gradFresh()
			dsts = append(dsts, chanPart{data: d, c: p.c, off: p.off, acc: !fresh})
		}
	}
	g2 := g.inputGradGeom()
	if g2.winograd() {
		g2.winoConvParts(onePart(gy, g.co, false), wd, true, dsts, nil)
		return
	}
	full := getBufDirty(g.n * g.d * g.h * g.w * g.c)
	defer putBuf(full)
	inputGradAsConv(g, gy, wd, full, false)
	rows := g.n * g.d * g.h * g.w
	tensor.Parallel(rows, 256, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			for _, p := range dsts {
				d, s := p.data[r*p.c:(r+1)*p.c], full[r*g.c+p.off:][:p.c]
				if p.acc {
					kernels.AddTo(d, s)
				} else {
					copy(d, s)
				}
			}
		}
	})
}

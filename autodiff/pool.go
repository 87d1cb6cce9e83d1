package autodiff

import (
	"fmt"
	"unsafe"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// MaxPool3D returns the maximum over non-overlapping k×k×k windows (stride
// k, no padding; trailing voxels that do not fill a window are dropped, as
// PyTorch's floor mode) of x [N,D,H,W,C], per channel. Ties go to the first
// window element in z,y,x order (as PyTorch); NaN propagates. The backward
// routes each output gradient to its arg-max input.
func (tp *Tape) MaxPool3D(x *Var, k int) *Var {
	tensor.MustRank("autodiff.MaxPool3D", x.Value, 5)
	xs := x.Value.Shape
	n, d, h, w, c := xs[0], xs[1], xs[2], xs[3], xs[4]
	if k <= 0 || d < k || h < k || w < k {
		panic(fmt.Sprintf("autodiff.MaxPool3D: window %d for input %v", k, xs))
	}
	od, oh, ow := d/k, h/k, w/k
	out := tp.allocFull(n, od, oh, ow, c)
	xd, o := x.Value.Data, out.Data
	if k == 2 && len(xd) < 1<<31 {
		// The U-Net's pool: whole output rows on kernels.MaxPool2Row, and
		// arg-max indices only when a backward pass will read them.
		var arg []int32
		if tp.needs(x) {
			// on an arena tape, from the buffer pool until Reset (no
			// garbage per step; every element is written below)
			if tp.arena {
				b := tp.allocBufDirty(len(o))
				arg = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
			} else {
				arg = make([]int32, len(o))
			}
		}
		sy, sz := w*c, h*w*c
		parOwn(n*od*oh, 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				oy, oz, nn := r%oh, r/oh%od, r/(oh*od)
				base := (nn*d+2*oz)*sz + 2*oy*sy
				var a []int32
				if arg != nil {
					a = arg[r*ow*c : (r+1)*ow*c]
				}
				kernels.MaxPool2Row(o[r*ow*c:(r+1)*ow*c], a, xd, base, ow, c, sy, sz)
			}
		})
		return tp.result(out, func(g []float32) { scatterArg(x.grad(), g, arg) }, x)
	}
	arg := make([]int32, len(out.Data))
	rows := n * od * oh * ow
	parOwn(rows, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ox := r % ow
			t := r / ow
			oy := t % oh
			t /= oh
			oz := t % od
			nn := t / od
			dst, da := o[r*c:(r+1)*c], arg[r*c:(r+1)*c]
			first := true
			for kz := 0; kz < k; kz++ {
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						off := ((((nn*d+oz*k+kz)*h+oy*k+ky)*w + ox*k + kx) * c)
						src := xd[off : off+c]
						for j, v := range src {
							// v > max, or NaN not yet seen: take it.
							if first || v > dst[j] || (v != v && dst[j] == dst[j]) {
								dst[j] = v
								da[j] = int32(off + j)
							}
						}
						first = false
					}
				}
			}
		}
	})
	return tp.result(out, func(g []float32) { scatterArg(x.grad(), g, arg) }, x)
}

// scatterArg adds each output gradient to the input its maximum came from.
// Windows are disjoint, so each input gets at most one contribution.
func scatterArg(gx, g []float32, arg []int32) {
	parOwn(len(g), 0, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gx[arg[i]] += g[i]
		}
	})
}

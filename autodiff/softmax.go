package autodiff

import "math"

// Softmax returns exp(x) / Σ exp(x) along axis, computed stably: the
// maximum along the axis is subtracted and the sum of exponentials is
// accumulated in float64, so every output lies in [0, 1] and the values
// along the axis sum to 1 up to float32 rounding. The segmentation model
// uses it over the channel axis (the last one of NDHWC).
//
// Gradient: dx = y·(g − Σ_axis g·y), with y the output.
func (tp *Tape) Softmax(x *Var, axis int) *Var {
	_, outer, n, inner := axisGeom("Softmax", x.Value.Shape, axis)
	xd := x.Value.Data
	out := tp.alloc(x.Value.Shape...)
	od := out.Data
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			m, s := maxSumExp(xd, base, n, inner)
			for j := 0; j < n; j++ {
				k := base + j*inner
				od[k] = float32(math.Exp(float64(xd[k]-m)) / s)
			}
		}
	}
	return tp.result(out, func(g []float32) {
		gx := x.grad()
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				base := o*n*inner + in
				s := 0.0
				for j := 0; j < n; j++ {
					k := base + j*inner
					s += float64(g[k]) * float64(od[k])
				}
				for j := 0; j < n; j++ {
					k := base + j*inner
					gx[k] += float32(float64(od[k]) * (float64(g[k]) - s))
				}
			}
		}
	}, x)
}

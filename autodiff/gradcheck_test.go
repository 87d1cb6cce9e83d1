package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// randVar returns a parameter of the given shape with values uniform in
// [lo, hi).
func randVar(rng *rand.Rand, lo, hi float32, shape ...int) *Var {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = lo + (hi-lo)*rng.Float32()
	}
	return NewParam("", t)
}

// gradCheck compares the tape's gradient of L = Σ r·f(inputs) (r random,
// fixed) with central finite differences (L evaluated in float64 from the
// float32 forward, step h) on up to 40 elements of each input:
// |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).
func gradCheck(t *testing.T, name string, ins []*Var, f func(tp *Tape) *Var, h, atol, rtol float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	tp := NewTape()
	y := f(tp)
	r := tensor.New(y.Value.Shape...)
	for i := range r.Data {
		r.Data[i] = rng.Float32()*2 - 1
	}
	for _, v := range ins {
		v.ZeroGrad()
	}
	tp.Backward(tp.Sum(tp.Mul(y, Const(r)), nil))
	loss := func() float64 {
		yv := f(nil).Value.Data
		s := 0.0
		for i, v := range yv {
			s += float64(v) * float64(r.Data[i])
		}
		return s
	}
	for vi, v := range ins {
		n := len(v.Value.Data)
		idx := rng.Perm(n)
		if len(idx) > 40 {
			idx = idx[:40]
		}
		bad := 0
		for _, i := range idx {
			old := v.Value.Data[i]
			v.Value.Data[i] = old + float32(h)
			lp := loss()
			v.Value.Data[i] = old - float32(h)
			lm := loss()
			v.Value.Data[i] = old
			num := (lp - lm) / (2 * h)
			ana := float64(v.Grad.Data[i])
			if math.Abs(ana-num) > atol+rtol*math.Max(math.Abs(ana), math.Abs(num)) {
				if bad < 5 {
					t.Errorf("%s: input %d element %d: analytic %.6g, numeric %.6g", name, vi, i, ana, num)
				}
				bad++
			}
		}
	}
}

func TestGradElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := randVar(rng, 0.5, 2, 2, 3, 4)
	b := randVar(rng, 0.5, 2, 2, 3, 4)
	c := randVar(rng, 0.5, 2, 4)       // trailing broadcast
	s := randVar(rng, 0.5, 2, 1)       // scalar broadcast
	m := randVar(rng, 0.5, 2, 2, 1, 4) // general broadcast
	tol := []float64{1e-3, 1e-3, 1e-2}
	for _, tc := range []struct {
		name string
		ins  []*Var
		f    func(tp *Tape) *Var
	}{
		{"Add", []*Var{a, b}, func(tp *Tape) *Var { return tp.Add(a, b) }},
		{"Sub", []*Var{a, c}, func(tp *Tape) *Var { return tp.Sub(a, c) }},
		{"Mul", []*Var{a, m}, func(tp *Tape) *Var { return tp.Mul(a, m) }},
		{"Mul/scalar", []*Var{s, a}, func(tp *Tape) *Var { return tp.Mul(s, a) }},
		{"Div", []*Var{a, b}, func(tp *Tape) *Var { return tp.Div(a, b) }},
		{"Div/bcast", []*Var{m, c}, func(tp *Tape) *Var { return tp.Div(m, c) }},
		{"Exp", []*Var{a}, func(tp *Tape) *Var { return tp.Exp(a) }},
		{"Log", []*Var{a}, func(tp *Tape) *Var { return tp.Log(a) }},
		{"Sqrt", []*Var{a}, func(tp *Tape) *Var { return tp.Sqrt(a) }},
		{"Square", []*Var{a}, func(tp *Tape) *Var { return tp.Square(a) }},
		{"Scale+AddScalar", []*Var{a}, func(tp *Tape) *Var { return tp.AddScalar(tp.Scale(a, -3), 2) }},
		{"Sigmoid", []*Var{a}, func(tp *Tape) *Var { return tp.Sigmoid(tp.AddScalar(a, -1.2)) }},
		{"Tanh", []*Var{a}, func(tp *Tape) *Var { return tp.Tanh(tp.AddScalar(a, -1.2)) }},
		{"ReLU", []*Var{a}, func(tp *Tape) *Var { return tp.ReLU(tp.AddScalar(a, -1.25)) }},
		{"Softplus", []*Var{a}, func(tp *Tape) *Var { return tp.Softplus(tp.AddScalar(a, -1.2)) }},
		{"LogSigmoid", []*Var{a}, func(tp *Tape) *Var { return tp.LogSigmoid(tp.Scale(tp.AddScalar(a, -1.2), 5)) }},
		{"Clamp", []*Var{a}, func(tp *Tape) *Var { return tp.Clamp(a, 0.9, 1.6) }},
	} {
		gradCheck(t, tc.name, tc.ins, tc.f, 1e-2, tol[0], tol[2])
	}
}

func TestGradReduceAndShape(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := randVar(rng, -1, 1, 2, 3, 4, 2, 5)
	b := randVar(rng, -1, 1, 2, 3, 4, 2, 3)
	q := randVar(rng, -1, 1, 6, 5)
	for _, tc := range []struct {
		name string
		ins  []*Var
		f    func(tp *Tape) *Var
	}{
		{"Sum/all", []*Var{a}, func(tp *Tape) *Var { return tp.Sum(a, nil) }},
		{"Sum/axes", []*Var{a}, func(tp *Tape) *Var { return tp.Sum(a, []int{1, 3}) }},
		{"SumKeep/spatial", []*Var{a}, func(tp *Tape) *Var { return tp.SumKeep(a, []int{0, 1, 2, 3}) }},
		{"Mean/axes", []*Var{a}, func(tp *Tape) *Var { return tp.Mean(a, []int{-1}) }},
		{"GlobalAvgPool", []*Var{a}, func(tp *Tape) *Var { return tp.GlobalAvgPool(a) }},
		{"L2Normalize/spatial", []*Var{a}, func(tp *Tape) *Var { return tp.L2Normalize(a, []int{1, 2, 3}, 1e-12) }},
		{"L2Normalize/last", []*Var{q}, func(tp *Tape) *Var { return tp.L2Normalize(q, []int{1}, 1e-12) }},
		{"LogSoftmax/0", []*Var{q}, func(tp *Tape) *Var { return tp.LogSoftmax(q, 0) }},
		{"LogSoftmax/1", []*Var{q}, func(tp *Tape) *Var { return tp.LogSoftmax(q, 1) }},
		{"LogSumExp/flat", []*Var{a}, func(tp *Tape) *Var { return tp.LogSumExp(tp.Reshape(a, -1), 0) }},
		{"Concat/channels", []*Var{a, b}, func(tp *Tape) *Var { return tp.Concat(4, a, b) }},
		{"Slice", []*Var{a}, func(tp *Tape) *Var { return tp.Slice(a, 2, 1, 3) }},
		{"Flip", []*Var{a}, func(tp *Tape) *Var { return tp.Flip(a, 3) }},
		{"Transpose", []*Var{q}, func(tp *Tape) *Var { return tp.Transpose(q) }},
	} {
		gradCheck(t, tc.name, tc.ins, tc.f, 1e-2, 1e-3, 1e-2)
	}
}

func TestGradLinalg(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randVar(rng, -1, 1, 4, 6)
	w := randVar(rng, -1, 1, 6, 3)
	b := randVar(rng, -1, 1, 3)
	gradCheck(t, "MatMul", []*Var{x, w}, func(tp *Tape) *Var { return tp.MatMul(x, w) }, 1e-2, 1e-3, 1e-2)
	gradCheck(t, "Dense", []*Var{x, w, b}, func(tp *Tape) *Var { return tp.Dense(x, w, b) }, 1e-2, 1e-3, 1e-2)
}

func TestGradConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	x := randVar(rng, -1, 1, 2, 5, 6, 4, 3)
	for _, tc := range []struct {
		name string
		k    [3]int
		spec ConvSpec
	}{
		{"3x3x3 same", [3]int{3, 3, 3}, Same3D(1)},
		{"3x3x3 valid", [3]int{3, 3, 3}, Valid3D(1)},
		{"2x3x1 stride 2 same", [3]int{2, 3, 1}, ConvSpec{Stride: [3]int{2, 2, 1}, Same: true}},
		{"3x3x3 stride 2 pad 1", [3]int{3, 3, 3}, ConvSpec{Stride: [3]int{2, 2, 2}, Pad: [3]int{1, 1, 1}}},
		{"1x1x1", [3]int{1, 1, 1}, Valid3D(1)},
	} {
		w := randVar(rng, -1, 1, tc.k[0], tc.k[1], tc.k[2], 3, 2)
		b := randVar(rng, -1, 1, 2)
		gradCheck(t, "Conv3D "+tc.name, []*Var{x, w, b}, func(tp *Tape) *Var { return tp.Conv3D(x, w, b, tc.spec) },
			1e-2, 2e-3, 1e-2)
	}
	// One input channel takes im2col's single-channel path.
	x1 := randVar(rng, -1, 1, 2, 5, 7, 6, 1)
	for _, spec := range []ConvSpec{Same3D(1), Same3D(2), {Stride: [3]int{1, 2, 3}, Pad: [3]int{0, 1, 2}}} {
		w := randVar(rng, -1, 1, 3, 3, 3, 1, 2)
		b := randVar(rng, -1, 1, 2)
		gradCheck(t, fmt.Sprintf("Conv3D 1-channel %+v", spec), []*Var{x1, w, b},
			func(tp *Tape) *Var { return tp.Conv3D(x1, w, b, spec) }, 1e-2, 2e-3, 1e-2)
	}
	for _, tc := range []struct {
		name string
		k    [3]int
		spec ConvSpec
	}{
		{"k2 s2", [3]int{2, 2, 2}, Valid3D(2)},
		{"k3 s2 pad1", [3]int{3, 3, 3}, ConvSpec{Stride: [3]int{2, 2, 2}, Pad: [3]int{1, 1, 1}}},
		{"k3 s1 same", [3]int{3, 3, 3}, Same3D(1)},
	} {
		w := randVar(rng, -1, 1, tc.k[0], tc.k[1], tc.k[2], 2, 3)
		b := randVar(rng, -1, 1, 2)
		gradCheck(t, "ConvTranspose3D "+tc.name, []*Var{x, w, b},
			func(tp *Tape) *Var { return tp.ConvTranspose3D(x, w, b, tc.spec) }, 1e-2, 2e-3, 1e-2)
	}
}

func TestGradConvManyTiles(t *testing.T) {
	// Enough rows for several tiles per worker, with 2 workers.
	old := tensor.SetThreads(2)
	defer tensor.SetThreads(old)
	rng := rand.New(rand.NewPCG(10, 11))
	x := randVar(rng, -1, 1, 2, 12, 12, 12, 8)
	w := randVar(rng, -1, 1, 3, 3, 3, 8, 4)
	b := randVar(rng, -1, 1, 4)
	gradCheck(t, "Conv3D tiled", []*Var{x, w, b}, func(tp *Tape) *Var { return tp.Conv3D(x, w, b, Same3D(1)) },
		1e-2, 5e-3, 1e-2)
}

func TestGradPoolNormDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	// Distinct, well separated values so a ±h step never changes the arg-max.
	x := NewParam("", tensor.New(2, 4, 4, 6, 3))
	perm := rng.Perm(x.Value.Len())
	for i, p := range perm {
		x.Value.Data[i] = float32(p)*0.05 - 3
	}
	gradCheck(t, "MaxPool3D", []*Var{x}, func(tp *Tape) *Var { return tp.MaxPool3D(x, 2) }, 1e-3, 1e-3, 1e-2)

	xb := randVar(rng, -1, 2, 2, 3, 4, 2, 3)
	gamma := randVar(rng, 0.5, 1.5, 3)
	beta := randVar(rng, -1, 1, 3)
	st := NewBNState(3, 0.1, 1e-5)
	gradCheck(t, "BatchNorm/train", []*Var{xb, gamma, beta},
		func(tp *Tape) *Var { return tp.BatchNorm(xb, gamma, beta, st, true) }, 1e-2, 2e-3, 2e-2)
	st2 := &BNState{RunMean: tensor.FromSlice([]float32{0.1, -0.2, 0.3}, 3),
		RunVar: tensor.FromSlice([]float32{0.5, 1.5, 2}, 3), Momentum: 0.1, Eps: 1e-5}
	gradCheck(t, "BatchNorm/eval", []*Var{xb, gamma, beta},
		func(tp *Tape) *Var { return tp.BatchNorm(xb, gamma, beta, st2, false) }, 1e-2, 1e-3, 1e-2)

	// Dropout: a fixed mask per draw, so re-seed the counter before every
	// evaluation; the function is then linear in x.
	r := NewRNG(42)
	gradCheck(t, "Dropout", []*Var{xb}, func(tp *Tape) *Var {
		r.Counter = 5
		return tp.Dropout(xb, 0.3, true, r)
	}, 1e-2, 1e-3, 1e-2)
}

// TestGradConvTinyTiles shrinks the im2col tiles to a few rows so that
// tiles start and end inside output rows (and workers get several tiles),
// for one- and multi-channel inputs, strides 1 and 2, and the transposed
// convolution.
func TestGradConvTinyTiles(t *testing.T) {
	old := tileElems
	defer func() { tileElems = old }()
	oldT := tensor.SetThreads(2)
	defer tensor.SetThreads(oldT)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, cin := range []int{1, 3} {
		x := randVar(rng, -1, 1, 2, 5, 6, 7, cin)
		for _, spec := range []ConvSpec{Same3D(1), Same3D(2), {Stride: [3]int{2, 1, 3}, Pad: [3]int{1, 0, 2}}} {
			tileElems = 5 * 27 * cin // 5 rows per tile
			w := randVar(rng, -1, 1, 3, 3, 3, cin, 2)
			b := randVar(rng, -1, 1, 2)
			gradCheck(t, fmt.Sprintf("Conv3D tiny tiles cin=%d %+v", cin, spec), []*Var{x, w, b},
				func(tp *Tape) *Var { return tp.Conv3D(x, w, b, spec) }, 1e-2, 2e-3, 1e-2)
		}
		wt := randVar(rng, -1, 1, 3, 3, 3, 2, cin)
		bt := randVar(rng, -1, 1, 2)
		tileElems = 3 * 27 * 2
		gradCheck(t, fmt.Sprintf("ConvTranspose3D tiny tiles cin=%d", cin), []*Var{x, wt, bt},
			func(tp *Tape) *Var {
				return tp.ConvTranspose3D(x, wt, bt, ConvSpec{Stride: [3]int{2, 2, 2}, Pad: [3]int{1, 1, 1}})
			}, 1e-2, 2e-3, 1e-2)
	}
}

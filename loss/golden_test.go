package loss

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/golden"
	"github.com/fess-seg/fess/nn"
	"github.com/fess-seg/fess/tensor"
)

// Tolerances against the PyTorch fixtures (testdata/gen_golden.py): loss
// values within 1e-5 relative (+1e-7 absolute, for values near 0);
// gradients elementwise within gradAtol·max|g_torch| + gradRtol·|g_torch|.
// Both sides compute in float32; the engine sums in float64, PyTorch in
// float32 with its own ordering, so gradients agree to a few float32 ulps of
// the largest element.
const (
	valRtol  = 1e-5
	valAtol  = 1e-7
	gradAtol = 1e-5
	gradRtol = 1e-4
)

func loadGolden(t *testing.T) *golden.File {
	t.Helper()
	f, err := golden.Load("testdata/losses")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func param(t *tensor.Tensor) *autodiff.Var { return autodiff.NewParam("", t.Clone()) }
func cnst(t *tensor.Tensor) *autodiff.Var  { return autodiff.Const(t.Clone()) }

func checkValue(t *testing.T, name string, got float32, want float64) {
	t.Helper()
	if d := math.Abs(float64(got) - want); d > valAtol+valRtol*math.Abs(want) || math.IsNaN(float64(got)) {
		t.Errorf("%s: loss %.9g, PyTorch %.9g (rel. diff %.2g)", name, got, want, d/math.Abs(want))
	}
}

func checkGrad(t *testing.T, name string, got, want *tensor.Tensor) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: gradient shape %v, PyTorch %v", name, got.Shape, want.Shape)
	}
	mx := 0.0
	for _, v := range want.Data {
		mx = math.Max(mx, math.Abs(float64(v)))
	}
	bad := 0
	for i, w := range want.Data {
		g := float64(got.Data[i])
		if math.Abs(g-float64(w)) > gradAtol*mx+gradRtol*math.Abs(float64(w)) || math.IsNaN(g) {
			if bad < 4 {
				t.Errorf("%s[%d]: %.7g, PyTorch %.7g (max |g| %.3g)", name, i, g, w, mx)
			}
			bad++
		}
	}
}

func TestGoldenContrastiveFESS(t *testing.T) {
	f := loadGolden(t)
	for _, tag := range []string{"con", "con_zero"} {
		prev, pres := param(f.Get(tag+"/prev")), param(f.Get(tag+"/pres"))
		tp := autodiff.NewTape()
		l := ContrastiveFESS(tp, prev, pres, 0.5)
		tp.Backward(l)
		checkValue(t, tag, l.Item(), f.Values[tag+"/loss"][0])
		checkGrad(t, tag+" dL/dprev", prev.Grad, f.Get(tag+"/gprev"))
		checkGrad(t, tag+" dL/dpres", pres.Grad, f.Get(tag+"/gpres"))
	}
}

func TestGoldenFESS(t *testing.T) {
	f := loadGolden(t)
	probs, pres := param(f.Get("fess/probs")), param(f.Get("fess/pres"))
	target, prev := cnst(f.Get("fess/target")), cnst(f.Get("fess/prev"))
	tp := autodiff.NewTape()
	parts := FESS(tp, probs, target, prev, pres, DefaultFESSOptions())
	tp.Backward(parts.Total)
	checkValue(t, "fess total", parts.Total.Item(), f.Values["fess/loss"][0])
	checkValue(t, "fess dice", parts.Dice.Item(), f.Values["fess/dice"][0])
	checkValue(t, "fess con", parts.Con.Item(), f.Values["fess/con"][0])
	checkGrad(t, "fess dL/dprobs", probs.Grad, f.Get("fess/gprobs"))
	checkGrad(t, "fess dL/dpres", pres.Grad, f.Get("fess/gpres"))
}

func TestGoldenNTXent(t *testing.T) {
	f := loadGolden(t)
	z1, z2 := param(f.Get("ntxent/z1")), param(f.Get("ntxent/z2"))
	tp := autodiff.NewTape()
	l := NTXent(tp, z1, z2, 0.5)
	tp.Backward(l)
	checkValue(t, "ntxent", l.Item(), f.Values["ntxent/loss"][0])
	checkGrad(t, "ntxent dL/dz1", z1.Grad, f.Get("ntxent/gz1"))
	checkGrad(t, "ntxent dL/dz2", z2.Grad, f.Get("ntxent/gz2"))
}

func TestGoldenProjectionHead(t *testing.T) {
	f := loadGolden(t)
	h := NewProjectionHead(nn.NewBuilder(nn.InitTorch, 1), "proj", 4, 16, 8)
	for _, c := range []struct {
		v    *autodiff.Var
		name string
	}{{h.L1.W, "w1"}, {h.L1.B, "b1"}, {h.L2.W, "w2"}, {h.L2.B, "b2"}} {
		c.v.Value.CopyFrom(f.Get("head/" + c.name))
	}
	tp := autodiff.NewTape()
	z1 := h.Forward(tp, cnst(f.Get("head/x1")))
	z2 := h.Forward(tp, cnst(f.Get("head/x2")))
	l := NTXent(tp, z1, z2, 0.5)
	tp.Backward(l)
	checkGrad(t, "head z1", z1.Value, f.Get("head/z1"))
	checkValue(t, "head ntxent", l.Item(), f.Values["head/loss"][0])
	checkGrad(t, "head dL/dw1", h.L1.W.Grad, f.Get("head/gw1"))
	checkGrad(t, "head dL/db1", h.L1.B.Grad, f.Get("head/gb1"))
	checkGrad(t, "head dL/dw2", h.L2.W.Grad, f.Get("head/gw2"))
	checkGrad(t, "head dL/db2", h.L2.B.Grad, f.Get("head/gb2"))
}

func TestGoldenInfoNCE(t *testing.T) {
	f := loadGolden(t)
	for _, tag := range []string{"infonce", "infonce_noqueue"} {
		q, k := param(f.Get(tag+"/q")), param(f.Get(tag+"/k"))
		var queue *Queue
		if raw, ok := f.Tensors[tag+"/queue"]; ok {
			queue = NewQueue(raw.Shape[0], raw.Shape[1])
			queue.Push(raw)
		}
		tp := autodiff.NewTape()
		l := InfoNCE(tp, q, k, queue, 0.5)
		tp.Backward(l)
		checkValue(t, tag, l.Item(), f.Values[tag+"/loss"][0])
		checkGrad(t, tag+" dL/dq", q.Grad, f.Get(tag+"/gq"))
		checkGrad(t, tag+" dL/dk", k.Grad, f.Get(tag+"/gk"))
	}
}

func TestGoldenSegmentation(t *testing.T) {
	f := loadGolden(t)
	losses := map[string]func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var{
		"bce": BCE,
		"dicebce": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
			return DiceBCE(tp, p, y, DefaultDiceBCEOptions()).Total
		},
		"dicebce_w": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
			return DiceBCE(tp, p, y, DiceBCEOptions{DiceWeight: 0.7, BCEWeight: 0.3, Eps: DiceEps}).Total
		},
		"focal":         func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Focal(tp, p, y, 0.25, 2) },
		"focal_g15":     func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Focal(tp, p, y, 0.25, 1.5) },
		"focal_noalpha": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Focal(tp, p, y, -1, 3) },
		"tversky":       func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Tversky(tp, p, y, 0.3, 0.7, DiceEps) },
		"dice":          func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Dice(tp, p, y, DiceEps) },
		"dice_ps":       func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return DicePerSample(tp, p, y, DiceEps) },
	}
	for _, tgt := range []string{"y", "ysoft", "yempty"} {
		y := cnst(f.Get("seg/" + tgt))
		for name, fn := range losses {
			key := "seg/" + name + "/" + tgt
			p := param(f.Get("seg/p"))
			tp := autodiff.NewTape()
			l := fn(tp, p, y)
			tp.Backward(l)
			checkValue(t, key, l.Item(), f.Values[key+"/loss"][0])
			checkGrad(t, key+" dL/dp", p.Grad, f.Get(key+"/gp"))
		}
		key := "seg/bcelogits/" + tgt
		z := param(f.Get("seg/logits"))
		tp := autodiff.NewTape()
		l := BCEWithLogits(tp, z, y)
		tp.Backward(l)
		checkValue(t, key, l.Item(), f.Values[key+"/loss"][0])
		checkGrad(t, key+" dL/dz", z.Grad, f.Get(key+"/gz"))
	}
}

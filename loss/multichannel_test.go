package loss

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/tensor"
)

// TestGoldenMultiChannel pins the K = 3 sigmoid-region losses (mc/*: value
// and dL/dp) against the PyTorch references of testdata/gen_golden.py.
func TestGoldenMultiChannel(t *testing.T) {
	f := loadGolden(t)
	y := cnst(f.Get("mc/y"))
	for name, fn := range map[string]func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var{
		"dice":    func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Dice(tp, p, y, DiceEps) },
		"dice_ps": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return DicePerSample(tp, p, y, DiceEps) },
		"tversky": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Tversky(tp, p, y, 0.3, 0.7, DiceEps) },
		"bce":     BCE,
		"dicebce": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var {
			return DiceBCE(tp, p, y, DefaultDiceBCEOptions()).Total
		},
		"focal": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Focal(tp, p, y, 0.25, 2) },
	} {
		key := "mc/" + name
		p := param(f.Get("mc/p"))
		if p.Value.Shape[4] != 3 {
			t.Fatalf("fixture mc/p has shape %v", p.Value.Shape)
		}
		tp := autodiff.NewTape()
		l := fn(tp, p, y)
		tp.Backward(l)
		checkValue(t, key, l.Item(), f.Values[key+"/loss"][0])
		checkGrad(t, key+" dL/dp", p.Grad, f.Get(key+"/gp"))
	}
}

// TestGoldenFESSMultiChannel: FESS with K = 3 probabilities (channel-mean
// Dice plus the unchanged contrastive term).
func TestGoldenFESSMultiChannel(t *testing.T) {
	f := loadGolden(t)
	probs, pres := param(f.Get("mcfess/probs")), param(f.Get("mcfess/pres"))
	target, prev := cnst(f.Get("mcfess/target")), cnst(f.Get("mcfess/prev"))
	tp := autodiff.NewTape()
	parts := FESS(tp, probs, target, prev, pres, DefaultFESSOptions())
	tp.Backward(parts.Total)
	checkValue(t, "mcfess total", parts.Total.Item(), f.Values["mcfess/loss"][0])
	checkValue(t, "mcfess dice", parts.Dice.Item(), f.Values["mcfess/dice"][0])
	checkValue(t, "mcfess con", parts.Con.Item(), f.Values["mcfess/con"][0])
	checkGrad(t, "mcfess dL/dprobs", probs.Grad, f.Get("mcfess/gprobs"))
	checkGrad(t, "mcfess dL/dpres", pres.Grad, f.Get("mcfess/gpres"))
}

// TestGoldenSoftmax pins the softmax losses: the foreground Dice of
// softmax(z), CrossEntropy (against F.cross_entropy on the logits) and
// DiceCE, each with its gradient w.r.t. the logits z through
// autodiff's Softmax; and CrossEntropy's gradient w.r.t. p with one
// clamped voxel.
func TestGoldenSoftmax(t *testing.T) {
	f := loadGolden(t)
	y := cnst(f.Get("sm/y"))
	for name, fn := range map[string]func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var{
		"dicefg": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			return Dice(tp, Foreground(tp, p), Foreground(tp, y), DiceEps)
		},
		"ce": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var { return CrossEntropy(tp, p, y) },
		"dicece": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			return DiceCE(tp, p, y, DefaultDiceCEOptions()).Total
		},
		"dicece_w": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			return DiceCE(tp, p, y, DiceCEOptions{DiceWeight: 0.7, CEWeight: 0.3, Eps: DiceEps}).Total
		},
		"dicece_bg": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			o := DefaultDiceCEOptions()
			o.Background = true
			return DiceCE(tp, p, y, o).Total
		},
	} {
		key := "sm/" + name
		z := param(f.Get("sm/z"))
		tp := autodiff.NewTape()
		l := fn(tp, tp.Softmax(z, 4))
		tp.Backward(l)
		checkValue(t, key, l.Item(), f.Values[key+"/loss"][0])
		checkGrad(t, key+" dL/dz", z.Grad, f.Get(key+"/gz"))
	}
	p := param(f.Get("smp/p"))
	tp := autodiff.NewTape()
	l := CrossEntropy(tp, p, cnst(f.Get("smp/y")))
	tp.Backward(l)
	checkValue(t, "smp/ce", l.Item(), f.Values["smp/ce/loss"][0])
	checkGrad(t, "smp/ce dL/dp", p.Grad, f.Get("smp/ce/gp"))
}

// TestDiceSingleChannelUnchanged checks that the K = 1 path of Dice,
// DicePerSample and Tversky is the single-channel formula (bit for bit
// the same as on the flattened tensor, which has no channel axis), and
// that K channels give the mean of the per-channel losses.
func TestDiceSingleChannelUnchanged(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	p := uniformVar(rng, 0.05, 0.95, 2, 3, 3, 3, 1)
	y := binaryConst(rng, 0.4, 2, 3, 3, 3, 1)
	var none *autodiff.Tape
	flat := func(v *autodiff.Var) *autodiff.Var { return autodiff.Const(tensor.FromSlice(v.Value.Data, 2, 27)) }
	if a, b := Dice(none, p, y, DiceEps).Item(), Dice(none, flat(p), flat(y), DiceEps).Item(); a != b {
		t.Errorf("Dice K=1 %v, flattened %v", a, b)
	}
	if a, b := Tversky(none, p, y, 0.3, 0.7, DiceEps).Item(), Tversky(none, flat(p), flat(y), 0.3, 0.7, DiceEps).Item(); a != b {
		t.Errorf("Tversky K=1 %v, flattened %v", a, b)
	}
	if a, b := DicePerSample(none, p, y, DiceEps).Item(), DicePerSample(none, flat(p), flat(y), DiceEps).Item(); a != b {
		t.Errorf("DicePerSample K=1 %v, flattened %v", a, b)
	}
	// K = 3: the mean of the three single-channel values.
	pk := uniformVar(rng, 0.05, 0.95, 2, 3, 3, 3, 3)
	yk := binaryConst(rng, 0.4, 2, 3, 3, 3, 3)
	for name, fn := range map[string]func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var{
		"Dice":          func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Dice(tp, p, y, DiceEps) },
		"DicePerSample": func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return DicePerSample(tp, p, y, DiceEps) },
		"Tversky":       func(tp *autodiff.Tape, p, y *autodiff.Var) *autodiff.Var { return Tversky(tp, p, y, 0.3, 0.7, DiceEps) },
	} {
		want := 0.0
		for k := 0; k < 3; k++ {
			want += float64(fn(none, none.Slice(pk, 4, k, k+1), none.Slice(yk, 4, k, k+1)).Item()) / 3
		}
		if got := float64(fn(none, pk, yk).Item()); math.Abs(got-want) > 1e-6 {
			t.Errorf("%s K=3: %v, mean of channels %v", name, got, want)
		}
	}
}

// TestFDMultiChannel checks the gradients of the multi-channel losses and
// of the softmax losses (w.r.t. p, and w.r.t. logits through Softmax)
// against finite differences.
func TestFDMultiChannel(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	shape := []int{2, 3, 3, 3, 3}
	p := uniformVar(rng, 0.05, 0.95, shape...)
	y := binaryConst(rng, 0.4, shape...)
	for name, fn := range map[string]func(tp *autodiff.Tape) *autodiff.Var{
		"Dice K=3":          func(tp *autodiff.Tape) *autodiff.Var { return Dice(tp, p, y, DiceEps) },
		"DicePerSample K=3": func(tp *autodiff.Tape) *autodiff.Var { return DicePerSample(tp, p, y, DiceEps) },
		"Tversky K=3":       func(tp *autodiff.Tape) *autodiff.Var { return Tversky(tp, p, y, 0.3, 0.7, DiceEps) },
	} {
		fdCheck(t, name, []*autodiff.Var{p}, fn)
	}
	// Softmax: K = 4 classes, one-hot targets.
	sshape := []int{2, 3, 3, 3, 4}
	z := uniformVar(rng, -2, 2, sshape...)
	oh := tensor.New(sshape...)
	for v := 0; v < oh.Len()/4; v++ {
		oh.Data[4*v+rng.IntN(4)] = 1
	}
	yo := autodiff.Const(oh)
	// w.r.t. p: values kept ≥ 0.3 (the curvature of log p at small p would
	// swamp h = 1e-2; the formula does not need rows summing to 1)
	q := uniformVar(rng, 0.3, 0.95, sshape...)
	fdCheck(t, "CrossEntropy dL/dp", []*autodiff.Var{q}, func(tp *autodiff.Tape) *autodiff.Var { return CrossEntropy(tp, q, yo) })
	for name, fn := range map[string]func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var{
		"softmax Dice(fg)": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			return Dice(tp, Foreground(tp, p), Foreground(tp, yo), DiceEps)
		},
		"softmax CrossEntropy": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var { return CrossEntropy(tp, p, yo) },
		"softmax DiceCE": func(tp *autodiff.Tape, p *autodiff.Var) *autodiff.Var {
			return DiceCE(tp, p, yo, DefaultDiceCEOptions()).Total
		},
	} {
		fdCheck(t, name+" dL/dz", []*autodiff.Var{z}, func(tp *autodiff.Tape) *autodiff.Var { return fn(tp, tp.Softmax(z, 4)) })
	}
}

// TestCrossEntropyValues: a hand-computed case, and that CrossEntropy of
// one-hot targets equals −mean log p of the labelled class.
func TestCrossEntropyValues(t *testing.T) {
	// two voxels, K = 2: p = [0.8, 0.2], [0.3, 0.7]; labels 0 and 1.
	p := autodiff.Const(tensor.FromSlice([]float32{0.8, 0.2, 0.3, 0.7}, 1, 1, 1, 2, 2))
	y := autodiff.Const(tensor.FromSlice([]float32{1, 0, 0, 1}, 1, 1, 1, 2, 2))
	want := -(math.Log(0.8) + math.Log(0.7)) / 2
	if got := float64(CrossEntropy(nil, p, y).Item()); math.Abs(got-want) > 1e-6 {
		t.Errorf("CrossEntropy = %v, want %v", got, want)
	}
	// Dice of the foreground channel only: Σyp = 0.7, Σy = 1, Σp = 0.9.
	wantD := 1 - (1.4+1e-5)/(1.9+1e-5)
	if got := float64(Dice(nil, Foreground(nil, p), Foreground(nil, y), DiceEps).Item()); math.Abs(got-wantD) > 1e-6 {
		t.Errorf("foreground Dice = %v, want %v", got, wantD)
	}
	if got := float64(DiceCE(nil, p, y, DefaultDiceCEOptions()).Total.Item()); math.Abs(got-want-wantD) > 1e-6 {
		t.Errorf("DiceCE = %v, want %v", got, want+wantD)
	}
}

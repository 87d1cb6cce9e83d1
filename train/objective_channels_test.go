package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fess-seg/fess/augment"
	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

func objCfg(name string) Config {
	return Config{Loss: name, Pairing: "previous-batch", Lambda: 0.5, Scale: 1e-4, Temperature: 0.5,
		ProjectionDim: 8, QueueLen: 4, Seed: 5}
}

// chanBatch returns an input [2,8,8,8,cin] and a target [2,8,8,8,k]: one
// region per channel (sigmoid), or a one-hot encoding with background
// channel 0 (softmax).
func chanBatch(cin, k int, softmax bool) (x, y *tensor.Tensor) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, y = tensor.New(2, 8, 8, 8, cin), tensor.New(2, 8, 8, 8, k)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	for v := 0; v < y.Len()/k; v++ {
		if softmax {
			y.Data[v*k+rng.IntN(k)] = 1
			continue
		}
		for c := 0; c < k; c++ {
			if rng.Float64() < 0.3 {
				y.Data[v*k+c] = 1
			}
		}
	}
	return x, y
}

// TestObjectivesMultiChannel runs every objective one step on a K = 3
// sigmoid model with 4 input channels and on a K = 4 softmax model; the
// loss is finite with a gradient, probs has all K channels, and the
// softmax dice/bce/dicebce objectives equal the losses on the foreground
// channels / cross-entropy.
func TestObjectivesMultiChannel(t *testing.T) {
	for _, tc := range []struct {
		cin, k  int
		softmax bool
	}{{4, 3, false}, {1, 4, true}} {
		x, y := chanBatch(tc.cin, tc.k, tc.softmax)
		for _, name := range []string{"dice", "bce", "dicebce", "focal", "tversky", "fess", "simclr", "infonce"} {
			m, err := model.New(model.Config{Filters: 2, Levels: 2, InputSize: 8, InChannels: tc.cin, OutChannels: tc.k, Softmax: tc.softmax, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			obj, err := newObjective(objCfg(name), m)
			if tc.softmax && name == "focal" {
				var ue *errs.UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "sigmoid") {
					t.Errorf("softmax focal: error %v, want a usage error naming sigmoid outputs", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			tp, ng := autodiff.NewTape(), autodiff.NewTape()
			res := obj.step(tp, ng, autodiff.Const(x), autodiff.Const(y), 1)
			tp.Backward(res.total)
			v := float64(res.total.Item())
			if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
				t.Errorf("k=%d softmax=%v %s: loss %v", tc.k, tc.softmax, name, v)
			}
			if !tensor.SameShape(res.probs.Value.Shape, y.Shape) {
				t.Errorf("%s: probs shape %v, want %v", name, res.probs.Value.Shape, y.Shape)
			}
			if g := m.State().ParamMap()["final.w"].Grad; g == nil {
				t.Errorf("%s: no gradient on the head", name)
			}
			if !tc.softmax {
				continue
			}
			var none *autodiff.Tape
			p, yc := res.probs, autodiff.Const(y)
			var want float32
			switch name {
			case "dice":
				want = loss.Dice(none, loss.Foreground(none, p), loss.Foreground(none, yc), loss.DiceEps).Item()
			case "bce":
				want = loss.CrossEntropy(none, p, yc).Item()
			case "dicebce":
				want = loss.DiceCE(none, p, yc, loss.DefaultDiceCEOptions()).Total.Item()
			case "tversky":
				want = loss.Tversky(none, loss.Foreground(none, p), loss.Foreground(none, yc), 0.3, 0.7, loss.DiceEps).Item()
			case "fess":
				if d := res.parts["dice_loss"]; d != float64(loss.Dice(none, loss.Foreground(none, p), loss.Foreground(none, yc), loss.DiceEps).Item()) {
					t.Errorf("softmax fess: dice part %v is not the foreground Dice", d)
				}
				continue
			default:
				continue
			}
			if res.total.Item() != want {
				t.Errorf("softmax %s: loss %v, want %v", name, res.total.Item(), want)
			}
		}
	}
}

// TestViewsMultiChannel checks the augmented views of a 2-channel image
// and 3-channel target: the flips are the same for every channel of x1 and
// y1, the jitter a·x + b is the same for every image channel and leaves the
// target alone, and the single-channel case is augment.Augment as before.
func TestViewsMultiChannel(t *testing.T) {
	m, err := model.New(model.Config{Filters: 2, Levels: 1, InputSize: 4, InChannels: 2, OutChannels: 3})
	if err != nil {
		t.Fatal(err)
	}
	o := &viewObjective{m: m, cfg: objCfg("simclr")}
	const s, c, k = 4, 2, 3
	x, y := tensor.New(2, s, s, s, c), tensor.New(2, s, s, s, k)
	for i := range x.Data {
		x.Data[i] = float32(i) // distinct values: a flip is visible
	}
	for i := range y.Data {
		y.Data[i] = float32(i % 7)
	}
	dims := [3]int{s, s, s}
	for step := int64(0); step < 6; step++ {
		x1, y1, x2 := o.views(autodiff.Const(x), autodiff.Const(y), step)
		rng := rand.New(rand.NewPCG(o.cfg.Seed^0xa06e47, uint64(step)))
		vox := s * s * s
		for i := 0; i < 2; i++ {
			pa, pb := augment.Draw(rng, augment.Default()), augment.Draw(rng, augment.Default())
			for ch := 0; ch < c; ch++ {
				src := viewChannel(x.Data[i*vox*c:(i+1)*vox*c], c, ch)
				wa, _ := augment.Apply(src, nil, dims, pa)
				wb, _ := augment.Apply(src, nil, dims, pb)
				if g := viewChannel(x1.Data[i*vox*c:(i+1)*vox*c], c, ch); !chanViewsEqual(g, wa) {
					t.Fatalf("step %d sample %d: x1 channel %d is not the first view", step, i, ch)
				}
				if g := viewChannel(x2.Data[i*vox*c:(i+1)*vox*c], c, ch); !chanViewsEqual(g, wb) {
					t.Fatalf("step %d sample %d: x2 channel %d is not the second view", step, i, ch)
				}
			}
			for ch := 0; ch < k; ch++ {
				src := viewChannel(y.Data[i*vox*k:(i+1)*vox*k], k, ch)
				_, wm := augment.Apply(src, src, dims, pa) // the mask output: flips only
				if g := viewChannel(y1.Data[i*vox*k:(i+1)*vox*k], k, ch); !chanViewsEqual(g, wm) {
					t.Fatalf("step %d sample %d: y1 channel %d is not flipped as x1", step, i, ch)
				}
			}
		}
	}
	// C = K = 1: exactly the earlier per-sample augment.Augment calls.
	x, y = tensor.New(2, s, s, s, 1), tensor.New(2, s, s, s, 1)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i)))
		y.Data[i] = float32(i % 2)
	}
	x1, y1, x2 := o.views(autodiff.Const(x), autodiff.Const(y), 9)
	rng := rand.New(rand.NewPCG(o.cfg.Seed^0xa06e47, 9))
	vox := s * s * s
	for i := 0; i < 2; i++ {
		xi, yi := x.Data[i*vox:(i+1)*vox], y.Data[i*vox:(i+1)*vox]
		a, am := augment.Augment(xi, yi, dims, rng, augment.Default())
		b, _ := augment.Augment(xi, nil, dims, rng, augment.Default())
		if !chanViewsEqual(x1.Data[i*vox:(i+1)*vox], a) || !chanViewsEqual(y1.Data[i*vox:(i+1)*vox], am) || !chanViewsEqual(x2.Data[i*vox:(i+1)*vox], b) {
			t.Fatalf("single-channel views differ from augment.Augment (sample %d)", i)
		}
	}
}

func chanViewsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

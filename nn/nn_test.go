package nn

import (
	"math"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

// maxAbs returns the largest |v| and the mean of v.
func stats(v []float32) (float64, float64) {
	m, s := 0.0, 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
		s += float64(x)
	}
	return m, s / float64(len(v))
}

// TestInitBounds: PyTorch's kaiming_uniform(a=√5) is U(±1/√fan_in) with
// fan_in = Cin·k³ (Conv3d), Cout·k³ (ConvTranspose3d), in (Linear); Keras'
// glorot_uniform is U(±√(6/(fan_in+fan_out))) with zero biases. A uniform
// sample of this size reaches within 2 % of its bound and has mean ≈ 0.
func TestInitBounds(t *testing.T) {
	bt := NewBuilder(InitTorch, 1)
	c := bt.NewConv3D("c", 3, 16, 32, true, Same())
	ct := bt.NewConvTranspose3D("t", 2, 2, 32, 16, true)
	d := bt.NewDense("d", 64, 128, true)
	bg := NewBuilder(InitGlorot, 1)
	cg := bg.NewConv3D("c", 3, 16, 32, true, Same())
	tg := bg.NewConvTranspose3D("t", 2, 2, 32, 16, true)
	for _, tc := range []struct {
		name  string
		v     []float32
		bound float64
	}{
		{"torch conv w", c.W.Value.Data, 1 / math.Sqrt(16*27)},
		{"torch conv b", c.B.Value.Data, 1 / math.Sqrt(16*27)},
		{"torch convT w", ct.W.Value.Data, 1 / math.Sqrt(16*8)},
		{"torch dense w", d.W.Value.Data, 1 / math.Sqrt(64)},
		{"glorot conv w", cg.W.Value.Data, math.Sqrt(6 / float64(27*16+27*32))},
		{"glorot convT w", tg.W.Value.Data, math.Sqrt(6 / float64(8*16+8*32))},
	} {
		m, mean := stats(tc.v)
		if m > tc.bound || m < 0.98*tc.bound && len(tc.v) > 1000 {
			t.Errorf("%s: max |w| %.5f, bound %.5f", tc.name, m, tc.bound)
		}
		if math.Abs(mean) > tc.bound/10 {
			t.Errorf("%s: mean %.5f", tc.name, mean)
		}
	}
	if m, _ := stats(cg.B.Value.Data); m != 0 {
		t.Error("glorot biases must be zero")
	}
	if !tensor.SameShape(ct.W.Value.Shape, []int{2, 2, 2, 16, 32}) {
		t.Errorf("transposed weight shape %v, want [k,k,k,Cout,Cin]", ct.W.Value.Shape)
	}
	// Same seed, same weights.
	if NewBuilder(InitTorch, 1).NewConv3D("c", 3, 16, 32, true, Same()).W.Value.Data[7] != c.W.Value.Data[7] {
		t.Error("initialisation is not reproducible")
	}
}

func TestStateLoadErrors(t *testing.T) {
	b := NewBuilder(InitTorch, 1)
	b.NewConv3D("c", 3, 2, 4, true, Same())
	b.NewBatchNorm("bn", 4)
	b.NewRNG("drop", 1)
	recs := b.State.Records()
	if len(recs) != 2+2+2+1 {
		t.Fatalf("%d records", len(recs))
	}
	b2 := NewBuilder(InitTorch, 2)
	b2.NewConv3D("c", 3, 2, 4, true, Same())
	b2.NewBatchNorm("bn", 4)
	r2 := b2.NewRNG("drop", 1)
	recs[len(recs)-1].Ints[1] = 17
	if err := b2.State.Load(recs, "ck.state"); err != nil {
		t.Fatal(err)
	}
	if b2.State.Params[0].Value.Data[3] != b.State.Params[0].Value.Data[3] || r2.Counter != 17 {
		t.Error("Load did not copy values")
	}
	b3 := NewBuilder(InitTorch, 2)
	b3.NewConv3D("c", 3, 2, 5, true, Same())
	if err := b3.State.Load(recs, "ck.state"); err == nil {
		t.Error("shape mismatch: no error")
	}
	b4 := NewBuilder(InitTorch, 2)
	b4.NewConv3D("other", 3, 2, 4, true, Same())
	if err := b4.State.Load(recs, "ck.state"); err == nil {
		t.Error("missing parameter: no error")
	}
}

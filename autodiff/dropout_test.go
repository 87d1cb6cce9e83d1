package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fess-seg/fess/tensor"
)

func TestDropoutStatistics(t *testing.T) {
	x := Const(tensor.Full(1, 100000))
	r := NewRNG(3)
	y := (*Tape)(nil).Dropout(x, 0.2, true, r)
	zeros, sum := 0, 0.0
	for _, v := range y.Value.Data {
		if v == 0 {
			zeros++
		} else if math.Abs(float64(v)-1.25) > 1e-6 {
			t.Fatalf("kept value %g, want 1/(1-p) = 1.25", v)
		}
		sum += float64(v)
	}
	if f := float64(zeros) / 1e5; math.Abs(f-0.2) > 0.005 {
		t.Errorf("dropped fraction %.4f, want 0.2", f)
	}
	if m := sum / 1e5; math.Abs(m-1) > 0.01 {
		t.Errorf("mean %.4f, want 1 (inverted dropout)", m)
	}
	if r.Counter != 1 {
		t.Errorf("counter %d after one draw", r.Counter)
	}
	// Same (seed, counter) → same mask, whatever the thread count;
	// the next draw differs.
	old := tensor.SetThreads(1)
	y1 := (*Tape)(nil).Dropout(x, 0.2, true, &RNG{Seed: 3, Counter: 0})
	tensor.SetThreads(old)
	y2 := (*Tape)(nil).Dropout(x, 0.2, true, r)
	same1, same2 := true, true
	for i := range y.Value.Data {
		same1 = same1 && y1.Value.Data[i] == y.Value.Data[i]
		same2 = same2 && y2.Value.Data[i] == y.Value.Data[i]
	}
	if !same1 || same2 {
		t.Errorf("mask reproducible: %v (want true); next draw equal: %v (want false)", same1, same2)
	}
	// Inference is the identity and draws nothing.
	if z := (*Tape)(nil).Dropout(x, 0.2, false, r); z != x || r.Counter != 2 {
		t.Error("inference dropout must return its input unchanged")
	}
}

func TestNilTapeRecordsNothing(t *testing.T) {
	w := NewParam("w", tensor.Full(0.5, 3, 3, 3, 1, 2))
	x := Const(tensor.Full(1, 1, 4, 4, 4, 1))
	var none *Tape
	y := none.ReLU(none.Conv3D(x, w, nil, Same3D(1)))
	if y.RequiresGrad || none.Len() != 0 {
		t.Error("nil tape produced a differentiable result")
	}
	tp := NewTape()
	y2 := tp.ReLU(tp.Conv3D(x, w, nil, Same3D(1)))
	if !y2.RequiresGrad || tp.Len() != 2 {
		t.Errorf("tape recorded %d ops", tp.Len())
	}
	for i := range y.Value.Data {
		if y.Value.Data[i] != y2.Value.Data[i] {
			t.Fatal("no-grad and taped forward differ")
		}
	}
	// Ops on constants alone are not recorded.
	tp.Reset()
	tp.Exp(x)
	if tp.Len() != 0 {
		t.Error("op on constants was recorded")
	}
}

// refKeep is the mask value of element i of the draw with key: the
// definition the engine has used since the first checkpoints (a float
// comparison of the 24-bit uniform number with p), written out here so that
// any later change of the mask code that changes a trained run's bits fails.
func refKeep(key uint64, i int, p, s float32) float32 {
	mix := func(z uint64) uint64 {
		z += 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	if float32(mix(key^mix(uint64(i)))>>40)*(1.0/(1<<24)) >= p {
		return s
	}
	return 0
}

// TestDropoutMatchesDefinition: Dropout's output and gradient and
// DropoutInPlace's (on an arena tape) equal x·keep and g·keep with refKeep,
// bit for bit, for two probabilities and a length that is not a multiple of
// the 16-element assembly step.
func TestDropoutMatchesDefinition(t *testing.T) {
	const n = 10007
	for _, p := range []float32{0.2, 0.5} {
		s := 1 / (1 - p)
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(math.Sin(float64(i))) * 3
		}
		rng := NewRNG(77)
		rng.Counter = 5
		key := splitmix64(rng.Seed ^ splitmix64(rng.Counter+0x5851f42d4c957f2d))
		for _, inPlace := range []bool{false, true} {
			r := &RNG{Seed: rng.Seed, Counter: rng.Counter}
			x := NewParam("x", tensor.FromSlice(append([]float32(nil), xs...), n))
			var tp *Tape
			if inPlace {
				tp = NewArenaTape()
			} else {
				tp = NewTape()
			}
			var y *Var
			if inPlace {
				// in place needs a value the tape owns: x·1 through a
				// recorded op
				y = tp.DropoutInPlace(tp.Scale(x, 1), p, true, r)
			} else {
				y = tp.Dropout(x, p, true, r)
			}
			for i := 0; i < n; i++ {
				want := xs[i] * refKeep(key, i, p, s)
				if math.Float32bits(y.Value.Data[i]) != math.Float32bits(want) {
					t.Fatalf("p=%v inPlace=%v: y[%d] = %v, want %v", p, inPlace, i, y.Value.Data[i], want)
				}
			}
			g := make([]float32, n)
			for i := range g {
				g[i] = float32(math.Cos(float64(i)))
			}
			copy(y.grad(), g)
			tp.BackwardFrom()
			for i := 0; i < n; i++ {
				var z float32
				want := z + g[i]*refKeep(key, i, p, s)
				if math.Float32bits(x.Grad.Data[i]) != math.Float32bits(want) {
					t.Fatalf("p=%v inPlace=%v: dx[%d] = %v, want %v", p, inPlace, i, x.Grad.Data[i], want)
				}
			}
		}
	}
}

// TestBatchNormReLUDropoutFused holds the fused op to BatchNormReLU then
// DropoutInPlace on an arena tape, bit for bit: output, the input, γ and β
// gradients, the running statistics and the RNG counter, on channel counts
// whose blocks of whole rows and mask words differ (8, 24, 32) and a row
// count that leaves partial blocks; and on a no-grad arena.
func TestBatchNormReLUDropoutFused(t *testing.T) {
	for _, c := range []int{8, 24, 32} {
		for _, noGrad := range []bool{false, true} {
			run := func(fused bool) (out, gx, gg, gb []float32, st *BNState, ctr uint64) {
				rng := rand.New(rand.NewPCG(uint64(c), 3))
				x := randVar(rng, -2, 2, 3, 7, 5, 11, c)
				gamma := randVar(rng, 0.5, 1.5, c)
				beta := randVar(rng, -0.5, 0.5, c)
				st = NewBNState(c, 0.1, 1e-5)
				r := NewRNG(99)
				tp := NewArenaTape()
				if noGrad {
					tp = NewNoGradArena()
				}
				in := tp.Scale(x, 1)
				var y *Var
				if fused {
					y = tp.BatchNormReLUDropout(in, gamma, beta, st, true, 0.3, r)
				} else {
					y = tp.DropoutInPlace(tp.BatchNormReLU(in, gamma, beta, st, true), 0.3, true, r)
				}
				out = append([]float32(nil), y.Value.Data...)
				if !noGrad {
					g := y.grad()
					for i := range g {
						g[i] = float32(math.Sin(float64(i)))
					}
					tp.BackwardFrom()
					gx, gg, gb = x.Grad.Data, gamma.Grad.Data, beta.Grad.Data
				}
				return out, gx, gg, gb, st, r.Counter
			}
			o1, x1, g1, b1, s1, c1 := run(false)
			o2, x2, g2, b2, s2, c2 := run(true)
			if c1 != c2 {
				t.Fatalf("c=%d: RNG counter %d, want %d", c, c2, c1)
			}
			for _, p := range []struct {
				name string
				a, b []float32
			}{{"out", o2, o1}, {"dx", x2, x1}, {"dγ", g2, g1}, {"dβ", b2, b1},
				{"running mean", s2.RunMean.Data, s1.RunMean.Data}, {"running var", s2.RunVar.Data, s1.RunVar.Data}} {
				if len(p.a) != len(p.b) {
					t.Fatalf("c=%d noGrad=%v %s: %d values, want %d", c, noGrad, p.name, len(p.a), len(p.b))
				}
				for i := range p.a {
					if math.Float32bits(p.a[i]) != math.Float32bits(p.b[i]) {
						t.Fatalf("c=%d noGrad=%v %s[%d] = %v, want %v", c, noGrad, p.name, i, p.a[i], p.b[i])
					}
				}
			}
		}
	}
}

package model

import (
	"fmt"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

// peerStep runs k training steps of the PyTorch peer's step (no-grad pass,
// grad pass, FESS loss, backward, clip, Adam) with either plain tapes or
// arena tapes, and returns the losses and the final parameters.
func peerStep(t *testing.T, k int, arena bool) ([]float32, [][]float32) {
	return peerStepCfg(t, Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 8, NoUpBN: true, Seed: 3}, k, arena)
}

func peerStepCfg(t *testing.T, cfg Config, k int, arena bool) ([]float32, [][]float32) {
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(2, 8, 8, 8, 1)
	y := tensor.New(2, 8, 8, 8, 1)
	for i := range x.Data {
		x.Data[i] = float32(i%11)/5 - 1
		if i%3 == 0 {
			y.Data[i] = 1
		}
	}
	xv, yv := autodiff.Const(x), autodiff.Const(y)
	opt := optim.NewAdam(1e-2)
	tp, ng := autodiff.NewTape(), (*autodiff.Tape)(nil)
	if arena {
		tp, ng = autodiff.NewArenaTape(), autodiff.NewNoGradArena()
	}
	var losses []float32
	for s := 0; s < k; s++ {
		_, a := m.Forward(ng, xv, true)
		probs, b := m.Forward(tp, xv, true)
		l := loss.FESS(tp, probs, yv, a, b, loss.DefaultFESSOptions()).Total
		optim.ZeroGrad(m.Params())
		tp.Backward(l)
		losses = append(losses, l.Item())
		optim.ClipGradNorm(m.Params(), 1)
		opt.Step(m.Params())
		tp.Reset()
		ng.Reset()
	}
	var ps [][]float32
	for _, p := range m.Params() {
		ps = append(ps, append([]float32(nil), p.Value.Data...))
	}
	return losses, ps
}

// TestArenaTapeIdentical checks that arena tapes (pooled, reused buffers,
// and the memory planning of the arena recording tape: in-place dropout,
// released and recomputed BatchNorm/ReLU/dropout outputs and
// concatenations, values freed during the backward) give bit-identical
// losses and parameters over several steps to plain tapes, which keep every
// value: no buffer is recycled while still in use and every recomputation
// is exact. The networks cover the peer's (no up-conv BatchNorm, no
// dropout), the seed preset's (one conv per level, up-conv BatchNorm,
// dropout) and unet3d with both.
func TestArenaTapeIdentical(t *testing.T) {
	for _, minBytes := range []int{0, recomputeMinBytes} {
		t.Run(fmt.Sprint("recomputeMinBytes=", minBytes), func(t *testing.T) { arenaTapeIdentical(t, minBytes) })
	}
}

// arenaTapeIdentical is TestArenaTapeIdentical with the first levels'
// convs recomputed from recomputeMinBytes = minBytes on (0: always).
func arenaTapeIdentical(t *testing.T, minBytes int) {
	defer func(v int) { recomputeMinBytes = v }(recomputeMinBytes)
	recomputeMinBytes = minBytes
	for _, cfg := range []Config{
		{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 8, NoUpBN: true, Seed: 3},
		{Preset: "seed", Filters: 4, Levels: 2, InputSize: 8, BottleneckChannels: 12, Seed: 4},
		{Preset: "unet3d", Filters: 3, Levels: 2, InputSize: 8, Dropout: 0.3, Seed: 5},
	} {
		l0, p0 := peerStepCfg(t, cfg, 4, false)
		l1, p1 := peerStepCfg(t, cfg, 4, true)
		for i := range l0 {
			if l0[i] != l1[i] {
				t.Fatalf("%+v step %d: loss %v with arena tapes, %v without", cfg, i, l1[i], l0[i])
			}
		}
		for i := range p0 {
			for j := range p0[i] {
				if p0[i][j] != p1[i][j] {
					t.Fatalf("%+v: parameter %d element %d differs: %v vs %v", cfg, i, j, p1[i][j], p0[i][j])
				}
			}
		}
	}
}

// TestNoGradArenaForwardIdentical checks that the no-grad arena forward
// (intermediates freed and their buffers reused within the pass) gives the
// same probabilities and bottleneck as the nil-tape forward, in training
// and inference mode, twice in a row (the second pass reuses the pool).
func TestNoGradArenaForwardIdentical(t *testing.T) {
	for _, train := range []bool{false, true} {
		mk := func() *UNet3D {
			m, err := New(Config{Preset: "unet3d", Filters: 4, Levels: 2, InputSize: 8, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		m0, m1 := mk(), mk()
		x := tensor.New(2, 8, 8, 8, 1)
		for i := range x.Data {
			x.Data[i] = float32(i%7)/3 - 1
		}
		xv := autodiff.Const(x)
		ng := autodiff.NewNoGradArena()
		for pass := 0; pass < 2; pass++ {
			p0, b0 := m0.Forward(nil, xv, train)
			p1, b1 := m1.Forward(ng, xv, train)
			for _, c := range [][2][]float32{{p0.Value.Data, p1.Value.Data}, {b0.Value.Data, b1.Value.Data}} {
				for i := range c[0] {
					if c[0][i] != c[1][i] {
						t.Fatalf("train=%v pass %d: element %d: arena %v, nil tape %v", train, pass, i, c[1][i], c[0][i])
					}
				}
			}
			ng.Reset()
		}
	}
}

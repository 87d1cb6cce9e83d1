package autodiff

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// Config a of `fess bench` (N=2, 32³, F=8, 3 levels): its first conv takes
// [2,32,32,32,1] to 8 channels with a 3×3×3 'same' kernel. FLOPs counted as
// 2·MACs: forward 2·N·32³·27·1·8; the weight gradient the same; the input
// gradient (not needed for the first layer, measured separately) the same.

func benchConv(b *testing.B, n, s, cin, cout int, mode string) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randVar(rng, -1, 1, n, s, s, s, cin)
	if mode != "backward+input" {
		x.RequiresGrad = false
		x.Grad = nil
	}
	w := randVar(rng, -1, 1, 3, 3, 3, cin, cout)
	bias := randVar(rng, -1, 1, cout)
	flop := 2.0 * float64(n*s*s*s) * 27 * float64(cin*cout)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	switch mode {
	case "forward":
		// a no-grad arena, as in the training step's no-grad pass: the
		// output buffer comes back from the pool (no fresh pages per call)
		tp := NewNoGradArena()
		for i := 0; i < b.N; i++ {
			tp.Free(tp.Conv3D(x, w, bias, Same3D(1)))
		}
	default:
		tp := NewTape()
		y := tp.Conv3D(x, w, bias, Same3D(1))
		y.Grad = tensor.Full(1, y.Value.Shape...)
		if mode == "backward+input" {
			flop *= 2
		}
		cpu0 = cpuSeconds()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tp.BackwardFrom()
		}
	}
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(flop*float64(b.N)/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
}

// cpuSeconds returns this process's user+system CPU time. On the shared
// 2-core machine the wall-clock rate depends on other processes' load;
// GFLOP per CPU-second (×2 for both cores) shows the code's own speed.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func BenchmarkConv3DFirstLayerConfigA(b *testing.B) {
	b.Run("forward", func(b *testing.B) { benchConv(b, 2, 32, 1, 8, "forward") })
	b.Run("backward", func(b *testing.B) { benchConv(b, 2, 32, 1, 8, "backward") })
}

// BenchmarkConv3DSecondLayerConfigA is config a's 8→8 conv at 32³, whose
// backward includes the input gradient.
func BenchmarkConv3DSecondLayerConfigA(b *testing.B) {
	b.Run("forward", func(b *testing.B) { benchConv(b, 2, 32, 8, 8, "forward") })
	b.Run("backward", func(b *testing.B) { benchConv(b, 2, 32, 8, 8, "backward+input") })
}

// BenchmarkConv3DLargestConfigB is config b's largest conv by FLOPs: the
// first conv of decoder level 0, [1,64³,32] → 16 channels (7.2 GFLOP
// forward). The target: ≥ 50 % of the machine's FP32 peak.
func BenchmarkConv3DLargestConfigB(b *testing.B) {
	b.Run("forward", func(b *testing.B) { benchConv(b, 1, 64, 32, 16, "forward") })
	b.Run("backward", func(b *testing.B) { benchConv(b, 1, 64, 32, 16, "backward+input") })
}

// BenchmarkConv3DPaths compares the Winograd, z-split and one-GEMM im2col
// paths on config a's 8→8 and config b's 32→16 layers, and on config d's
// levels (Winograd and z-split). GFLOP/s are those of the direct conv
// (2·27·Cin·Cout per output voxel), so the Winograd path's figure is an
// effective rate.
func BenchmarkConv3DPaths(b *testing.B) {
	defer func() { useZSplit, useWinograd = true, true }()
	for _, path := range []string{"winograd", "zsplit", "im2col"} {
		useWinograd = path == "winograd"
		useZSplit = path != "im2col"
		b.Run(path+"/a8x8/forward", func(b *testing.B) { benchConv(b, 2, 32, 8, 8, "forward") })
		b.Run(path+"/a8x8/backward", func(b *testing.B) { benchConv(b, 2, 32, 8, 8, "backward+input") })
		b.Run(path+"/b32x16/forward", func(b *testing.B) { benchConv(b, 1, 64, 32, 16, "forward") })
		b.Run(path+"/b32x16/backward", func(b *testing.B) { benchConv(b, 1, 64, 32, 16, "backward+input") })
		if path == "im2col" {
			continue
		}
		b.Run(path+"/c8x8@64/forward", func(b *testing.B) { benchConv(b, 2, 64, 8, 8, "forward") })
		b.Run(path+"/c8x8@64/backward", func(b *testing.B) { benchConv(b, 2, 64, 8, 8, "backward+input") })
		for _, l := range []struct{ s, c int }{{64, 32}, {32, 64}, {16, 128}, {8, 256}} {
			b.Run(fmt.Sprintf("%s/d%dx%d@%d/forward", path, l.c, l.c, l.s), func(b *testing.B) { benchConv(b, 1, l.s, l.c, l.c, "forward") })
		}
	}
}

// BenchmarkConv3DWinogradTiles compares F(2,3) and F(4,3) on the levels of
// configs b and s (batch, edge, channels in and out; forward and backward
// with the input gradient), with F(4,3) forced on every level, to place
// winoMinTiles4. GFLOP/s are the direct conv's (effective rates).
func BenchmarkConv3DWinogradTiles(b *testing.B) {
	defer func(w4 bool, m4 int) { useWino4, winoMinTiles4 = w4, m4 }(useWino4, winoMinTiles4)
	winoMinTiles4 = 1
	for _, l := range []struct{ n, s, ci, co int }{
		{1, 64, 16, 16}, {1, 32, 32, 32}, {1, 16, 64, 64}, {1, 8, 128, 128},
		{5, 64, 32, 32}, {5, 32, 64, 64}, {5, 16, 128, 128}, {5, 8, 256, 256},
	} {
		for _, m := range []int{2, 4} {
			useWino4 = m == 4
			name := fmt.Sprintf("N%d_%d@%dx%d/F%d", l.n, l.s, l.ci, l.co, m)
			b.Run(name+"/forward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "forward") })
			b.Run(name+"/backward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "backward+input") })
		}
	}
}

// BenchmarkConv3DSmallVolumes compares the z-split (im2col) path with the
// F(2,3) Winograd path forced below winoMinTiles, on the reference
// network's 4³ bottleneck (batch 5: 40 tiles) and config b's (batch 1:
// 8 tiles), to place winoMinTiles.
func BenchmarkConv3DSmallVolumes(b *testing.B) {
	defer func(m int) { winoMinTiles = m }(winoMinTiles)
	for _, l := range []struct{ n, s, ci, co int }{{5, 4, 512, 1024}, {5, 4, 1024, 1024}, {1, 4, 128, 256}, {1, 4, 256, 256}} {
		for _, path := range []string{"zsplit", "winograd"} {
			winoMinTiles = 64
			if path == "winograd" {
				winoMinTiles = 1
			}
			name := fmt.Sprintf("N%d_%d@%dx%d/%s", l.n, l.s, l.ci, l.co, path)
			b.Run(name+"/forward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "forward") })
			b.Run(name+"/backward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "backward+input") })
		}
	}
}

// BenchmarkConv3DWinogradSchedule compares the blocked schedule with the
// whole one (winoPlan's choice where the kernels outweigh V and M) on the
// reference network's deep levels with F(4,3): its 8³ decoder conv
// (512→256, 40 tiles) and its 16³ one (256→128, 320 tiles; whole since
// blocks go down to 12 tiles).
func BenchmarkConv3DWinogradSchedule(b *testing.B) {
	defer func(w4 bool, wm int) { useWino4, winoWholeMaxBytes = w4, wm }(useWino4, winoWholeMaxBytes)
	useWino4 = true
	for _, l := range []struct{ n, s, ci, co int }{{5, 8, 512, 256}, {5, 16, 256, 128}} {
		for _, sched := range []string{"blocked", "auto"} {
			winoWholeMaxBytes = 256 << 20
			if sched == "blocked" {
				winoWholeMaxBytes = 0
			}
			name := fmt.Sprintf("N%d_%d@%dx%d/%s", l.n, l.s, l.ci, l.co, sched)
			b.Run(name+"/forward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "forward") })
			b.Run(name+"/backward", func(b *testing.B) { benchConv(b, l.n, l.s, l.ci, l.co, "backward+input") })
		}
	}
}

// BenchmarkWinoPackedWeights compares the kernel transform writing the
// packed layout itself (winoPackedWeights) with transforming all of U and
// packing it afterwards, and for the input gradient's flipped kernels,
// gathering them per call with flipping them all first (flipKernels), on the reference network's 1024-channel
// bottleneck (F(2,3)), its 8³ decoder conv (F(4,3)) and config b's 16→16
// conv (F(4,3)).
func BenchmarkWinoPackedWeights(b *testing.B) {
	for _, c := range []struct{ m, ci, co int }{{2, 1024, 1024}, {4, 512, 256}, {4, 16, 16}} {
		np := (c.m + 2) * (c.m + 2) * (c.m + 2)
		w := randVar(rand.New(rand.NewPCG(1, 2)), -1, 1, 3, 3, 3, c.ci, c.co).Value.Data
		name := fmt.Sprintf("F%d_%dx%d", c.m, c.ci, c.co)
		b.Run(name+"/packed", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pu, _ := winoPackedWeights(c.m, np, w, false, c.ci, c.co)
				putBuf(pu)
			}
		})
		b.Run(name+"/flip-gathered", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pu, _ := winoPackedWeights(c.m, np, w, true, c.co, c.ci)
				putBuf(pu)
			}
		})
		b.Run(name+"/flip-transposed", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				wf := getBufDirty(len(w))
				flipKernels(wf, w, [3]int{3, 3, 3}, c.ci, c.co)
				pu, _ := winoPackedWeights(c.m, np, wf, false, c.co, c.ci)
				putBuf(pu)
				putBuf(wf)
			}
		})
		b.Run(name+"/two-pass", func(b *testing.B) {
			psz := kernels.PackBSize(c.ci, c.co)
			for i := 0; i < b.N; i++ {
				u := getBufDirty(np * c.ci * c.co)
				winoWeights(c.m, w, c.ci*c.co, u, c.ci*c.co)
				pu := getBufDirty(np * psz)
				tensor.Parallel(np, 1, func(_, lo, hi int) {
					for xi := lo; xi < hi; xi++ {
						kernels.PackB(pu[xi*psz:(xi+1)*psz], u[xi*c.ci*c.co:(xi+1)*c.ci*c.co], c.co, c.ci, c.co)
					}
				})
				putBuf(u)
				putBuf(pu)
			}
		})
	}
}

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestBNLoopsAsmMatchGo runs every BatchNorm loop with the assembly on and
// off and requires the same bits, on channel counts that take the 16- and
// 8-channel windows, with special values (±0, ±Inf, NaN) mixed in.
func TestBNLoopsAsmMatchGo(t *testing.T) {
	if !bnAsm {
		t.Skip("no assembly BatchNorm loops on this CPU/build")
	}
	defer func() { bnAsm = true }()
	r := rand.New(rand.NewPCG(13, 14))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	gen := func(n int) []float32 {
		s := randSlice(r, n)
		for i := range s {
			if r.IntN(50) == 0 {
				s[i] = special[r.IntN(len(special))]
			}
		}
		return s
	}
	for _, c := range []int{8, 16, 24, 40, 64} {
		for _, rows := range []int{1, 3, 17, 300, 1100} { // the last two: several row blocks (bnBlockRows)
			x, g := gen(rows*c), gen(rows*c)
			o := make([]float32, rows*c)
			scale, shift := randSlice(r, c), randSlice(r, c)
			mean, invstd, a, b := randSlice(r, c), randSlice(r, c), randSlice(r, c), randSlice(r, c)
			gx0 := gen(rows * c)
			mu := make([]float64, c)
			for j := range mu {
				mu[j] = r.NormFloat64()
			}
			run := func(asm bool) (s1, s2, s3, s4 []float64, out, outR, gx, gxR []float32) {
				bnAsm = asm
				s1, s2 = make([]float64, c), make([]float64, c)
				for j := range s1 {
					s1[j], s2[j] = float64(j), -float64(j)
				}
				BNSum(s1, x, rows, c)
				BNSumSqDev(s2, x, mu, rows, c)
				out, outR = make([]float32, rows*c), make([]float32, rows*c)
				BNApply(out, x, scale, shift, rows, c, false)
				BNApply(outR, x, scale, shift, rows, c, true)
				copy(o, outR)
				s3, s4 = make([]float64, 2*c), make([]float64, 2*c)
				BNGradSums(s3[:c], s3[c:], x, g, nil, mean, invstd, rows, c, false)
				BNGradSums(s4[:c], s4[c:], x, g, o, mean, invstd, rows, c, true)
				gx, gxR = append([]float32(nil), gx0...), append([]float32(nil), gx0...)
				BNGradInput(gx, x, g, nil, mean, invstd, scale, a, b, rows, c, false, false)
				// set: gxR's old contents (not zeros) must not show
				BNGradInput(gxR, x, g, o, mean, invstd, scale, a, b, rows, c, true, true)
				gxZ := make([]float32, rows*c)
				BNGradInput(gxZ, x, g, o, mean, invstd, scale, a, b, rows, c, true, false)
				for i := range gxZ {
					if math.Float32bits(gxZ[i]) != math.Float32bits(gxR[i]) {
						t.Fatalf("BNGradInput set c=%d rows=%d asm=%v: [%d] %v, adding to zeros %v", c, rows, asm, i, gxR[i], gxZ[i])
					}
				}
				return
			}
			a1, a2, a3, a4, a5, a6, a7, a8 := run(true)
			b1, b2, b3, b4, b5, b6, b7, b8 := run(false)
			for _, p := range []struct {
				name string
				x, y []float64
			}{{"BNSum", a1, b1}, {"BNSumSqDev", a2, b2}, {"BNGradSums", a3, b3}, {"BNGradSums relu", a4, b4}} {
				for i := range p.x {
					if math.Float64bits(p.x[i]) != math.Float64bits(p.y[i]) && !(p.x[i] != p.x[i] && p.y[i] != p.y[i]) {
						t.Fatalf("%s c=%d rows=%d: [%d] asm %v, Go %v", p.name, c, rows, i, p.x[i], p.y[i])
					}
				}
			}
			for _, p := range []struct {
				name string
				x, y []float32
			}{{"BNApply", a5, b5}, {"BNApply relu", a6, b6}, {"BNGradInput", a7, b7}, {"BNGradInput relu", a8, b8}} {
				for i := range p.x {
					if math.Float32bits(p.x[i]) != math.Float32bits(p.y[i]) && !(p.x[i] != p.x[i] && p.y[i] != p.y[i]) {
						t.Fatalf("%s c=%d rows=%d: [%d] asm %v, Go %v (x %v)", p.name, c, rows, i, p.x[i], p.y[i], x[i])
					}
				}
			}
		}
	}
}

// TestMaxPool2RowAsmMatchesGo compares the assembly max pool with the
// portable one: values bit for bit and the arg-max indices, with NaNs and
// ties (values drawn from a few levels) mixed in.
func TestMaxPool2RowAsmMatchesGo(t *testing.T) {
	if !poolAsm {
		t.Skip("no assembly max pool on this CPU/build")
	}
	defer func(p512 bool) { poolAsm, poolAVX512 = true, p512 }(poolAVX512)
	variants := []bool{false} // AVX-512 off
	if hasAVX512 {
		variants = append(variants, true)
	} else {
		t.Log("this CPU has no AVX-512F: only the AVX2 max pool is tested")
	}
	r := rand.New(rand.NewPCG(15, 16))
	for _, v512 := range variants {
		poolAVX512 = v512
		for _, c := range []int{8, 16, 24, 32, 48} {
			d, h, w := 4, 4, 6
			sy, sz := w*c, h*w*c
			x := make([]float32, d*h*w*c)
			for i := range x {
				switch r.IntN(10) {
				case 0:
					x[i] = float32(math.NaN())
				case 1:
					x[i] = float32(math.Copysign(0, -1))
				default:
					x[i] = float32(r.IntN(5) - 2)
				}
			}
			ow := w / 2
			for _, withArg := range []bool{false, true} {
				for oz := 0; oz < d/2; oz++ {
					for oy := 0; oy < h/2; oy++ {
						base := 2*oz*sz + 2*oy*sy
						run := func(asm bool) ([]float32, []int32) {
							poolAsm = asm
							out := make([]float32, ow*c)
							var arg []int32
							if withArg {
								arg = make([]int32, ow*c)
							}
							MaxPool2Row(out, arg, x, base, ow, c, sy, sz)
							return out, arg
						}
						o1, a1 := run(true)
						o2, a2 := run(false)
						for i := range o1 {
							if math.Float32bits(o1[i]) != math.Float32bits(o2[i]) && !(o1[i] != o1[i] && o2[i] != o2[i]) {
								t.Fatalf("avx512=%v c=%d arg=%v row (%d,%d): out[%d] asm %v, Go %v", v512, c, withArg, oz, oy, i, o1[i], o2[i])
							}
							if withArg && a1[i] != a2[i] {
								t.Fatalf("avx512=%v c=%d row (%d,%d): arg[%d] asm %d, Go %d", v512, c, oz, oy, i, a1[i], a2[i])
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkBNSums times the three per-channel sums of a BatchNorm layer
// (mean, squared deviations, and the backward's gradient sums with the
// ReLU mask) on activations of the reference network's first levels
// (batch 5 at 64³ with 32 channels, at 32³ with 64), far larger than the
// caches: GB/s of input read.
func BenchmarkBNSums(b *testing.B) {
	for _, l := range []struct{ rows, c int }{{5 << 18, 32}, {5 << 15, 64}} {
		r := rand.New(rand.NewPCG(1, 2))
		n := l.rows * l.c
		x, g, o := randSlice(r, n), randSlice(r, n), randSlice(r, n)
		mean, invstd := randSlice(r, l.c), randSlice(r, l.c)
		mu := make([]float64, l.c)
		s1, s2, s3 := make([]float64, l.c), make([]float64, l.c), make([]float64, 2*l.c)
		for _, blk := range []int{8192, 1 << 40} {
			bnBlockFloats = blk
			b.Run(fmt.Sprintf("rows%d_c%d/block%d", l.rows, l.c, min(blk, l.rows*l.c)), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					BNSum(s1, x, l.rows, l.c)
					BNSumSqDev(s2, x, mu, l.rows, l.c)
					BNGradSums(s3[:l.c], s3[l.c:], x, g, o, mean, invstd, l.rows, l.c, true)
				}
				b.ReportMetric(float64(5*4*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
	bnBlockFloats = 8192
}

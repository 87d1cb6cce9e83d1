package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cpuSeconds is the CPU time this process has used. The benchmark machine is
// shared, so besides wall-clock GFLOP/s the benchmarks report flops per
// CPU-second used ("GFLOP/cpu-s"): the speed while actually on a core, which
// other processes' time slices do not dilute.
func cpuSeconds() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// loop runs f under b.Loop and reports GFLOP/s (wall clock) and GFLOP/cpu-s
// for flops per call.
func loop(b *testing.B, flops float64, f func()) {
	c0 := cpuSeconds()
	for b.Loop() {
		f()
	}
	cpu := cpuSeconds() - c0
	total := flops * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkPeakFMA measures the FMA throughput of one core with a
// register-only loop of 12 independent 8-lane FMAs: the ceiling the GEMM
// kernels are judged against.
func BenchmarkPeakFMA(b *testing.B) { peakFMA(b, hasAVX2, 1, 192, fmaPeakAVX2) }

// peakFMA times 1<<20 iterations of an FMA loop of perIter flops per
// iteration on goroutines goroutines at once, if the CPU can run it.
func peakFMA(b *testing.B, ok bool, goroutines, perIter int, fn func(n int)) {
	if !ok {
		b.Skip("this CPU lacks the loop's instructions")
	}
	const iters = 1 << 20
	loop(b, float64(goroutines*iters*perIter), func() {
		done := make(chan bool)
		for g := 1; g < goroutines; g++ {
			go func() { fn(iters); done <- true }()
		}
		fn(iters)
		for g := 1; g < goroutines; g++ {
			<-done
		}
	})
}

// gemmShape is a benchmark shape, named after its role in a 3-D conv layer
// lowered to GEMM by im2col (NDHWC): forward C[M,N] = A[M,K]·W[K,N], weight
// gradient dW[K,N] = Aᵀ·dY, input gradient dA[M,K] = dY·Wᵀ.
type gemmShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

func benchShapes() []gemmShape {
	var s []gemmShape
	// The last two rows are chunks of 4096 voxels of the layers above: the
	// im2col matrix of a chunk (≤ 7 MiB) stays in L3, as it would if the
	// engine lowered a convolution chunk by chunk.
	for _, c := range [][3]int{{65536, 27, 8}, {65536, 216, 8}, {8192, 432, 32}, {262144, 432, 16}, {4096, 216, 8}, {4096, 432, 16}} {
		M, K, N := c[0], c[1], c[2]
		s = append(s,
			gemmShape{fmt.Sprintf("fwd/M=%d,K=%d,N=%d", M, K, N), false, false, M, N, K},
			gemmShape{fmt.Sprintf("wgrad/M=%d,K=%d,N=%d", M, K, N), true, false, K, N, M},
			gemmShape{fmt.Sprintf("igrad/M=%d,K=%d,N=%d", M, K, N), false, true, M, K, N})
	}
	for _, n := range []int{512, 1024} {
		s = append(s, gemmShape{fmt.Sprintf("square/%d", n), false, false, n, n, n})
	}
	return s
}

func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range benchShapes() {
		lda, ldb := sh.k, sh.n
		if sh.transA {
			lda = sh.m
		}
		if sh.transB {
			ldb = sh.k
		}
		var a, bm, c []float32
		setup := func() {
			if a != nil {
				return
			}
			a = make([]float32, sh.m*sh.k)
			bm = make([]float32, sh.k*sh.n)
			c = make([]float32, sh.m*sh.n)
			for i := range a {
				a[i] = r.Float32()
			}
			for i := range bm {
				bm[i] = r.Float32()
			}
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t=%d", sh.name, threads), func(b *testing.B) {
				setup()
				defer SetThreads(Threads())
				SetThreads(threads)
				loop(b, 2*float64(sh.m)*float64(sh.n)*float64(sh.k), func() {
					Sgemm(sh.transA, sh.transB, sh.m, sh.n, sh.k, 1, a, lda, bm, ldb, 0, c, sh.n)
				})
			})
		}
	}
}

// BenchmarkMicroKernel times each micro-kernel on L1-resident packed panels:
// the kernel's own ceiling, without memory traffic.
func BenchmarkMicroKernel(b *testing.B) {
	for _, kern := range allKernels() {
		for _, k := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/k=%d", kern.name, k), func(b *testing.B) {
				a := make([]float32, k*kern.mr)
				bp := make([]float32, k*kern.nr)
				c := make([]float32, kern.mr*kern.nr)
				for i := range a {
					a[i] = 1
				}
				for i := range bp {
					bp[i] = 1
				}
				loop(b, 2*float64(kern.mr*kern.nr*k), func() {
					kern.fn(k, unsafe.Pointer(&a[0]), 4, uintptr(kern.mr)*4, unsafe.Pointer(&bp[0]), unsafe.Pointer(&c[0]), uintptr(kern.nr)*4, 0, 64, 1, 0, 1, 0, 0)
				})
			})
		}
	}
}

// BenchmarkDotKernel times the dot kernels on L1-resident rows.
func BenchmarkDotKernel(b *testing.B) {
	for _, kern := range append([]*dotKernel{goDot}, asmDotKernels()...) {
		for _, k := range []int{27, 216, 432} {
			b.Run(fmt.Sprintf("%s/k=%d", kern.name, k), func(b *testing.B) {
				kpad := (k + 7) &^ 7
				a := make([]float32, 2*kpad)
				bt := make([]float32, 4*kpad)
				c := make([]float32, 8)
				loop(b, 2*float64(8*k), func() {
					kern.fn(k, unsafe.Pointer(&a[0]), uintptr(kpad)*4, unsafe.Pointer(&bt[0]), uintptr(kpad)*4, unsafe.Pointer(&c[0]), 16, 1, 0, tailMask(k))
				})
			})
		}
	}
}

// BenchmarkPeakFMA2 runs the FMA loop on two goroutines at once: whether the
// two vCPUs are two cores' worth of FMA units.
func BenchmarkPeakFMA2(b *testing.B) { peakFMA(b, hasAVX2, 2, 192, fmaPeakAVX2) }

// BenchmarkPeakFMA512 and BenchmarkPeakFMA512x2 are BenchmarkPeakFMA and
// BenchmarkPeakFMA2 with 16-lane AVX-512 FMAs: on a CPU with 512-bit-wide
// FMA units (AMD Zen 5, Intel Xeon) they measure twice the AVX2 rate, and
// that higher figure is the machine's FP32 peak.
func BenchmarkPeakFMA512(b *testing.B) { peakFMA(b, hasAVX512, 1, 384, fmaPeakAVX512) }

func BenchmarkPeakFMA512x2(b *testing.B) { peakFMA(b, hasAVX512, 2, 384, fmaPeakAVX512) }

// BenchmarkSmall compares the blocked path with the reference loop on the
// tiny GEMMs the engine also issues (measured: the blocked path wins even at
// 4×4×4, so there is no separate small-matrix path).
func BenchmarkSmall(b *testing.B) {
	for _, s := range [][3]int{{4, 4, 4}, {8, 8, 27}, {1, 16, 27}, {16, 8, 8}, {27, 8, 64}, {64, 64, 64}} {
		m, n, k := s[0], s[1], s[2]
		a := make([]float32, m*k)
		bm := make([]float32, k*n)
		c := make([]float32, m*n)
		for i := range a {
			a[i] = 1 // nonzero: sgemmRef skips zero terms
		}
		for i := range bm {
			bm[i] = 1
		}
		flops := 2 * float64(m*n*k)
		b.Run(fmt.Sprintf("%dx%dx%d/ref", m, n, k), func(b *testing.B) {
			loop(b, flops, func() { sgemmRef(false, false, m, n, k, 1, a, k, bm, n, 0, c, n) })
		})
		b.Run(fmt.Sprintf("%dx%dx%d/blocked", m, n, k), func(b *testing.B) {
			loop(b, flops, func() { sgemmTuned(false, false, m, n, k, 1, a, k, bm, n, 0, c, n) })
		})
	}
}

// BenchmarkMaxPool2Row times one 2×2×2 max pool row (ow = 64 voxels, with
// and without arg-max) on each implementation runnable here.
func BenchmarkMaxPool2Row(b *testing.B) {
	type impl struct {
		name        string
		asm, avx512 bool
	}
	impls := []impl{{"go", false, false}}
	if poolAsm {
		impls = append(impls, impl{"avx2", true, false})
	}
	if hasAVX512 && poolAsm {
		impls = append(impls, impl{"avx512", true, true})
	}
	for _, c := range []int{16, 32} {
		const ow = 64
		sy := 2 * ow * c
		sz := 2 * sy
		x := make([]float32, 2*sz)
		for i := range x {
			x[i] = float32(i % 97)
		}
		out := make([]float32, ow*c)
		arg := make([]int32, ow*c)
		for _, im := range impls {
			for _, withArg := range []bool{false, true} {
				b.Run(fmt.Sprintf("c=%d/%s/arg=%v", c, im.name, withArg), func(b *testing.B) {
					defer func(a, v bool) { poolAsm, poolAVX512 = a, v }(poolAsm, poolAVX512)
					poolAsm, poolAVX512 = im.asm, im.avx512
					var ap []int32
					if withArg {
						ap = arg
					}
					for b.Loop() {
						MaxPool2Row(out, ap, x, 0, ow, c, sy, sz)
					}
				})
			}
		}
	}
}

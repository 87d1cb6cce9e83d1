// Package kernels holds the compute kernels the engine's convolutions,
// normalisation and pooling run on: single-precision GEMM (blocked, and with
// a pre-packed B for repeated products), the tile transforms of the 3-D
// Winograd convolutions F(2×2×2, 3×3×3) and F(4×4×4, 3×3×3) (winograd4.go:
// generated line programs, AVX2 and AVX-512), BatchNorm's per-channel loops and
// the 2×2×2 max pool, and dropout's counter-based masks. Each has a
// Go-assembly implementation (AVX2+FMA; on AVX-512F/VL CPUs also an AVX-512
// GEMM kernel, register-resident Winograd input, output and output-gradient
// transforms, the max pool and the dropout masks; a bfloat16 GEMM and a
// bfloat16-writing input transform on AVX-512-BF16) selected at start-up by
// CPU feature detection, and a pure-Go fallback (other architectures, or the
// purego build tag) that the tests hold it to, bit for bit where the
// operation order allows. These are
// written by hand because no Go library offers them at this speed: gonum's
// SGEMM reaches about 19 GFLOP/s on the development machine's two cores.
//
// All kernels are deterministic: the order of every floating-point reduction
// depends only on the call's shape, so results are bit-identical run to run
// and for any thread count (SetThreads).
//
// Performance notes for callers (measured on the 2-vCPU Zen 3 development
// machine, AVX2, ~90 GFLOP/s FMA peak per core; see bench_test.go): the
// narrow GEMMs of channels-last 3-D convolutions are memory-bound when their
// operands come from DRAM. Lowering a convolution in chunks of a few thousand
// output voxels, so that the chunk's im2col matrix (M×K) stays in L3, runs the
// forward GEMM at 50-70 GFLOP/s per core instead of 20-55; the weight
// gradient can accumulate over chunks with beta = 1. The input-gradient GEMM
// (k = Cout small) is bound by writing its M×K result.
package kernels

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(A) is m×k (A is m×k with leading dimension lda, or k×m if transA), op(B)
// is k×n (B is k×n with leading dimension ldb, or n×k if transB) and C is m×n
// with leading dimension ldc. In BF16 precision (SetPrecision) the operands
// are rounded to bfloat16 and the products accumulated in float32 (bf16.go).
// When beta == 0, C is not read (NaNs in C do not
// propagate), as in BLAS.
//
// It panics if a dimension or leading dimension is inconsistent with the
// slice lengths: that is a programmer error.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if Precision() == BF16 {
		sgemmBF16(bf16Asm, Threads(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
		return
	}
	sgemmImpl(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmImpl is the blocked implementation (blocked.go) running on the
// micro-kernels chosen at start-up; sgemmRef is the simple reference every
// faster path is tested against.
var sgemmImpl = sgemmTuned

func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			for j := range ci {
				ci[j] = 0
			}
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var aip float32
			if transA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if aip == 0 {
				continue
			}
			if transB {
				for j := 0; j < n; j++ {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j := range ci {
					ci[j] += aip * bp[j]
				}
			}
		}
	}
}

func checkGemm(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("kernels: negative gemm dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if k > 0 && (lda < ac || la < (ar-1)*lda+ac) {
		panic("kernels: gemm A too short for its dimensions")
	}
	if k > 0 && (ldb < bc || lb < (br-1)*ldb+bc) {
		panic("kernels: gemm B too short for its dimensions")
	}
	if ldc < n || lc < (m-1)*ldc+n {
		panic("kernels: gemm C too short for its dimensions")
	}
}

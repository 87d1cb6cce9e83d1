package kernels

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// bfloat16 GEMM. In BF16 precision (SetPrecision), Sgemm and PackB round
// the A and B operands to bfloat16 while packing them (round to nearest,
// ties to even, as PyTorch's float → bfloat16 conversion) and multiply on
// AVX-512-BF16's VDPBF16PS, accumulating in float32: per element of C,
//
//	acc = 0
//	for each k pair (2q, 2q+1) of the k block, q increasing:
//	    acc = fma(a[2q+1], b[2q+1], acc)   // the odd element first,
//	    acc = fma(a[2q],   b[2q],   acc)   // as VDPBF16PS does
//	C = alpha*acc + beta*C                 (one fma; alpha*acc alone if beta == 0)
//
// where a and b are the bfloat16 operands widened to float32, each fma rounds
// once to float32 (ties to even), subnormal inputs (bf16 operands and the
// accumulator) count as zero and subnormal results are flushed to zero (see
// dpbf16). A k block of odd length is padded with a zero pair element. k is
// cut into blocks of at most bf16KC (even lengths, a function of k alone)
// and C accumulates block by block with beta = 1 after the first, so the
// result depends only on the shapes and values: not on the thread count, and
// bit-identical between the assembly kernel and the pure-Go emulation
// (bf16Go), which the tests hold it to.
//
// Packed layout: VDPBF16PS multiplies pairs of bfloat16 along k, so both
// operands are packed as k pairs, one uint32 per pair (low half the even k,
// high half the odd k). B is packed as nr-column panels (nr = 16, or 8 when
// n <= 8), B(q,j) at bp[q*nr+j]; A as 16-row panels, A(i,q) at ap[q*16+i],
// or, when A is row-major, simply converted row by row, A(i,q) at
// ap[i*kp+q].
//
// Accuracy: each operand carries a relative rounding error of at most 2^-8,
// so |C − C_exact| ≤ (2^-7 + 2^-15 + 2(k+4)·2^-24)·Σ|alpha·a·b| + 2^-22·|beta·C|
// (TestSgemmBF16Reference), plus up to 2^-126 per step where subnormal
// values are flushed.
//
// Speed (AMD EPYC Zen 4, 2 vCPUs, loaded machine, so indicative only): the
// 16×16 kernel runs about 220 GFLOP/s per core on L1-resident panels, 2.2×
// the float32 kernels; whole GEMMs gain less, because A and B are converted
// in a separate pass: for the engine's narrow channels-last shapes (n = Cout
// ≤ 64) converting A costs about as much as the products (BenchmarkSgemmBF16).

// Prec is the arithmetic Sgemm and PackB use.
type Prec int32

const (
	// FP32: float32 operands and products (fused multiply-adds on AVX2).
	FP32 Prec = iota
	// BF16: operands rounded to bfloat16, products accumulated in float32
	// (needs AVX-512-BF16).
	BF16
)

func (p Prec) String() string {
	switch p {
	case FP32:
		return "fp32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Prec(%d)", int32(p))
}

// ParsePrecision parses "fp32" or "bf16" (a command-line flag's value).
func ParsePrecision(s string) (Prec, error) {
	switch s {
	case "fp32":
		return FP32, nil
	case "bf16":
		return BF16, nil
	}
	return FP32, fmt.Errorf("kernels: unknown precision %q (want fp32 or bf16)", s)
}

var precision atomic.Int32

// ErrNoBF16 is SetPrecision(BF16)'s error on a CPU without AVX-512-BF16.
var ErrNoBF16 = errors.New("kernels: bf16 needs AVX-512-BF16 (or AMX, which this package does not use); this CPU has no AVX-512-BF16")

// SetPrecision selects the arithmetic of later Sgemm, PackB and
// PackBSize calls (a PackedB keeps the precision it was packed in). It
// returns ErrNoBF16, leaving the precision unchanged, for BF16 on a CPU
// without AVX-512-BF16 (see HasBF16). Set it once at start-up, before any
// GEMM runs.
func SetPrecision(p Prec) error {
	switch p {
	case FP32:
	case BF16:
		if !HasBF16() {
			return ErrNoBF16
		}
	default:
		return fmt.Errorf("kernels: unknown precision %v", p)
	}
	precision.Store(int32(p))
	return nil
}

// Precision reports the arithmetic Sgemm uses (FP32 unless SetPrecision
// chose BF16).
func Precision() Prec { return Prec(precision.Load()) }

// HasBF16 reports whether this CPU runs the bfloat16 GEMM (AVX-512-BF16).
func HasBF16() bool { return bf16Asm != nil }

// bf16Asm is the assembly bfloat16 kernel set, nil where the CPU lacks
// AVX-512-BF16 (bf16_amd64.go sets it). Tests set it to nil to pretend so.
var bf16Asm *bf16Set

// bf16Kernel is a bfloat16 micro-kernel: fn computes, for i < mr, j < nr,
//
//	acc[i][j] = Σ_{q<kp} dpbf16 over the pairs A(i,q) and B[q][j]
//	C[i][j] = alpha*acc[i][j] (beta == 0, C not read) or fma(beta, C[i][j], alpha*acc[i][j])
//
// with A(i,q) the uint32 pair at a + i*rsA + q*csA, B the packed panel of
// nr pairs per q, and C's rows ldc bytes apart.
type bf16Kernel struct {
	name   string
	mr, nr int
	fn     func(kp int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32)
}

// bf16FromF32 rounds f to bfloat16 as PyTorch's c10::BFloat16 does (round
// to nearest, ties to even, on the bits): any NaN becomes the quiet NaN
// 0x7FC0, ±Inf stays ±Inf, values past the largest bfloat16 round to ±Inf,
// subnormals are rounded like any other value.
func bf16FromF32(f float32) uint16 {
	if f != f {
		return 0x7FC0
	}
	u := math.Float32bits(f)
	return uint16((u + 0x7FFF + (u>>16)&1) >> 16)
}

// f32FromBF16 widens a bfloat16 to float32 (exact).
func f32FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// bf16Pair packs two float32 values (even and odd k) as one uint32 pair.
func bf16Pair(even, odd float32) uint32 {
	return uint32(bf16FromF32(even)) | uint32(bf16FromF32(odd))<<16
}

// daz returns x, or a zero of x's sign if x is subnormal.
func daz(x float32) float32 {
	if math.Float32bits(x)&0x7F800000 == 0 {
		return math.Float32frombits(math.Float32bits(x) & 0x80000000)
	}
	return x
}

// dpbf16 is one float32 lane of VDPBF16PS: acc plus the dot product of the
// bf16 pairs x and y, the odd (high) product first, each fma rounded once to
// nearest-even, subnormal inputs (operands and accumulator) treated as zero
// and subnormal results, the intermediate one included, flushed to zero: the
// Intel SDM's pseudo-code. TestDPBF16Instruction checks it against the
// instruction on the CPU at hand; on an AMD EPYC Zen 4 (2026-12-01) the
// instruction matched it bit for bit, so the bfloat16 GEMM needs no
// tolerance against its emulation.
func dpbf16(acc float32, x, y uint32) float32 {
	acc = daz(acc)
	acc = daz(fma32(daz(f32FromBF16(uint16(x>>16))), daz(f32FromBF16(uint16(y>>16))), acc))
	return daz(fma32(daz(f32FromBF16(uint16(x))), daz(f32FromBF16(uint16(y))), acc))
}

package kernels

import "fmt"

// PackedB is a k×n right-hand operand packed once into the micro-kernel's
// panel layout, for callers that multiply many left-hand blocks by the same
// B (the Winograd convolution runs 64 GEMMs per tile block against fixed
// transformed weights; packing B on every call cost more than the products).
//
// A PackedB packed in BF16 precision holds bfloat16 pairs (bf16.go) and
// SgemmPacked computes with it in BF16, whatever the precision at the call.
type PackedB struct {
	k, n, kc int
	kern     *microKernel
	data     []float32
	bf16     []uint32 // BF16 precision: the pairs (aliasing dst), else nil
	bk       *bf16Set // and the kernels to run them on
}

// BF16 reports whether pb holds bfloat16 pairs (it was packed in BF16
// precision), so that SgemmPackedPairs can take it.
func (pb PackedB) BF16() bool { return pb.bf16 != nil }

// kernelFor returns the micro-kernel for n columns of C (the dot kernel
// aside): narrow up to its width, wider (AVX-512) past the wide one's.
func kernelFor(kp kernelPair, n int) *microKernel {
	switch {
	case n <= kp.narrow.nr:
		return kp.narrow
	case kp.wider != nil && n > kp.wide.nr:
		return kp.wider
	}
	return kp.wide
}

// PackBSize returns the floats PackB needs for a k×n B in the current
// precision.
func PackBSize(k, n int) int {
	if Precision() == BF16 {
		return bf16PackedSize(k, n, bf16KBlock(k), bf16Asm.pick(n).nr)
	}
	nr := kernelFor(kernelSet, n).nr
	return k * ((n + nr - 1) / nr * nr)
}

// PackB packs the row-major k×n matrix b (leading dimension ldb) into dst
// (PackBSize(k, n) floats), which the returned PackedB keeps using. In BF16
// precision the values are rounded to bfloat16 pairs (stored in dst's bits).
func PackB(dst, b []float32, ldb, k, n int) PackedB {
	kern := kernelFor(kernelSet, n)
	if k <= 0 || n <= 0 || ldb < n || len(b) < (k-1)*ldb+n || len(dst) < PackBSize(k, n) {
		panic(fmt.Sprintf("kernels.PackB: k=%d n=%d ldb=%d with %d floats into %d (need %d)",
			k, n, ldb, len(b), len(dst), PackBSize(k, n)))
	}
	if Precision() == BF16 {
		return packBBF16All(bf16Asm, dst, b, ldb, k, n)
	}
	kcMax, _ := blockSizes(kern)
	nkb := (k + kcMax - 1) / kcMax
	kc := (k + nkb - 1) / nkb
	nr := kern.nr
	npan := (n + nr - 1) / nr
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		packBRows(b, ldb, pc, kb, 0, n, nr, dst[pc*npan*nr:])
	}
	return PackedB{k: k, n: n, kc: kc, kern: kern, data: dst[:PackBSize(k, n)]}
}

// NewPackedB returns the PackedB that PackB(dst, b, ldb, k, n) would, with
// its floats still to be written (in float32 precision only) by a producer
// that writes the packed layout itself (the Winograd kernel transforms):
// row p, columns [q·NR, q·NR+NR) of B go to the NR consecutive floats at
// PanelOffset(p, q) of dst, zeros past column n.
func NewPackedB(dst []float32, k, n int) PackedB {
	if Precision() == BF16 {
		panic("kernels.NewPackedB: BF16 precision packs with PackB")
	}
	kern := kernelFor(kernelSet, n)
	if k <= 0 || n <= 0 || len(dst) < PackBSize(k, n) {
		panic(fmt.Sprintf("kernels.NewPackedB: k=%d n=%d into %d floats (need %d)", k, n, len(dst), PackBSize(k, n)))
	}
	kcMax, _ := blockSizes(kern)
	nkb := (k + kcMax - 1) / kcMax
	kc := (k + nkb - 1) / nkb
	return PackedB{k: k, n: n, kc: kc, kern: kern, data: dst[:PackBSize(k, n)]}
}

// NR returns the width of pb's column panels.
func (pb PackedB) NR() int { return pb.kern.nr }

// PanelOffset returns where row p of B's column panel q (columns
// [q·NR, q·NR+NR)) starts in the packed floats.
func (pb PackedB) PanelOffset(p, q int) int {
	nr := pb.kern.nr
	pc := p / pb.kc * pb.kc
	kb := min(pb.kc, pb.k-pc)
	return pc*((pb.n+nr-1)/nr)*nr + q*kb*nr + (p-pc)*nr
}

// packedNoPrefetch is the largest A (floats) SgemmPacked treats as
// cache-resident: no prefetch hints for it (the Winograd blocks' A was just
// written by the transforms).
var packedNoPrefetch = 64 << 10

// SgemmPacked computes C = alpha·A·B + beta·C on the calling goroutine for
// a row-major m×k A and a packed B (k×n); C is m×n with leading dimension
// ldc. As with Sgemm, beta == 0 does not read C, and the result depends
// only on the shapes and values.
func SgemmPacked(m int, alpha float32, a []float32, lda int, pb PackedB, beta float32, c []float32, ldc int) {
	k, n := pb.k, pb.n
	if pb.bf16 != nil {
		sgemmBF16(pb.bk, 1, false, false, m, n, k, alpha, a, lda, nil, n, beta, c, ldc, pb.bf16)
		return
	}
	checkGemm(false, false, m, n, k, len(a), lda, k*n, n, len(c), ldc)
	if m == 0 {
		return
	}
	kern := pb.kern
	mr, nr := kern.mr, kern.nr
	npan := (n + nr - 1) / nr
	_, mcMax := blockSizes(kern)
	g := gemmArgs{kern: kern, pack6: kernelSet.pack6, packT: kernelSet.packT, m: m, n: n, k: k,
		alpha: alpha, a: a, lda: lda, c: c, ldc: ldc, noPrefetch: m*k <= packedNoPrefetch}
	s := scratchPool.Get().(*gemmScratch)
	mblocks := (m + mcMax - 1) / mcMax
	mc := (m + mblocks - 1) / mblocks
	mc = (mc + mr - 1) / mr * mr
	for i0 := 0; i0 < m; i0 += mc {
		for pc := 0; pc < k; pc += pb.kc {
			kb := min(pb.kc, k-pc)
			b := beta
			if pc > 0 {
				b = 1
			}
			g.block(s, i0, min(mc, m-i0), pc, kb, 0, n, 0, npan, pb.data[pc*npan*nr:], b)
		}
	}
	scratchPool.Put(s)
}

// SgemmPackedPairs is SgemmPacked with A already rounded to bfloat16 pairs,
// as WinoInBF16 writes it: row i of the m×k A is the ceil(k/2) pairs
// a[i*lda : i*lda+ceil(k/2)] (lda in pairs; an odd k's last pair has a zero
// high half). pb must be packed in BF16 precision. The result is bit for bit
// SgemmPacked's on the float32 A those pairs round from, without converting
// A on every call.
func SgemmPackedPairs(m int, alpha float32, a []uint32, lda int, pb PackedB, beta float32, c []float32, ldc int) {
	if pb.bf16 == nil {
		panic("kernels.SgemmPackedPairs: B was not packed in BF16 precision")
	}
	if m == 0 {
		return
	}
	sgemmBF16A(pb.bk, 1, false, false, m, pb.n, pb.k, alpha, nil, 0, a, lda, nil, pb.n, beta, c, ldc, pb.bf16)
}

package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The bfloat16 GEMM driver (arithmetic and layout: bf16.go). It is blocked
// like the float32 one (blocked.go) but simpler, as every operand must be
// converted anyway:
//
//	for jc over n in steps of ncMax
//	  for pc over k in blocks of at most bf16KC (even lengths)
//	    convert and pack op(B)[pc:pc+kb, jc:jc+nb] into 16-column panels
//	    in parallel, per item (an mc-row block × a group of B panels):
//	      convert and pack op(A)[ic:ic+mc, pc:pc+kb] into 16-row panels
//	      micro-kernel on each 16×16 tile (partial tiles via a scratch tile)
//
// Each element of C is computed by one item, with the same k blocks whatever
// the thread count, so results are bit-identical for any number of threads.

// bf16KC bounds the k block: a packed B panel (bf16KC/2 pairs × 16 columns)
// is 16 KiB.
const bf16KC = 512

// bf16KBlock returns the k block length: equal blocks of at most bf16KC,
// rounded up to even so that only the last block can have an odd length.
func bf16KBlock(k int) int {
	nkb := (k + bf16KC - 1) / bf16KC
	kc := (k + nkb - 1) / nkb
	return kc + kc&1
}

// bf16PackedSize is the number of pairs of op(B) k×n packed in k blocks of
// kc: each block holds ceil(kb/2) pairs per column, columns padded to
// nr-column panels.
func bf16PackedSize(k, n, kc, nr int) int {
	cols := (n + nr - 1) / nr * nr
	full := k / kc
	last := k - full*kc
	return (full*((kc+1)/2) + (last+1)/2) * cols
}

// pairRowsK writes, for each pair p < ceil(kb/2) of rows 2p and 2p+1 of src
// (row r at src[r*ld:]; when kb is odd the last pair's odd halves are
// zero), the pairs (r0[i], r1[i]) for i < n as runs of 16 uint32, stride
// apart: dst[p*16 + (i/16)*stride + i%16]. The full pairs' whole runs go
// through one assembly call (bf16PairRowsK); a call per pair of rows cost
// more than the conversion on the engine's narrow rows.
func pairRowsK(dst []uint32, stride int, src []float32, ld, kb, n int) {
	kp, pfull := (kb+1)/2, kb/2
	n16 := 0
	if bf16CvtAsm && pfull > 0 && n >= 16 {
		n16 = n &^ 15
		_ = src[(2*pfull-1)*ld+n16-1]
		_ = dst[(pfull-1)*16+(n16/16-1)*stride+15]
		bf16PairRowsK(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), uintptr(ld)*4, pfull, n16, uintptr(stride)*4, 64)
	}
	for p := 0; p < kp; p++ {
		lo := n16
		var r1 []float32
		if 2*p+1 < kb {
			r1 = src[(2*p+1)*ld : (2*p+1)*ld+n]
		} else {
			lo = 0
		}
		r0 := src[2*p*ld : 2*p*ld+n]
		for i := lo; i < n; i++ {
			var odd float32
			if r1 != nil {
				odd = r1[i]
			}
			dst[p*16+(i/16)*stride+i%16] = bf16Pair(r0[i], odd)
		}
	}
}

// pairSeq writes the pairs of consecutive values of src to dst (len(src)
// odd: the last pair's odd half is zero). pf is a prefetch distance in
// bytes (a hint for the assembly loop; 0 for none).
func pairSeq(dst []uint32, src []float32, pf uintptr) {
	np := len(src) / 2
	n8 := 0
	if bf16CvtAsm {
		if n8 = np &^ 7; n8 > 0 {
			_, _ = dst[n8-1], src[2*n8-1]
			bf16PairSeq(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n8, pf)
		}
	}
	for p := n8; p < np; p++ {
		dst[p] = bf16Pair(src[2*p], src[2*p+1])
	}
	if len(src)&1 != 0 {
		dst[np] = bf16Pair(src[len(src)-1], 0)
	}
}

// packBBF16 converts op(B)[pc:pc+kb, jc:jc+nb] to bf16 pairs in nr-column
// panels (nr = 16 or 8): panel q holds dst[q*kp*nr + p*nr + j] =
// pair(op(B)[pc+2p][jc+nr*q+j], op(B)[pc+2p+1][jc+nr*q+j]) for p < kp =
// ceil(kb/2), zero past kb and nb. Only panels [q0, q1) are written.
func packBBF16(transB bool, b []float32, ldb, pc, kb, jc, nb, q0, q1, nr int, dst []uint32) {
	kp := (kb + 1) / 2
	if !transB && nr == 16 {
		// Rows 2p and 2p+1 of B, over the panels' columns.
		j0 := jc + q0*16
		cols := min(nb-q0*16, (q1-q0)*16)
		pairRowsK(dst[q0*kp*16:], kp*16, b[pc*ldb+j0:], ldb, kb, cols)
	}
	for q := q0; q < q1; q++ {
		pan := dst[q*kp*nr : (q+1)*kp*nr]
		cols := min(nr, nb-q*nr)
		j0 := jc + q*nr
		switch {
		case transB:
			// op(B)[p][j] = b[j*ldb+p]: a stored row per column.
			for j := 0; j < cols; j++ {
				src := b[(j0+j)*ldb+pc : (j0+j)*ldb+pc+kb]
				for p := 0; p < kb/2; p++ {
					pan[p*nr+j] = bf16Pair(src[2*p], src[2*p+1])
				}
				if kb&1 != 0 {
					pan[(kp-1)*nr+j] = bf16Pair(src[kb-1], 0)
				}
			}
		case nr != 16:
			for p := 0; p < kp; p++ {
				r0 := b[(pc+2*p)*ldb+j0 : (pc+2*p)*ldb+j0+cols]
				d := pan[p*nr : p*nr+cols]
				if 2*p+1 < kb {
					r1 := b[(pc+2*p+1)*ldb+j0 : (pc+2*p+1)*ldb+j0+cols]
					for j := range d {
						d[j] = bf16Pair(r0[j], r1[j])
					}
				} else {
					for j := range d {
						d[j] = bf16Pair(r0[j], 0)
					}
				}
			}
		}
		for p := 0; p < kp && cols < nr; p++ {
			clear(pan[p*nr+cols : p*nr+nr])
		}
	}
}

// packABF16 converts op(A)[i0:i0+mb, pc:pc+kb] to bf16 pairs for the
// kernel, rows padded with zeros to tiles of 16, and returns the strides
// (bytes) of A(i,q) within a tile and between tiles (in pairs):
//   - A row-major: each row's pairs in sequence, dst[i*kp + q] (a plain
//     conversion of the rows); rsA = 4kp, csA = 4;
//   - A transposed: 16-row panels, dst[t*kp*16 + q*16 + i]; rsA = 4,
//     csA = 64.
func packABF16(transA bool, a []float32, lda, i0, mb, pc, kb int, dst []uint32) (rsA, csA uintptr, tileStep int) {
	kp := (kb + 1) / 2
	tiles := (mb + 15) / 16
	if transA {
		// op(A)[i][p] = a[p*lda+i]: rows 2p and 2p+1 of the stored A.
		pairRowsK(dst, kp*16, a[pc*lda+i0:], lda, kb, mb)
		if rows := mb - (tiles-1)*16; rows < 16 {
			pan := dst[(tiles-1)*kp*16:]
			for p := 0; p < kp; p++ {
				clear(pan[p*16+rows : p*16+16])
			}
		}
		return 4, 64, kp * 16
	}
	for t := 0; t < tiles; t++ {
		packATileBF16(a, lda, i0, mb, pc, kb, t, dst)
	}
	return uintptr(kp) * 4, 4, kp * 16
}

// packATileBF16 converts tile t (rows i0+16t ...) of a row-major A block as
// packABF16 lays it out, prefetching the next tile's rows.
func packATileBF16(a []float32, lda, i0, mb, pc, kb, t int, dst []uint32) {
	kp := (kb + 1) / 2
	rows := min(16, mb-t*16)
	pf := uintptr(16*lda) * 4
	for i := t * 16; i < t*16+rows; i++ {
		r := (i0 + i) * lda
		pairSeq(dst[i*kp:(i+1)*kp], a[r+pc:r+pc+kb], pf)
	}
	clear(dst[(t*16+rows)*kp : (t+1)*16*kp])
}

type bf16Scratch struct {
	ap   []uint32
	tile [16 * 16]float32 // a partial tile of C (16 rows of nr)
}

var bf16ScratchPool = sync.Pool{New: func() any { return new(bf16Scratch) }}

// bf16Job is one bfloat16 call's state, shared by its workers.
type bf16Job struct {
	kern           *bf16Kernel
	nr             int // kern.nr
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	apairs         []uint32 // A already in bf16 pairs (SgemmPackedPairs), or nil
	ldap           int      // its row stride in pairs
	c              []float32
	ldc            int
	bp             []uint32 // packed B block (or the PackedB's data)
	pre            bool     // B was packed by PackB
	// current block
	packing           bool // the items pack B panels instead of computing
	pc, kb, jc, nb    int
	npan, mc, ngroups int
	items             int
	beta              float32
	next              atomic.Int64
	wg                sync.WaitGroup
}

var bf16JobPool = sync.Pool{New: func() any { return new(bf16Job) }}

// bf16PackParallel: B blocks of more elements than this are packed by all
// threads (split by panels) instead of the caller alone.
const bf16PackParallel = 1 << 16

// sgemmBF16 is Sgemm in bfloat16 precision on the given kernel set (16×16,
// or 16×8 for n <= 8). With pre != nil, B is a PackB-packed k×n block set
// (transB false) and b unused.
func sgemmBF16(set *bf16Set, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int, pre []uint32) {
	sgemmBF16A(set, threads, transA, transB, m, n, k, alpha, a, lda, nil, 0, b, ldb, beta, c, ldc, pre)
}

// sgemmBF16A is sgemmBF16 where A may come already converted: with apairs
// != nil (transA false, a unused), row i of A is the ceil(k/2) pairs at
// apairs[i*ldap:].
func sgemmBF16A(set *bf16Set, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	apairs []uint32, ldap int, b []float32, ldb int, beta float32, c []float32, ldc int, pre []uint32) {
	if apairs != nil {
		kp := (k + 1) / 2
		if transA || pre == nil || m < 0 || ldap < kp || (m > 0 && len(apairs) < (m-1)*ldap+kp) || len(c) < (m-1)*ldc+n || ldc < n {
			panic(fmt.Sprintf("kernels.SgemmPackedPairs: m=%d n=%d k=%d, %d pairs of A (row stride %d), %d floats of C (ldc %d)",
				m, n, k, len(apairs), ldap, len(c), ldc))
		}
	} else if pre == nil {
		checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	} else {
		checkGemm(transA, false, m, n, k, len(a), lda, k*n, n, len(c), ldc)
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if 2*float64(m)*float64(n)*float64(k) < parallelFlops {
		threads = 1
	}
	j := bf16JobPool.Get().(*bf16Job)
	kern := set.pick(n)
	nr := kern.nr
	*j = bf16Job{kern: kern, nr: nr, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
		b: b, ldb: ldb, apairs: apairs, ldap: ldap, c: c, ldc: ldc, bp: j.bp, pre: pre != nil}
	kc := bf16KBlock(k)
	nc := min(ncMax, n)
	if pre != nil {
		nc = n
	}
	// Row blocks: equal multiples of 16 whose packed A (mc × kc/2 pairs)
	// fills about half of a 512 KiB L2; a multiple of the thread count when
	// that keeps them at least 8 tiles tall.
	mcMax := max(16, (256<<10)/(4*(kc/2))/16*16)
	mblocks := (m + mcMax - 1) / mcMax
	if threads > 1 && mblocks%threads != 0 {
		if bal := (mblocks + threads - 1) / threads * threads; m >= bal*8*16 {
			mblocks = bal
		}
	}
	mc := (m + mblocks - 1) / mblocks
	mc = (mc + 15) / 16 * 16
	mblocks = (m + mc - 1) / mc
	j.mc = mc
	if pre == nil {
		need := (kc + 1) / 2 * ((nc + nr - 1) / nr * nr)
		if cap(j.bp) < need {
			j.bp = make([]uint32, need)
		}
		j.bp = j.bp[:need]
	}
	bp := j.bp
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		npan := (nb + nr - 1) / nr
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			j.pc, j.kb, j.jc, j.nb, j.npan = pc, kb, jc, nb, npan
			j.beta = beta
			if pc > 0 {
				j.beta = 1
			}
			if pre != nil {
				j.bp = pre[(pc/2)*npan*nr:]
			} else if threads > 1 && kb*nb > bf16PackParallel && npan >= 2 {
				j.bp = bp
				j.packing, j.ngroups, j.items = true, 1, min(npan, 4*threads)
				j.run(threads)
				j.packing = false
			} else {
				j.bp = bp
				packBBF16(transB, b, ldb, pc, kb, jc, nb, 0, npan, nr, bp)
			}
			ngroups := 1
			if threads > 1 && mblocks < 2*threads {
				ngroups = min(npan, 2*threads)
			}
			j.ngroups, j.items = ngroups, mblocks*ngroups
			j.run(threads)
		}
	}
	*j = bf16Job{bp: bp} // drop references to the caller's slices
	bf16JobPool.Put(j)
}

func (j *bf16Job) run(threads int) {
	j.next.Store(0)
	runParallel(j, min(threads, j.items), &j.wg)
}

func (j *bf16Job) worker(done bool) {
	var s *bf16Scratch
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			break
		}
		if j.packing {
			q0, q1 := it*j.npan/j.items, (it+1)*j.npan/j.items
			packBBF16(j.transB, j.b, j.ldb, j.pc, j.kb, j.jc, j.nb, q0, q1, j.nr, j.bp)
			continue
		}
		if s == nil {
			s = bf16ScratchPool.Get().(*bf16Scratch)
		}
		ib, ig := it/j.ngroups, it%j.ngroups
		i0 := ib * j.mc
		p0, p1 := ig*j.npan/j.ngroups, (ig+1)*j.npan/j.ngroups
		j.block(s, i0, min(j.mc, j.m-i0), p0, p1)
	}
	if s != nil {
		bf16ScratchPool.Put(s)
	}
	if done {
		j.wg.Done()
	}
}

// block computes rows [i0, i0+mb) of C for B panels [p0, p1) of the current
// block.
func (j *bf16Job) block(s *bf16Scratch, i0, mb, p0, p1 int) {
	kp := (j.kb + 1) / 2
	tiles := (mb + 15) / 16
	if cap(s.ap) < tiles*kp*16 {
		s.ap = make([]uint32, tiles*kp*16)
	}
	ap := s.ap[:tiles*kp*16]
	// A transposed is converted here; a row-major A tile by tile during the
	// first B panel, so that reading A from memory overlaps the kernel's
	// work on the previous tiles (with a prefetch of the next tile's rows).
	var rsA, csA uintptr
	tileStep := kp * 16
	if j.transA {
		rsA, csA, tileStep = packABF16(true, j.a, j.lda, i0, mb, j.pc, j.kb, ap)
	} else {
		rsA, csA = uintptr(kp)*4, 4
	}
	fn := j.kern.fn
	ldcB := uintptr(j.ldc) * 4
	for p := p0; p < p1; p++ {
		nr := j.nr
		col := j.jc + p*nr
		cols := min(nr, j.jc+j.nb-col)
		bpan := unsafe.Pointer(&j.bp[p*kp*nr])
		for t := 0; t < tiles; t++ {
			row := i0 + t*16
			rows := min(16, i0+mb-row)
			var apan unsafe.Pointer
			switch {
			case j.apairs != nil && rows == 16:
				// converted A, read in place
				apan = unsafe.Pointer(&j.apairs[row*j.ldap+j.pc/2])
				rsA = uintptr(j.ldap) * 4
			case j.apairs != nil:
				// a partial tile of converted A: its rows, zero-padded
				// to 16, into the scratch
				if p == p0 {
					pan := ap[t*tileStep : (t+1)*tileStep]
					for r := 0; r < rows; r++ {
						copy(pan[r*kp:(r+1)*kp], j.apairs[(row+r)*j.ldap+j.pc/2:])
					}
					clear(pan[rows*kp:])
				}
				apan = unsafe.Pointer(&ap[t*tileStep])
				rsA = uintptr(kp) * 4
			default:
				if p == p0 && !j.transA {
					packATileBF16(j.a, j.lda, i0, mb, j.pc, j.kb, t, ap)
				}
				apan = unsafe.Pointer(&ap[t*tileStep])
			}
			if rows == 16 && cols == nr {
				fn(kp, apan, rsA, csA, bpan, unsafe.Pointer(&j.c[row*j.ldc+col]), ldcB, j.alpha, j.beta)
				continue
			}
			// Partial tile: the same kernel on a scratch copy of C's tile.
			tl := s.tile[:]
			if j.beta != 0 {
				for r := 0; r < rows; r++ {
					copy(tl[r*16:r*16+cols], j.c[(row+r)*j.ldc+col:])
				}
			}
			fn(kp, apan, rsA, csA, bpan, unsafe.Pointer(&tl[0]), 64, j.alpha, j.beta)
			for r := 0; r < rows; r++ {
				copy(j.c[(row+r)*j.ldc+col:(row+r)*j.ldc+col+cols], tl[r*16:r*16+cols])
			}
		}
	}
}

// bf16Set is a pair of bfloat16 kernels: wide (16×16) and, for n <= 8,
// narrow (16×8).
type bf16Set struct {
	name         string
	wide, narrow *bf16Kernel
}

func (s *bf16Set) pick(n int) *bf16Kernel {
	if n <= s.narrow.nr {
		return s.narrow
	}
	return s.wide
}

// bf16Go is the portable bfloat16 kernel set: an exact emulation of the
// assembly kernels' arithmetic (dpbf16 per pair, then the fused
// write-back), slow, for the tests and for checking the assembly against.
var bf16Go = &bf16Set{name: "go-bf16",
	wide:   &bf16Kernel{name: "go-bf16-16x16", mr: 16, nr: 16, fn: bf16KernGo16x16},
	narrow: &bf16Kernel{name: "go-bf16-16x8", mr: 16, nr: 8, fn: bf16KernGo16x8}}

func bf16KernGo16x16(kp int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	bf16KernGo(16, kp, a, rsA, csA, b, c, ldc, alpha, beta)
}

func bf16KernGo16x8(kp int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	bf16KernGo(8, kp, a, rsA, csA, b, c, ldc, alpha, beta)
}

// bf16KernGo is the 16×nr emulation kernel (nr 16 or 8): B panels of nr
// uint32 pairs per k pair.
func bf16KernGo(nr, kp int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc uintptr, alpha, beta float32) {
	var acc [16][16]float32
	for q := 0; q < kp; q++ {
		bq := unsafe.Slice((*uint32)(unsafe.Add(b, q*nr*4)), nr)
		for i := range acc {
			ai := *(*uint32)(unsafe.Add(a, uintptr(i)*rsA+uintptr(q)*csA))
			row := acc[i][:nr]
			for jj := range row {
				row[jj] = dpbf16(row[jj], bq[jj], ai)
			}
		}
	}
	for i := range acc {
		bf16WriteRow(acc[i][:nr], unsafe.Add(c, uintptr(i)*ldc), alpha, beta)
	}
}

// bf16WriteRow stores C[j] = alpha*acc[j] (beta == 0, C not read) or
// fma(beta, C[j], alpha*acc[j]), as the assembly kernels' write-back.
func bf16WriteRow(acc []float32, c unsafe.Pointer, alpha, beta float32) {
	ci := unsafe.Slice((*float32)(c), len(acc))
	for jj, v := range acc {
		if beta == 0 {
			ci[jj] = alpha * v
		} else {
			ci[jj] = fma32(beta, ci[jj], alpha*v)
		}
	}
}

// packBBF16All packs the row-major k×n b (leading dimension ldb) for
// SgemmPacked in BF16: its k blocks one after the other, each as
// packBBF16 lays it out, in dst's bits.
func packBBF16All(set *bf16Set, dst, b []float32, ldb, k, n int) PackedB {
	kc := bf16KBlock(k)
	nr := set.pick(n).nr
	size := bf16PackedSize(k, n, kc, nr)
	pairs := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[0])), size)
	npan := (n + nr - 1) / nr
	for pc := 0; pc < k; pc += kc {
		packBBF16(false, b, ldb, pc, min(kc, k-pc), 0, n, 0, npan, nr, pairs[(pc/2)*npan*nr:])
	}
	return PackedB{k: k, n: n, kc: kc, data: dst[:size], bf16: pairs, bk: set}
}

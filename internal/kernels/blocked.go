package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The tuned SGEMM is a Goto/BLIS-style blocked algorithm:
//
//	for jc over n in steps of nc                    (packed B block fits L3)
//	  for pc over k in steps of kc                  (C += A[:,pc:]·B[pc:,:])
//	    pack B[pc:pc+kc, jc:jc+nc] into nr-wide panels, zero-padded
//	    in parallel, for each item (an mc-row block × a group of B panels):
//	      pack A[ic:ic+mc, pc:pc+kc] into mr-tall panels (or read A in place)
//	      for each B panel, for each A panel: micro-kernel on an mr×nr tile
//
// Transposed operands are handled by the packing (and by the strides the
// micro-kernel reads A with), never by transposed copies. alpha and beta are
// applied at the write-back of the first k block; later k blocks accumulate
// with beta = 1. Each element of C is computed by exactly one item and its
// k-sum is split at the same kc boundaries whatever the thread count, so the
// result is bit-identical for any number of threads.
//
// Variants for the narrow shapes of channels-last convolutions:
//   - when an item has at most directAPanels B panels, A is read in place
//     (packing it would cost more than the few kernel passes it speeds up);
//   - when all of C is that narrow, each item runs its row block through all
//     k blocks with its own copy of the B blocks (no barrier per k block);
//   - n <= 4 with a row-major A goes to the dot-product kernel (dot.go);
//   - a small m×n with a long k (weight gradients) is cut into fixed k slices
//     summed in a fixed order (ksplit.go).

// kernelPair is the micro-kernel set in use: narrow for n <= 8, wide for
// larger n (AVX-512 CPUs: the 12×16, else the AVX2 6×16), wider (when set:
// AVX-512) for n > 16, and dot for n <= 4 with a
// row-major (not transposed) A. pack6, when set, transposes 6-row blocks of a
// row-major A into packed panels (see pack6AVX2) and packT packs full panels
// of a transposed A (see packTransAVX2); without them packing is done in Go.
type kernelPair struct {
	wide, narrow, wider *microKernel
	dot                 *dotKernel
	pack6               func(dst, src unsafe.Pointer, lda uintptr, blocks int, ds uintptr)
	packT               func(dst, src unsafe.Pointer, lda uintptr, kb, npan, mr int)
	name                string
}

// kernelSet is chosen at start-up (kernel_amd64.go replaces it when the CPU
// has AVX2 and FMA).
var kernelSet = kernelPair{wide: goWide, narrow: goNarrow, dot: goDot, name: "go"}

// KernelName names the micro-kernel set Sgemm runs on this CPU: "avx512+avx2"
// (AVX-512F CPUs: AVX-512 for n > 8, AVX2 below; FESS_AVX512=0 in the
// environment forces "avx2+fma", see useAVX512), "avx2+fma" (AVX2+FMA CPUs
// without AVX-512F) or "go" (portable).
func KernelName() string { return kernelSet.name }

var threadSetting atomic.Int32

// SetThreads sets the number of goroutines Sgemm spreads one call over; n <= 0
// means runtime.GOMAXPROCS(0). Results do not depend on it.
func SetThreads(n int) {
	if n < 0 {
		n = 0
	}
	threadSetting.Store(int32(n))
}

// Threads reports the number of goroutines Sgemm uses per call.
func Threads() int {
	if n := int(threadSetting.Load()); n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// Blocking parameters. kc keeps one packed B panel (kc×nr floats, at most
// 16 KiB for the AVX2 kernels) in L1; mc keeps a packed A block (mc×kc) in half of a 512 KiB L2; nc keeps the
// packed B block in L3.
var ncMax = 4096 // a variable so tests can force several jc blocks

const (
	// parallelFlops is the work (2·m·n·k) below which one goroutine is used.
	parallelFlops = 1 << 21
)

// blockSizes returns kc and mc limits for a kernel: kc = 256 (a 16 KiB B
// panel for nr = 16; for nr = 8 it measured at least as fast as 512 and keeps
// a 216-row weight gradient in one row block), mc so that the A block (mc×kc)
// fills about half of the 512 KiB L2.
func blockSizes(kern *microKernel) (kcMax, mcMax int) {
	kcMax = 256
	mcMax = (256 << 10) / (4 * kcMax)
	mcMax -= mcMax % kern.mr
	return kcMax, mcMax
}

// directAPanels: when an item covers at most this many B panels, A is read
// in place by the micro-kernel instead of being packed (packing would cost
// more than it saves when each A panel is used this few times).
var directAPanels = 2

// directTransA allows reading a transposed A in place too (each p then reads
// mr consecutive floats of one stored row). Measured faster than packing it,
// which reads rows sequentially but costs the Go copy loop; a variable so the
// tests cover both paths.
var directTransA = true

// directOverread lets the micro-kernel read a partial panel of a
// row-major A in place when the mr−rows rows after it lie inside a: they
// feed only the scratch tile's rows that are dropped (each row of the
// tile depends on its own row of A alone). The Winograd blocks (tiles that
// are not a multiple of mr) and the up-convolution rows (16 or 8 voxels
// against mr = 12) would otherwise pack one panel per call. A variable so
// the tests compare it with packing, bit for bit.
var directOverread = true

// SetOverread switches directOverread, for the A/B benchmarks; the results
// are the same bits either way.
func SetOverread(on bool) { directOverread = on }

type gemmScratch struct {
	ap   []float32
	bp   []float32 // private packed B (narrow C)
	tile [maxMR * maxNR]float32
}

var scratchPool = sync.Pool{New: func() any { return new(gemmScratch) }}

func sgemmTuned(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmBlocked(kernelSet, Threads(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmArgs carries one call's operands through the workers.
type gemmArgs struct {
	noPrefetch     bool // A is cache-resident: no prefetch hints (pfs = 0)
	kern           *microKernel
	pack6          func(dst, src unsafe.Pointer, lda uintptr, blocks int, ds uintptr)
	packT          func(dst, src unsafe.Pointer, lda uintptr, kb, npan, mr int)
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a              []float32
	lda            int
	c              []float32
	ldc            int
}

// gemmJob is one call's state, shared by its workers; pooled so that a call
// allocates nothing once warm.
type gemmJob struct {
	gemmArgs
	bp                   []float32 // packed B block
	pc, kb, jc, nb, npan int
	mc, ngroups, items   int
	beta                 float32 // beta for the current k block
	// Private mode (narrow C): items loop over k blocks themselves.
	private bool
	b       []float32
	ldb     int
	kc      int
	beta0   float32
	next    atomic.Int64
	wg      sync.WaitGroup
}

var jobPool = sync.Pool{New: func() any { return new(gemmJob) }}

func sgemmBlocked(kp kernelPair, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if s := kSlices(m, n, k); s > 1 {
		sgemmKSplit(kp, threads, s, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmUnsliced(kp, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmUnsliced is sgemmBlocked without the k slicing, for checked,
// non-empty calls (a k slice itself is computed by it, so slices never nest).
func sgemmUnsliced(kp kernelPair, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if kp.dot != nil && !transA && n <= dotMaxN && k >= dotMinK {
		sgemmDot(kp.dot, threads, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	kern := kernelFor(kp, n)
	j := jobPool.Get().(*gemmJob)
	j.gemmArgs = gemmArgs{kern: kern, pack6: kp.pack6, packT: kp.packT, transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, a: a, lda: lda, c: c, ldc: ldc}
	mr, nr := kern.mr, kern.nr
	kcMax, mcMax := blockSizes(kern)
	// Split k into equal blocks no larger than kcMax (a function of k only).
	nkb := (k + kcMax - 1) / kcMax
	kc := (k + nkb - 1) / nkb
	nc := min(ncMax, n)
	if 2*float64(m)*float64(n)*float64(k) < parallelFlops {
		threads = 1
	}
	need := kc * ((nc + nr - 1) / nr * nr)
	if cap(j.bp) < need {
		j.bp = make([]float32, need)
	}
	j.bp = j.bp[:need]
	// Row blocks: equal multiples of mr no larger than mcMax, and a multiple
	// of the thread count when that keeps them at least 8 tiles tall, so the
	// threads get equal shares. (Row blocking never changes the arithmetic
	// of an element, so this does not affect the results.)
	mblocks := (m + mcMax - 1) / mcMax
	if threads > 1 && mblocks%threads != 0 {
		if bal := (mblocks + threads - 1) / threads * threads; m >= bal*8*mr {
			mblocks = bal
		}
	}
	mc := (m + mblocks - 1) / mblocks
	mc = (mc + mr - 1) / mr * mr
	mblocks = (m + mc - 1) / mc
	j.mc = mc
	if npan := (n + nr - 1) / nr; n <= nc && npan <= directAPanels && (mblocks >= threads || npan == 1) {
		// Narrow C: each item runs its row block through every k block,
		// packing its own copy of the (small) B blocks, so the threads
		// never wait for each other between k blocks. Same arithmetic as
		// the shared path.
		j.private, j.b, j.ldb, j.transB, j.kc, j.beta0 = true, b, ldb, transB, kc, beta
		j.npan, j.nb, j.jc, j.ngroups, j.items = npan, n, 0, 1, mblocks
		j.run(threads)
		j.gemmArgs, j.b, j.private = gemmArgs{}, nil, false
		jobPool.Put(j)
		return
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		npan := (nb + nr - 1) / nr
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			j.beta = beta
			if pc > 0 {
				j.beta = 1
			}
			packB(transB, b, ldb, pc, kb, jc, nb, nr, j.bp)
			// Work items: mc-row blocks × groups of B panels. Split the
			// panels only when there are too few row blocks to share.
			ngroups := 1
			if threads > 1 && mblocks < 2*threads {
				ngroups = min(npan, 2*threads)
			}
			j.pc, j.kb, j.jc, j.nb, j.npan = pc, kb, jc, nb, npan
			j.ngroups, j.items = ngroups, mblocks*ngroups
			j.run(threads)
		}
	}
	j.gemmArgs = gemmArgs{} // drop references to the caller's slices
	jobPool.Put(j)
}

// run shares the job's items among min(threads, items) goroutines, the
// caller's included, and returns when all are done.
func (j *gemmJob) run(threads int) {
	j.next.Store(0)
	runParallel(j, min(threads, j.items), &j.wg)
}

// worker takes items until none are left. Which worker runs an item does not
// change its result.
func (j *gemmJob) worker(done bool) {
	s := scratchPool.Get().(*gemmScratch)
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			break
		}
		ib, ig := it/j.ngroups, it%j.ngroups
		i0 := ib * j.mc
		if j.private {
			nr := j.kern.nr
			for pc := 0; pc < j.k; pc += j.kc {
				kb := min(j.kc, j.k-pc)
				beta := j.beta0
				if pc > 0 {
					beta = 1
				}
				var bp []float32
				if !j.transB && j.n == nr && j.ldb == nr {
					// B's rows already are one packed panel.
					bp = j.b[pc*nr : (pc+kb)*nr]
				} else {
					bp = s.growB(kb * j.npan * nr)
					packB(j.transB, j.b, j.ldb, pc, kb, 0, j.n, nr, bp)
				}
				j.block(s, i0, min(j.mc, j.m-i0), pc, kb, 0, j.n, 0, j.npan, bp, beta)
			}
			continue
		}
		p0 := ig * j.npan / j.ngroups
		p1 := (ig + 1) * j.npan / j.ngroups
		j.block(s, i0, min(j.mc, j.m-i0), j.pc, j.kb, j.jc, j.nb, p0, p1, j.bp, j.beta)
	}
	scratchPool.Put(s)
	if done {
		j.wg.Done()
	}
}

// block runs the micro-kernel over rows [i0, i0+mb) of C and B panels
// [p0, p1) of the packed block bp (columns jc+p*nr ...), for k range
// [pc, pc+kb).
func (g *gemmArgs) block(s *gemmScratch, i0, mb, pc, kb, jc, nb, p0, p1 int, bp []float32, beta float32) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	mpan := (mb + mr - 1) / mr
	direct := p1-p0 <= directAPanels && (!g.transA || directTransA)
	// Packed A: mpan panels of kb×mr floats; in direct mode only the last,
	// partial panel (if any) is packed.
	var ap []float32
	// overread: the last, partial panel is read in place too when what the
	// kernel reads past its rows lies inside a (they feed only rows of the
	// scratch tile that are dropped): for a transposed A the mr−rows floats
	// past each of its k rows (small weight gradients, m = Cin < mr, would
	// otherwise pack A on every call), for a row-major A the mr−rows rows
	// after it (directOverread).
	overread := false
	if direct && mb%mr != 0 {
		last := i0 + (mpan-1)*mr
		if g.transA && directTransA {
			overread = (pc+kb-1)*g.lda+last+mr <= len(g.a)
		} else if !g.transA && directOverread {
			overread = (last+mr-1)*g.lda+pc+kb <= len(g.a)
		}
	}
	if direct {
		if mb%mr != 0 && !overread {
			ap = s.grow(kb * mr)
			g.packA(ap, i0+(mpan-1)*mr, mb%mr, pc, kb, mr)
		}
	} else if g.transA {
		ap = s.grow(mpan * kb * mr)
		g.packATrans(ap, i0, mb, pc, kb, mr)
	} else {
		ap = s.grow(mpan * kb * mr)
		for q := 0; q < mpan; q++ {
			r := min(mr, mb-q*mr)
			g.packA(ap[q*kb*mr:(q+1)*kb*mr], i0+q*mr, r, pc, kb, mr)
		}
	}
	ldcB := uintptr(g.ldc) * 4
	full := mb / mr // panels with all mr rows
	for p := p0; p < p1; p++ {
		j := jc + p*nr
		cols := min(nr, jc+nb-j)
		bpan := unsafe.Pointer(&bp[p*kb*nr])
		for q := 0; q < mpan; q++ {
			i := i0 + q*mr
			rows := min(mr, i0+mb-i)
			var aptr unsafe.Pointer
			var rs, cs, pf, pfs, astep uintptr
			switch {
			case direct && rows == mr && !g.transA:
				// Rows stream from memory: prefetch the next panel's rows.
				rs, cs = uintptr(g.lda)*4, 4
				aptr, pf, pfs = unsafe.Pointer(&g.a[i*g.lda+pc]), uintptr(mr)*rs, rs
				astep = uintptr(mr) * rs
			case direct && rows == mr:
				// Each p is a new row of the stored A: prefetch 32 rows ahead.
				rs, cs = 4, uintptr(g.lda)*4
				aptr, pf, pfs = unsafe.Pointer(&g.a[pc*g.lda+i]), 32*cs, cs
				astep = uintptr(mr) * 4
			case direct && overread && !g.transA:
				rs, cs = uintptr(g.lda)*4, 4
				aptr, pf, pfs = unsafe.Pointer(&g.a[i*g.lda+pc]), uintptr(mr)*rs, rs
			case direct && overread:
				rs, cs = 4, uintptr(g.lda)*4
				aptr, pf, pfs = unsafe.Pointer(&g.a[pc*g.lda+i]), 32*cs, cs
			case direct:
				aptr, rs, cs = unsafe.Pointer(&ap[0]), 4, uintptr(mr)*4
				pf, pfs = 16*cs, 64
			default:
				aptr, rs, cs = unsafe.Pointer(&ap[q*kb*mr]), 4, uintptr(mr)*4
				pf, pfs = 16*cs, 64
				astep = uintptr(kb*mr) * 4
			}
			if g.noPrefetch {
				pfs = 0
			}
			if rows == mr && cols == nr {
				// All the remaining full panels in one call.
				tiles := full - q
				kern.fn(kb, aptr, rs, cs, bpan, unsafe.Pointer(&g.c[i*g.ldc+j]), ldcB, pf, pfs, g.alpha, beta,
					tiles, astep, uintptr(mr)*ldcB)
				q += tiles - 1
				continue
			}
			// Partial tile: compute into scratch, then merge the valid part.
			t := s.tile[:mr*nr]
			kern.fn(kb, aptr, rs, cs, bpan, unsafe.Pointer(&t[0]), uintptr(nr)*4, pf, pfs, 1, 0, 1, 0, 0)
			for r := 0; r < rows; r++ {
				cr := g.c[(i+r)*g.ldc+j : (i+r)*g.ldc+j+cols]
				tr := t[r*nr : r*nr+cols]
				if beta == 0 {
					for x := range cr {
						cr[x] = g.alpha * tr[x]
					}
				} else {
					for x := range cr {
						cr[x] = g.alpha*tr[x] + beta*cr[x]
					}
				}
			}
		}
	}
}

func (s *gemmScratch) growB(n int) []float32 {
	if cap(s.bp) < n {
		s.bp = make([]float32, n)
	}
	return s.bp[:n]
}

func (s *gemmScratch) grow(n int) []float32 {
	if cap(s.ap) < n {
		s.ap = make([]float32, n)
	}
	return s.ap[:n]
}

// packA writes rows [i0, i0+rows) × k range [pc, pc+kb) of op(A) into dst as
// dst[p*mr+i], zero-padding rows rows..mr-1.
func (g *gemmArgs) packA(dst []float32, i0, rows, pc, kb, mr int) {
	a, lda := g.a, g.lda
	if g.transA {
		// op(A)[i][p] = a[p*lda+i]: each p is a contiguous run of rows.
		for p := 0; p < kb; p++ {
			src := a[(pc+p)*lda+i0 : (pc+p)*lda+i0+rows]
			d := dst[p*mr : p*mr+mr]
			for t := range d {
				d[t] = 0
				if t < len(src) {
					d[t] = src[t]
				}
			}
		}
		return
	}
	p0 := 0
	if g.pack6 != nil && rows == mr && kb >= 8 {
		// Whole 8-column blocks in assembly, six rows at a time.
		for h := 0; h < mr; h += 6 {
			g.pack6(unsafe.Pointer(&dst[h]), unsafe.Pointer(&a[(i0+h)*lda+pc]), uintptr(lda)*4, kb/8, uintptr(mr)*4)
		}
		p0 = kb &^ 7
	}
	for i := 0; i < rows; i++ {
		src := a[(i0+i)*lda+pc : (i0+i)*lda+pc+kb]
		for p := p0; p < kb; p++ {
			dst[p*mr+i] = src[p]
		}
	}
	for i := rows; i < mr; i++ {
		for p := 0; p < kb; p++ {
			dst[p*mr+i] = 0
		}
	}
}

// packATrans packs rows [i0, i0+mb) × k range [pc, pc+kb) of op(A) = Aᵀ
// into mr-row panels (as packA does, zero-padded), reading each row of the
// stored A once, sequentially.
func (g *gemmArgs) packATrans(dst []float32, i0, mb, pc, kb, mr int) {
	mpan := (mb + mr - 1) / mr
	if g.packT != nil && mb >= mr && (mr == 6 || mr == 12) {
		full := mb / mr
		g.packT(unsafe.Pointer(&dst[0]), unsafe.Pointer(&g.a[pc*g.lda+i0]), uintptr(g.lda)*4, kb, full, mr)
		if full == mpan {
			return
		}
		// The partial last panel, in Go below.
		dst = dst[full*kb*mr:]
		i0 += full * mr
		mb -= full * mr
		mpan = 1
	}
	for p := 0; p < kb; p++ {
		src := g.a[(pc+p)*g.lda+i0 : (pc+p)*g.lda+i0+mb]
		for q := 0; q < mpan; q++ {
			d := dst[q*kb*mr+p*mr : q*kb*mr+p*mr+mr]
			x := src[q*mr:]
			if len(x) >= mr {
				for t := range d {
					d[t] = x[t]
				}
				continue
			}
			for t := range d {
				d[t] = 0
				if t < len(x) {
					d[t] = x[t]
				}
			}
		}
	}
}

// packB writes op(B)[pc:pc+kb, jc:jc+nb] into dst as nr-wide panels:
// panel q holds dst[q*kb*nr + p*nr + j] = op(B)[pc+p][jc+q*nr+j], zero-padded.
func packB(transB bool, b []float32, ldb, pc, kb, jc, nb, nr int, dst []float32) {
	if !transB {
		packBRows(b, ldb, pc, kb, jc, nb, nr, dst)
		return
	}
	for q := 0; q*nr < nb; q++ {
		j0 := jc + q*nr
		cols := min(nr, jc+nb-j0)
		pan := dst[q*kb*nr : (q+1)*kb*nr]
		if !transB {
			continue // below, row by row
		}
		// op(B)[p][j] = b[j*ldb+p].
		for j := 0; j < cols; j++ {
			src := b[(j0+j)*ldb+pc : (j0+j)*ldb+pc+kb]
			for p, v := range src {
				pan[p*nr+j] = v
			}
		}
		for j := cols; j < nr; j++ {
			for p := 0; p < kb; p++ {
				pan[p*nr+j] = 0
			}
		}
	}
}

func packBRows(b []float32, ldb, pc, kb, jc, nb, nr int, dst []float32) {
	if nb < nr {
		// one partial panel (a B of few columns, as the gradient of a
		// one-channel output): element by element, without a copy and a
		// clear call per row
		for p := 0; p < kb; p++ {
			row := b[(pc+p)*ldb+jc:][:nb]
			d := dst[p*nr : p*nr+nr]
			j := copy(d[:nb], row)
			for ; j < len(d); j++ {
				d[j] = 0
			}
		}
		return
	}
	// Row by row, so that B is read sequentially; each row is scattered over
	// the panels.
	for p := 0; p < kb; p++ {
		row := b[(pc+p)*ldb+jc : (pc+p)*ldb+jc+nb]
		for q := 0; q*nr < nb; q++ {
			d := dst[q*kb*nr+p*nr : q*kb*nr+p*nr+nr]
			n := copy(d, row[q*nr:])
			clear(d[n:])
		}
	}
}

// scaleC sets C = beta*C (C = 0 when beta == 0, without reading C).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
	}
}

package kernels

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// The dot path serves C = alpha·A·op(B) + beta·C with a row-major A and a
// very narrow C (n <= dotMaxN), such as a 1×1×1 output convolution onto a few
// classes, where the 12×8 micro-kernel would leave most of its lanes idle;
// instead each C element is a dot product of an A row, read in place,
// with a row of the packed op(B)ᵀ, eight p at a time. The kernel computes
// 2×4 tiles; op(B)ᵀ (n×k, rows padded to a multiple of 8 floats and to a
// multiple of 4 rows, zero-filled) stays in L1/L2 while A streams through once.

// dotMaxN is the widest C the dot path takes, dotMinK the shortest k.
// Measured on Zen 3 (A in L3): for n = 4, k = 216 the dot path runs at twice
// the 12×8 kernel's speed; for n = 8 the two are equal, and at k = 64 the
// per-tile reduction and call overhead make it a third slower.
const (
	dotMaxN = 4
	dotMinK = 64
)

// dotKernel computes a 2×4 tile
//
//	C[i][j] = alpha * Σ_{p<k} A[i][p]·Bt[j][p] + beta * C[i][j]
//
// with A rows lda bytes apart (read only for p < k: the last k%8 under the
// mask, 8 int32 lanes with -1 in the lanes kept), Bt rows ldbt bytes apart and
// zero beyond k up to a multiple of 8, C rows ldc bytes apart; with beta == 0
// C is not read. Each lane l accumulates the terms p ≡ l (mod 8) in
// increasing p; the lanes are then summed in a fixed order.
type dotKernel struct {
	name string
	fn   func(k int, a unsafe.Pointer, lda uintptr, bt unsafe.Pointer, ldbt uintptr, c unsafe.Pointer, ldc uintptr, alpha, beta float32, mask unsafe.Pointer)
}

var goDot = &dotKernel{name: "go-dot2x4", fn: dotGo}

// maskTable[8-r:16-r] keeps the first r lanes.
var maskTable = [16]int32{-1, -1, -1, -1, -1, -1, -1, -1}

func tailMask(k int) unsafe.Pointer {
	r := k % 8
	return unsafe.Pointer(&maskTable[8-r])
}

// dotGo is the portable dot kernel, summing in the same lane order as the
// assembly one.
func dotGo(k int, a unsafe.Pointer, lda uintptr, bt unsafe.Pointer, ldbt uintptr, c unsafe.Pointer, ldc uintptr, alpha, beta float32, mask unsafe.Pointer) {
	for i := 0; i < 2; i++ {
		ar := unsafe.Slice((*float32)(unsafe.Add(a, uintptr(i)*lda)), k)
		cr := unsafe.Slice((*float32)(unsafe.Add(c, uintptr(i)*ldc)), 4)
		for j := 0; j < 4; j++ {
			br := unsafe.Slice((*float32)(unsafe.Add(bt, uintptr(j)*ldbt)), k)
			var lane [8]float32
			for p, av := range ar {
				lane[p%8] += av * br[p]
			}
			s := ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))
			if beta == 0 {
				cr[j] = alpha * s
			} else {
				cr[j] = alpha*s + beta*cr[j]
			}
		}
	}
}

// dotRows is the number of C rows per work item of the dot path.
const dotRows = 256

type dotJob struct {
	kern          *dotKernel
	m, n, k, kpad int
	alpha, beta   float32
	a             []float32
	lda           int
	bt            []float32
	c             []float32
	ldc           int
	items         int
	next          atomic.Int64
	wg            sync.WaitGroup
}

var dotPool = sync.Pool{New: func() any { return new(dotJob) }}

func sgemmDot(kern *dotKernel, threads int, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	j := dotPool.Get().(*dotJob)
	kpad := (k + 7) &^ 7
	npad := (n + 3) &^ 3
	need := npad * kpad
	if cap(j.bt) < need {
		j.bt = make([]float32, need)
	}
	bt := j.bt[:need]
	clear(bt)
	for jj := 0; jj < n; jj++ {
		row := bt[jj*kpad : jj*kpad+k]
		if transB {
			copy(row, b[jj*ldb:jj*ldb+k])
		} else {
			for p := range row {
				row[p] = b[p*ldb+jj]
			}
		}
	}
	*j = dotJob{kern: kern, m: m, n: n, k: k, kpad: kpad, alpha: alpha, beta: beta,
		a: a, lda: lda, bt: j.bt, c: c, ldc: ldc, items: (m + dotRows - 1) / dotRows}
	if 2*float64(m)*float64(n)*float64(k) < parallelFlops {
		threads = 1
	}
	runParallel(j, min(threads, j.items), &j.wg)
	bt = j.bt
	*j = dotJob{bt: bt}
	dotPool.Put(j)
}

func (j *dotJob) worker(done bool) {
	s := scratchPool.Get().(*gemmScratch)
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			break
		}
		i0 := it * dotRows
		j.rows(s, i0, min(i0+dotRows, j.m))
	}
	scratchPool.Put(s)
	if done {
		j.wg.Done()
	}
}

// rows computes C rows [i0, i1).
func (j *dotJob) rows(s *gemmScratch, i0, i1 int) {
	k, kpad := j.k, j.kpad
	mask := tailMask(k)
	ldbt := uintptr(kpad) * 4
	ldcB := uintptr(j.ldc) * 4
	t := s.tile[:8]
	for i := i0; i < i1; i += 2 {
		rows := min(2, i1-i)
		aptr := unsafe.Pointer(&j.a[i*j.lda])
		lda := uintptr(j.lda) * 4
		if rows < 2 {
			// Odd last row: duplicate it as the second row (its result is
			// dropped), so the kernel reads only A's real rows.
			lda = 0
		}
		for jc := 0; jc < j.n; jc += 4 {
			cols := min(4, j.n-jc)
			btp := unsafe.Pointer(&j.bt[jc*kpad])
			if rows == 2 && cols == 4 {
				j.kern.fn(k, aptr, lda, btp, ldbt, unsafe.Pointer(&j.c[i*j.ldc+jc]), ldcB, j.alpha, j.beta, mask)
				continue
			}
			j.kern.fn(k, aptr, lda, btp, ldbt, unsafe.Pointer(&t[0]), 16, 1, 0, mask)
			for r := 0; r < rows; r++ {
				cr := j.c[(i+r)*j.ldc+jc : (i+r)*j.ldc+jc+cols]
				for x := range cr {
					if j.beta == 0 {
						cr[x] = j.alpha * t[r*4+x]
					} else {
						cr[x] = j.alpha*t[r*4+x] + j.beta*cr[x]
					}
				}
			}
		}
	}
}

package kernels

import (
	"sync"
	"sync/atomic"
)

// Weight-gradient GEMMs (dW = Aᵀ·dY: a small m×n result, a long k) have too
// few row blocks and B panels to keep the threads busy, and a transposed A
// read in row blocks is read in strided pieces. For them the k range is cut
// into fixed slices: slice s computes Pₛ = op(A)[:, kₛ]·op(B)[kₛ, :] into its
// own buffer (reading whole rows of the stored A), and then
//
//	C = alpha·(((P₀ + P₁) + P₂) + …) + beta·C
//
// is formed in slice order. The slices depend only on the shape (m, n, k),
// never on the thread count, so the result is still bit-identical for any
// number of threads; it differs from the unsliced path only by rounding.

// kSlice is the shortest slice; k must be at least twice it for slicing.
// It is short enough that a weight gradient over one 4096-voxel chunk still
// gets two slices (two threads). At most maxKSlices slices are made.
var kSlice = 2048

const maxKSlices = 16

// kSplitMaxFloats bounds the partial-product buffers (m·n per slice).
const kSplitMaxFloats = 1 << 20

// kSlices returns the number of k slices for this shape, or 1 for none.
func kSlices(m, n, k int) int {
	if k < 2*kSlice || m*n > kSplitMaxFloats/2 {
		return 1
	}
	return min(k/kSlice, maxKSlices, kSplitMaxFloats/(m*n))
}

// kSplitJob is one sliced call's state, pooled so that a call allocates
// nothing once warm.
type kSplitJob struct {
	kp             kernelPair
	slices         int
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b              []float32
	ldb            int
	buf            []float32 // slices × m × n partial products
	next           atomic.Int64
	wg             sync.WaitGroup
}

var kSplitPool = sync.Pool{New: func() any { return new(kSplitJob) }}

func sgemmKSplit(kp kernelPair, threads, slices int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	j := kSplitPool.Get().(*kSplitJob)
	if cap(j.buf) < slices*m*n {
		j.buf = make([]float32, slices*m*n)
	}
	buf := j.buf[:slices*m*n]
	j.kp, j.slices, j.transA, j.transB, j.m, j.n, j.k = kp, slices, transA, transB, m, n, k
	j.a, j.lda, j.b, j.ldb = a, lda, b, ldb
	j.next.Store(0)
	runParallel(j, min(threads, slices), &j.wg)
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		for jj := range ci {
			sum := buf[i*n+jj]
			for s := 1; s < slices; s++ {
				sum += buf[s*m*n+i*n+jj]
			}
			if beta == 0 {
				ci[jj] = alpha * sum
			} else {
				ci[jj] = alpha*sum + beta*ci[jj]
			}
		}
	}
	j.a, j.b = nil, nil
	kSplitPool.Put(j)
}

// worker computes slices until none are left.
func (j *kSplitJob) worker(done bool) {
	m, n, k := j.m, j.n, j.k
	for {
		s := int(j.next.Add(1) - 1)
		if s >= j.slices {
			break
		}
		k0, k1 := s*k/j.slices, (s+1)*k/j.slices
		// Offsets of column k0 of op(A) and row k0 of op(B).
		var as, bs []float32
		if j.transA {
			as = j.a[k0*j.lda:]
		} else {
			as = j.a[k0:]
		}
		if j.transB {
			bs = j.b[k0:]
		} else {
			bs = j.b[k0*j.ldb:]
		}
		sgemmUnsliced(j.kp, 1, j.transA, j.transB, m, n, k1-k0, 1, as, j.lda, bs, j.ldb, 0, j.buf[s*m*n:(s+1)*m*n], n)
	}
	if done {
		j.wg.Done()
	}
}

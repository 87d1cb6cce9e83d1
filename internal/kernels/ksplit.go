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

// kSlice is the slice length; k must be at least twice it for slicing.
var kSlice = 16384

// kSplitMaxFloats bounds the partial-product buffers (m·n per slice).
const kSplitMaxFloats = 1 << 20

// kSlices returns the number of k slices for this shape, or 1 for none.
func kSlices(m, n, k int) int {
	if k < 2*kSlice || m*n > kSplitMaxFloats/2 {
		return 1
	}
	return min((k+kSlice-1)/kSlice, kSplitMaxFloats/(m*n))
}

var partialPool = sync.Pool{New: func() any { return new([]float32) }}

func sgemmKSplit(kp kernelPair, threads, slices int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	bufp := partialPool.Get().(*[]float32)
	if cap(*bufp) < slices*m*n {
		*bufp = make([]float32, slices*m*n)
	}
	buf := (*bufp)[:slices*m*n]
	var next atomic.Int64
	work := func() {
		for {
			s := int(next.Add(1) - 1)
			if s >= slices {
				return
			}
			k0, k1 := s*k/slices, (s+1)*k/slices
			// Offsets of column k0 of op(A) and row k0 of op(B).
			var as, bs []float32
			if transA {
				as = a[k0*lda:]
			} else {
				as = a[k0:]
			}
			if transB {
				bs = b[k0:]
			} else {
				bs = b[k0*ldb:]
			}
			sgemmBlocked(kp, 1, transA, transB, m, n, k1-k0, 1, as, lda, bs, ldb, 0, buf[s*m*n:(s+1)*m*n], n)
		}
	}
	nt := min(threads, slices)
	var wg sync.WaitGroup
	wg.Add(nt - 1)
	for w := 1; w < nt; w++ {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		for j := range ci {
			sum := buf[i*n+j]
			for s := 1; s < slices; s++ {
				sum += buf[s*m*n+i*n+j]
			}
			if beta == 0 {
				ci[j] = alpha * sum
			} else {
				ci[j] = alpha*sum + beta*ci[j]
			}
		}
	}
	partialPool.Put(bufp)
}

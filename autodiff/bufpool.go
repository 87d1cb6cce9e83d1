package autodiff

import (
	"sync"

	"github.com/fess-seg/fess/tensor"
)

// The buffer pool behind arena tapes (NewArenaTape): free float32 slices
// kept by exact length, handed out zeroed. A training step asks for the
// same lengths every time, so after the first step every request is met
// from the pool and the Go heap stops growing and churning (no garbage
// collection work, no fresh pages to fault in). The pool keeps what it is
// given until FreePool.
var bufPool = struct {
	sync.Mutex
	free map[int][][]float32
}{free: map[int][][]float32{}}

// getBuf returns n zeros, reusing a pooled slice of that length if any.
func getBuf(n int) []float32 {
	b, reused := takeBuf(n)
	if reused {
		clear(b)
	}
	return b
}

// getBufDirty is getBuf without the zeroing of a reused slice (for callers
// that overwrite every element).
func getBufDirty(n int) []float32 {
	b, _ := takeBuf(n)
	return b
}

func takeBuf(n int) ([]float32, bool) {
	bufPool.Lock()
	l := bufPool.free[n]
	if k := len(l); k > 0 {
		b := l[k-1]
		l[k-1] = nil
		bufPool.free[n] = l[:k-1]
		bufPool.Unlock()
		return b, true
	}
	bufPool.Unlock()
	return make([]float32, n), false
}

// putBuf gives b back to the pool; b must not be used afterwards.
func putBuf(b []float32) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	bufPool.Lock()
	bufPool.free[len(b)] = append(bufPool.free[len(b)], b)
	bufPool.Unlock()
}

// FreePool drops every pooled buffer (the garbage collector reclaims them).
func FreePool() {
	bufPool.Lock()
	bufPool.free = map[int][][]float32{}
	bufPool.Unlock()
}

// addParts adds each non-nil buffer of parts to dst, in order (so every
// element's sum has a fixed order), and gives the buffers back to the pool:
// the reduction of per-worker partial results.
func addParts(dst []float32, parts [][]float32) {
	for _, p := range parts {
		if p == nil {
			continue
		}
		tensor.Parallel(len(dst), 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				dst[i] += p[i]
			}
		})
		putBuf(p)
	}
}

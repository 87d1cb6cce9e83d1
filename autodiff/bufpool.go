package autodiff

import (
	"sync"

	"github.com/fess-seg/fess/tensor"
)

// The buffer pool behind arena tapes (NewArenaTape): free float32 slices
// kept by capacity, handed out zeroed (best fit, see takeBuf). A training step asks for the
// same lengths every time, so after the first step every request is met
// from the pool and the Go heap stops growing and churning (no garbage
// collection work, no fresh pages to fault in). The pool keeps what it is
// given until FreePool.
var bufPool = struct {
	sync.Mutex
	free map[int][][]float32
	// floats handed out and not yet given back (live), their high-water
	// mark since the last ResetPoolPeak, and floats the pool has allocated
	// (live + free; what it holds on to until FreePool).
	live, peak, total int64
}{free: map[int][][]float32{}}

// PoolStats is the buffer pool's accounting, in bytes.
type PoolStats struct {
	Live  int64 // handed out by the pool and not yet given back
	Peak  int64 // Live's high-water mark since the last ResetPoolPeak
	Total int64 // allocated by the pool: Live + the free buffers it keeps
}

// ReadPoolStats returns the pool's current accounting.
func ReadPoolStats() PoolStats {
	bufPool.Lock()
	defer bufPool.Unlock()
	return PoolStats{Live: 4 * bufPool.live, Peak: 4 * bufPool.peak, Total: 4 * bufPool.total}
}

// ResetPoolPeak restarts the high-water mark from the current live bytes.
func ResetPoolPeak() {
	bufPool.Lock()
	bufPool.peak = bufPool.live
	bufPool.Unlock()
}

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

// takeBuf returns a free buffer of capacity n if there is one, else the
// smallest free one of capacity up to 2n (best fit: a step asks for a few
// dozen distinct sizes, and a buffer kept for one size serves the others
// instead of the pool allocating a new one beside it), resliced to n; else a
// new one. Which buffer is handed out never changes results (getBuf zeroes
// it, getBufDirty's callers overwrite it).
func takeBuf(n int) ([]float32, bool) {
	bufPool.Lock()
	defer bufPool.Unlock()
	key := n
	if len(bufPool.free[n]) == 0 {
		key = -1
		for c, l := range bufPool.free {
			if len(l) > 0 && c > n && c <= 2*n && (key < 0 || c < key) {
				key = c
			}
		}
	}
	if key < 0 {
		bufPool.live += int64(n)
		bufPool.peak = max(bufPool.peak, bufPool.live)
		bufPool.total += int64(n)
		return make([]float32, n), false
	}
	l := bufPool.free[key]
	k := len(l)
	b := l[k-1]
	l[k-1] = nil
	bufPool.free[key] = l[:k-1]
	bufPool.live += int64(key)
	bufPool.peak = max(bufPool.peak, bufPool.live)
	return b[:n], true
}

// putBuf gives b back to the pool; b must not be used afterwards.
func putBuf(b []float32) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	bufPool.Lock()
	bufPool.live -= int64(len(b))
	bufPool.free[len(b)] = append(bufPool.free[len(b)], b)
	bufPool.Unlock()
}

// FreePool drops every pooled buffer (the garbage collector reclaims them).
func FreePool() {
	bufPool.Lock()
	for n, l := range bufPool.free {
		bufPool.total -= int64(n * len(l))
	}
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

package autodiff

import (
	"hash/maphash"
	"sync"
	"unsafe"

	"github.com/fess-seg/fess/internal/kernels"
)

// The Winograd kernel transform of a conv's weights (packed for the
// GEMMs) is kept between calls and reused while the weights' contents are
// unchanged: inference runs every window and batch through the same
// weights, and a training step's no-grad pass and gradient pass share
// theirs. The weights are identified by their storage and shape and
// checked by a 64-bit hash of their bits on every call (reading the
// weights once costs a fraction of the transform, which writes
// 64/27 or 216/27 times as many floats), so a weight changed in place, by
// an optimiser or a load, is transformed again: a stale transform is never
// used. Only forward transforms are kept (the input gradient's flipped
// ones are used once per step), within uCacheMaxBytes; when a new one
// does not fit, the cache is emptied first.

// useUCache enables the cache (a variable for the tests and the A/B
// benchmark).
var useUCache = true

// uCacheMaxBytes bounds the cached transforms; a single transform over a
// quarter of it is never cached (the reference network's 1024-channel
// bottleneck: 268 MB).
var uCacheMaxBytes = 256 << 20

type uKey struct {
	w               *float32
	n, m, cin, cout int
	bf16            bool
	kern            string // the GEMM micro-kernels the packing is for
}

type uEntry struct {
	sum    uint64
	pu     []float32
	packed []kernels.PackedB
	bytes  int
}

var uCache = struct {
	sync.Mutex
	m     map[uKey]*uEntry
	bytes int
	hits  int // for the tests
}{m: map[uKey]*uEntry{}}

var uSeed = maphash.MakeSeed()

// weightSum hashes w's bits.
func weightSum(w []float32) uint64 {
	return maphash.Bytes(uSeed, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), 4*len(w)))
}

// cachedPackedWeights is winoPackedWeights(m, np, wd, false, cin, cout)
// through the cache; release gives back a transform that was not cached.
func cachedPackedWeights(m, np int, wd []float32, cin, cout int) (packed []kernels.PackedB, release func()) {
	bytes := 4 * np * oddLines(kernels.PackBSize(cin, cout))
	if !useUCache || len(wd) == 0 || 4*bytes > uCacheMaxBytes {
		pu, p := winoPackedWeights(m, np, wd, false, cin, cout)
		return p, func() { putBuf(pu) }
	}
	key := uKey{w: &wd[0], n: len(wd), m: m, cin: cin, cout: cout, bf16: kernels.Precision() == kernels.BF16,
		kern: kernels.KernelName()}
	sum := weightSum(wd)
	uCache.Lock()
	if e := uCache.m[key]; e != nil && e.sum == sum {
		uCache.hits++
		uCache.Unlock()
		return e.packed, func() {}
	}
	uCache.Unlock()
	pu, p := winoPackedWeights(m, np, wd, false, cin, cout)
	uCache.Lock()
	defer uCache.Unlock()
	if e := uCache.m[key]; e != nil { // stale: the weights changed
		putBuf(e.pu)
		uCache.bytes -= e.bytes
		delete(uCache.m, key)
	}
	if uCache.bytes+bytes > uCacheMaxBytes {
		flushUCacheLocked()
	}
	uCache.m[key] = &uEntry{sum: sum, pu: pu, packed: p, bytes: bytes}
	uCache.bytes += bytes
	return p, func() {}
}

// FlushWeightCache gives every cached kernel transform back to the buffer
// pool (for long-lived processes done with a network; the cache is bounded
// in any case).
func FlushWeightCache() {
	uCache.Lock()
	defer uCache.Unlock()
	flushUCacheLocked()
}

func flushUCacheLocked() {
	for k, e := range uCache.m {
		putBuf(e.pu)
		delete(uCache.m, k)
	}
	uCache.bytes = 0
}

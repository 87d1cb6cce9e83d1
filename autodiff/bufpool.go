package autodiff

import (
	"sort"
	"sync"
	"syscall"
	"unsafe"

	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/tensor"
)

// The buffer pool behind arena tapes (NewArenaTape): float32 buffers carved
// out of large anonymous memory mappings ("slabs", outside the Go heap),
// address-ordered first fit, and coalesced with their free neighbours when
// given back. A training step asks for the same buffers every time, so
// after the first step every request is met from memory already in the
// pool: the Go heap stops growing and churning (no garbage collection
// work, no fresh pages to fault in). Buffers of different sizes share the
// same memory over a step (two freed 1-GiB maps serve one 2-GiB request),
// and a slab's pages are only resident once touched, so the process's
// resident memory follows the most bytes the step holds at once rather than
// the sum of what each size needed at its own peak. The pool keeps what it
// has touched until FreePool.
var bufPool = struct {
	sync.Mutex
	slabs []*slab
	live  map[*float32]span // buffers handed out, by first element
	// floats handed out and not yet given back (liveN), their high-water
	// mark since the last ResetPoolPeak, and the floats of address range
	// the slabs have handed out at least once (their resident bound).
	liveN, peak int64
}{live: map[*float32]span{}}

// slabFloats is the size of a slab's mapping (virtual: pages are only
// backed when touched; the mapping is not reserved against the overcommit
// limit); a request that does not fit gets a slab of its own size.
const slabFloats = 4 << 30 // 16 GiB

type span struct {
	s      *slab
	off, n int
}

type slab struct {
	mem  []float32
	raw  []byte // the mapping (nil for a Go-heap fallback)
	free []span // free ranges, sorted by off, never adjacent
	hw   int    // high-water mark: floats at and above hw were never handed out (still zero)
	used int    // floats handed out
}

func newSlab(n int) *slab {
	for _, sz := range []int{max(n, slabFloats), max(n, slabFloats/16), n} {
		raw, err := syscall.Mmap(-1, 0, 4*sz, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
		if err == nil {
			mem := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), sz)
			return &slab{mem: mem, raw: raw, free: []span{{off: 0, n: sz}}}
		}
	}
	return &slab{mem: make([]float32, n), free: []span{{off: 0, n: n}}}
}

// take carves n floats out of the first free range that holds them;
// fresh reports that they were never handed out before (zero).
func (s *slab) take(n int) (off int, fresh, ok bool) {
	for i, f := range s.free {
		if f.n < n {
			continue
		}
		if f.n == n {
			s.free = append(s.free[:i], s.free[i+1:]...)
		} else {
			s.free[i].off += n
			s.free[i].n -= n
		}
		fresh = f.off >= s.hw
		s.hw = max(s.hw, f.off+n)
		s.used += n
		return f.off, fresh, true
	}
	return 0, false, false
}

// give returns [off, off+n) and merges it with its free neighbours.
func (s *slab) give(off, n int) {
	s.used -= n
	i := sort.Search(len(s.free), func(i int) bool { return s.free[i].off > off })
	if i > 0 && s.free[i-1].off+s.free[i-1].n == off {
		s.free[i-1].n += n
		if i < len(s.free) && off+n == s.free[i].off {
			s.free[i-1].n += s.free[i].n
			s.free = append(s.free[:i], s.free[i+1:]...)
		}
		return
	}
	if i < len(s.free) && off+n == s.free[i].off {
		s.free[i].off, s.free[i].n = off, s.free[i].n+n
		return
	}
	s.free = append(s.free, span{})
	copy(s.free[i+1:], s.free[i:])
	s.free[i] = span{off: off, n: n}
}

// PoolStats is the buffer pool's accounting, in bytes.
type PoolStats struct {
	Live  int64 // handed out by the pool and not yet given back
	Peak  int64 // Live's high-water mark since the last ResetPoolPeak
	Total int64 // address range the pool has handed out at least once: the most of it that can be resident
}

// ReadPoolStats returns the pool's current accounting.
func ReadPoolStats() PoolStats {
	bufPool.Lock()
	defer bufPool.Unlock()
	var t int64
	for _, s := range bufPool.slabs {
		t += int64(s.hw)
	}
	return PoolStats{Live: 4 * bufPool.liveN, Peak: 4 * bufPool.peak, Total: 4 * t}
}

// ResetPoolPeak restarts the high-water mark from the current live bytes.
func ResetPoolPeak() {
	bufPool.Lock()
	bufPool.peak = bufPool.liveN
	bufPool.Unlock()
}

// getBuf returns n zeros.
func getBuf(n int) []float32 {
	b, reused := takeBuf(n)
	if reused {
		clearPar(b)
	}
	return b
}

// clearParMin is the length from which clearPar splits the zeroing over
// the workers: a gradient buffer of config c's 64³ maps (16 MiB) took
// 3 % of the step's CPU time on one core while the other waited.
const clearParMin = 1 << 18

// clearPar zeroes b, in parallel chunks when it is long.
func clearPar(b []float32) {
	if len(b) < clearParMin {
		clear(b)
		return
	}
	tensor.Parallel(len(b), clearParMin/4, func(_, lo, hi int) { clear(b[lo:hi]) })
}

// getBufDirty is getBuf without the zeroing of reused memory (for callers
// that overwrite every element).
func getBufDirty(n int) []float32 {
	b, _ := takeBuf(n)
	return b
}

// takeBuf returns n floats from the pool (capacity n); reused reports
// memory handed out before (not zero).
func takeBuf(n int) ([]float32, bool) {
	if n <= 0 {
		return []float32{}, false
	}
	bufPool.Lock()
	defer bufPool.Unlock()
	var s *slab
	off, fresh, ok := 0, false, false
	for _, c := range bufPool.slabs {
		if off, fresh, ok = c.take(n); ok {
			s = c
			break
		}
	}
	if !ok {
		s = newSlab(n)
		bufPool.slabs = append(bufPool.slabs, s)
		off, fresh, _ = s.take(n)
	}
	b := s.mem[off : off+n : off+n]
	bufPool.live[&b[0]] = span{s: s, off: off, n: n}
	bufPool.liveN += int64(n)
	bufPool.peak = max(bufPool.peak, bufPool.liveN)
	return b, !fresh
}

// putBuf gives b back to the pool; b must not be used afterwards. A buffer
// the pool did not hand out (or one already given back) is left alone.
func putBuf(b []float32) {
	if cap(b) == 0 {
		return
	}
	p := &b[:1][0]
	bufPool.Lock()
	defer bufPool.Unlock()
	sp, ok := bufPool.live[p]
	if !ok {
		return
	}
	delete(bufPool.live, p)
	bufPool.liveN -= int64(sp.n)
	sp.s.give(sp.off, sp.n)
}

// FreePool gives the slabs that hold no handed-out buffer back to the
// operating system (slabs still in use stay).
func FreePool() {
	bufPool.Lock()
	defer bufPool.Unlock()
	keep := bufPool.slabs[:0]
	for _, s := range bufPool.slabs {
		if s.used > 0 {
			keep = append(keep, s)
			continue
		}
		if s.raw != nil {
			syscall.Munmap(s.raw)
		}
	}
	clear(bufPool.slabs[len(keep):])
	bufPool.slabs = keep
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
			kernels.AddTo(dst[lo:hi], p[lo:hi])
		})
		putBuf(p)
	}
}

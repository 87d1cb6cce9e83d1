package autodiff

import (
	"testing"
	"unsafe"
)

// TestPoolReuseAcrossSizes checks the pool's slab allocator: buffers handed
// out at once never overlap, freed neighbours coalesce so that two freed
// buffers serve one request of their combined size without new memory, a
// reused buffer comes back zeroed from getBuf, and buffers the pool did not
// hand out (or handed back twice) are left alone.
func TestPoolReuseAcrossSizes(t *testing.T) {
	ResetPoolPeak()
	s0 := ReadPoolStats()
	a, b, c := getBuf(1000), getBuf(1000), getBuf(500)
	for _, x := range [][]float32{a, b, c} {
		for i := range x {
			x[i] = 7
		}
	}
	live := [][]float32{a, b, c}
	for i := range live {
		for j := range live {
			if i != j && overlap(live[i], live[j]) {
				t.Fatalf("buffers %d and %d overlap", i, j)
			}
		}
	}
	if cap(a) != 1000 || cap(c) != 500 {
		t.Errorf("capacities %d, %d; want the request's length", cap(a), cap(c))
	}
	s1 := ReadPoolStats()
	if s1.Live-s0.Live != 4*2500 || s1.Peak < s1.Live {
		t.Errorf("live %d -> %d bytes, peak %d", s0.Live, s1.Live, s1.Peak)
	}
	putBuf(a)
	putBuf(b)
	putBuf(a)                   // twice: ignored
	putBuf(make([]float32, 10)) // not the pool's: ignored
	d := getBuf(2000)           // a and b, coalesced
	if &d[0] != &a[0] {
		t.Errorf("a 2000-float request did not reuse the two freed 1000-float neighbours")
	}
	for i, v := range d {
		if v != 0 {
			t.Fatalf("reused buffer not zeroed at %d: %v", i, v)
		}
	}
	if got := ReadPoolStats(); got.Total != s1.Total {
		t.Errorf("pool grew from %d to %d bytes for memory it had free", s1.Total, got.Total)
	}
	if overlap(d, c) {
		t.Fatal("reused buffer overlaps a live one")
	}
	putBuf(c)
	putBuf(d)
	if got := ReadPoolStats(); got.Live != s0.Live {
		t.Errorf("live %d bytes after giving everything back, want %d", got.Live, s0.Live)
	}
}

func overlap(x, y []float32) bool {
	x0, y0 := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return x0 < y0+4*uintptr(len(y)) && y0 < x0+4*uintptr(len(x))
}

// TestSlabFirstFitCoalesce checks one slab's bookkeeping: first fit from
// the lowest address, freed neighbours merged (in any order of giving
// back), the high-water mark telling fresh memory from reused.
func TestSlabFirstFitCoalesce(t *testing.T) {
	s := &slab{mem: make([]float32, 3000), free: []span{{off: 0, n: 3000}}}
	take := func(n int) (int, bool) {
		off, fresh, ok := s.take(n)
		if !ok {
			t.Fatalf("no room for %d (free %v)", n, s.free)
		}
		return off, fresh
	}
	a, fa := take(1000)
	b, fb := take(1000)
	c, _ := take(500)
	if a != 0 || b != 1000 || c != 2000 || !fa || !fb {
		t.Fatalf("offsets %d %d %d fresh %v %v", a, b, c, fa, fb)
	}
	if _, _, ok := s.take(600); ok {
		t.Fatal("600 floats fitted in 500")
	}
	s.give(b, 1000)
	s.give(a, 1000) // merges with b's range
	if len(s.free) != 2 || s.free[0] != (span{off: 0, n: 2000}) {
		t.Fatalf("free ranges %v, want [0,2000) and [2500,3000)", s.free)
	}
	d, fd := take(2000)
	if d != 0 || fd {
		t.Errorf("2000 floats at %d (fresh %v), want the coalesced range at 0, reused", d, fd)
	}
	s.give(c, 500) // merges with [2500,3000)
	s.give(d, 2000)
	if len(s.free) != 1 || s.free[0] != (span{off: 0, n: 3000}) || s.used != 0 {
		t.Errorf("free ranges %v used %d, want one range of 3000 and nothing used", s.free, s.used)
	}
	if e, fe := take(2600); e != 0 || fe {
		t.Errorf("2600 floats at %d fresh %v: memory up to 2500 was handed out before", e, fe)
	}
}

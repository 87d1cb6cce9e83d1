package workers

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestRun: every piece runs once, the caller's is piece 0, Run returns
// after all of them, nested regions (a piece that runs its own region)
// finish, and helpers that went to sleep (the spin time elapsed) wake for the
// next region; with the helpers off as well.
func TestRun(t *testing.T) {
	defer SetSpinFor(SetSpinFor(5 * time.Millisecond))
	defer SetEnabled(SetEnabled(true))
	for _, on := range []bool{true, false} {
		SetEnabled(on)
		for _, spin := range []time.Duration{5 * time.Millisecond, time.Microsecond} {
			SetSpinFor(spin)
			for rep := 0; rep < 50; rep++ {
				for _, n := range []int{0, 1, 2, 3, 7} {
					var hits [7]atomic.Int32
					var inner atomic.Int32
					Run(n, func(i int) {
						hits[i].Add(1)
						Run(3, func(int) { inner.Add(1) })
					})
					for i := 0; i < n; i++ {
						if hits[i].Load() != 1 {
							t.Fatalf("on %v spin %v n %d: piece %d ran %d times", on, spin, n, i, hits[i].Load())
						}
					}
					if inner.Load() != int32(3*n) {
						t.Fatalf("on %v n %d: %d nested pieces, want %d", on, n, inner.Load(), 3*n)
					}
				}
				if spin < time.Millisecond && rep%10 == 0 {
					time.Sleep(2 * time.Millisecond) // let the helpers park
				}
			}
		}
	}
}

type counter struct {
	next, calls atomic.Int32
	items       int32
	seen        []atomic.Int32
}

func (c *counter) SharedWork() {
	c.calls.Add(1)
	for {
		i := c.next.Add(1) - 1
		if i >= c.items {
			return
		}
		c.seen[i].Add(1)
		runtime.Gosched()
	}
}

// TestShare: the shared work is done once per item, by the caller and at
// most n−1 helpers, and Share returns when every call has returned; from
// several goroutines at once too.
func TestShare(t *testing.T) {
	defer SetEnabled(SetEnabled(true))
	done := make(chan struct{})
	for g := 0; g < 3; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for rep := 0; rep < 200; rep++ {
				c := &counter{items: 50, seen: make([]atomic.Int32, 50)}
				Share(4, c)
				if k := c.calls.Load(); k < 1 || k > 4 {
					t.Errorf("%d calls", k)
					return
				}
				for i := range c.seen {
					if c.seen[i].Load() != 1 {
						t.Errorf("item %d done %d times", i, c.seen[i].Load())
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 3; g++ {
		<-done
	}
}

// Package workers runs the engine's parallel regions on long-lived helper
// goroutines that wait for the next region by spinning for a few
// milliseconds before they sleep.
//
// A training step is hundreds of parallel regions, many of them well under
// a millisecond. A helper that sleeps between them must be woken for each
// (the runtime hands the new goroutine to an idle thread through a futex,
// and a virtual CPU that went idle waits for the hypervisor): on the 2-vCPU
// development machine a region of 1.3 ms per half ran no faster on two
// goroutines than on one, and one of 13 ms did. A spinning helper picks the
// next region up at once, as OpenMP runtimes' workers do (PyTorch's among
// them). The cost is CPU time while a step runs serial code, on the threads
// the user gave the engine; a helper idle for 5 ms sleeps.
//
// Which goroutine runs a piece of work never changes what it computes:
// callers split work the same way whether or not a helper takes part.
package workers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long an idle helper, or a caller waiting for its
// helpers, spins before it sleeps (5 ms; nanoseconds).
var spinFor atomic.Int64

var enabled atomic.Bool

func init() {
	enabled.Store(true)
	spinFor.Store(int64(5 * time.Millisecond))
}

// SetSpinFor sets how long idle helpers and waiting callers spin before
// they sleep, and returns the old value.
func SetSpinFor(d time.Duration) time.Duration { return time.Duration(spinFor.Swap(int64(d))) }

// Enabled reports whether the helpers are on.
func Enabled() bool { return enabled.Load() }

// SetEnabled switches the helpers on (the default) or off, and returns the
// old setting. Off, Run starts a goroutine for each piece past the first
// and Share callers fall back to their own pools. For A/B benchmarks.
func SetEnabled(on bool) bool { return enabled.Swap(on) }

// Sharer is work for Share: Share calls SharedWork on several goroutines at
// once, and each call takes pieces from a shared source until none is left.
type Sharer interface{ SharedWork() }

// job is one region: Run's pieces (fn) or Share's work (sh).
type job struct {
	fn      func(i int)
	sh      Sharer
	pending atomic.Int32
	done    chan struct{} // one token from the goroutine that ends the last piece
}

var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

func (j *job) finish() {
	if j.pending.Add(-1) == 0 {
		j.done <- struct{}{}
	}
}

// wait returns once every piece has finished: spinning up to the spin time, then
// asleep on the token. The token always comes (after the last decrement),
// so it is always taken and the job can be reused.
func (j *job) wait() {
	var deadline time.Time
	for i := 0; j.pending.Load() != 0; i++ {
		if i%64 == 63 {
			if deadline.IsZero() {
				deadline = time.Now().Add(time.Duration(spinFor.Load()))
			} else if time.Now().After(deadline) {
				break
			}
		}
		runtime.Gosched()
	}
	<-j.done
}

const (
	idleSpin int32 = iota // spinning for a task
	parked                // asleep on wake
	busy                  // claimed: a task is (being) handed over or running
)

type helper struct {
	state atomic.Int32
	task  atomic.Pointer[job]
	piece int // Run's piece index, written before task
	wake  chan struct{}
}

var (
	mu      sync.Mutex
	helpers atomic.Pointer[[]*helper]
)

// post hands piece i of j to an idle helper, starting one if there are
// fewer than GOMAXPROCS−1, and reports whether it did.
func post(j *job, i int) bool {
	if hs := helpers.Load(); hs != nil {
		for _, h := range *hs {
			if h.state.CompareAndSwap(idleSpin, busy) {
				h.piece = i
				h.task.Store(j)
				return true
			}
			if h.state.CompareAndSwap(parked, busy) {
				h.piece = i
				h.task.Store(j)
				h.wake <- struct{}{}
				return true
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var hs []*helper
	if p := helpers.Load(); p != nil {
		hs = *p
	}
	if len(hs) >= runtime.GOMAXPROCS(0)-1 {
		return false
	}
	h := &helper{wake: make(chan struct{}, 1), piece: i}
	h.state.Store(busy)
	h.task.Store(j)
	nh := append(append([]*helper(nil), hs...), h)
	helpers.Store(&nh)
	go h.loop()
	return true
}

func (h *helper) loop() {
	for {
		j := h.task.Load()
		if j == nil {
			deadline := time.Now().Add(time.Duration(spinFor.Load()))
			for i := 0; ; i++ {
				if j = h.task.Load(); j != nil {
					break
				}
				if i%64 == 63 && h.state.Load() == idleSpin && time.Now().After(deadline) &&
					h.state.CompareAndSwap(idleSpin, parked) {
					<-h.wake // the waker claimed this helper and stored its task
					continue
				}
				runtime.Gosched()
			}
		}
		i := h.piece
		h.task.Store(nil) // (state is busy: set by the poster's claim)
		if j.sh != nil {
			j.sh.SharedWork()
		} else {
			j.fn(i)
		}
		// idle before the job can end, so that the caller's next region
		// finds this helper free
		h.state.Store(idleSpin)
		j.finish()
	}
}

// Run calls fn(0) on the calling goroutine and fn(1), …, fn(n−1)
// concurrently on helpers (on new goroutines where none is idle), and
// returns when all have returned.
func Run(n int, fn func(i int)) {
	if n <= 1 {
		if n == 1 {
			fn(0)
		}
		return
	}
	j := jobs.Get().(*job)
	j.fn = fn
	j.pending.Store(int32(n - 1))
	on := enabled.Load()
	for i := 1; i < n; i++ {
		if !on || !post(j, i) {
			go func() {
				fn(i)
				j.finish()
			}()
		}
	}
	fn(0)
	j.wait()
	j.fn = nil
	jobs.Put(j)
}

// Share calls w.SharedWork on the calling goroutine and on up to n−1
// helpers that are idle (or can be started) at the moment, and returns when
// every call has returned; where no helper is free (the caller is one of
// several goroutines already running regions) fewer goroutines do the
// work instead of queueing behind each other. It allocates nothing.
func Share(n int, w Sharer) {
	j := jobs.Get().(*job)
	j.sh = w
	j.pending.Store(1) // the caller's own call
	for i := 1; i < n; i++ {
		j.pending.Add(1)
		if !post(j, 0) {
			j.pending.Add(-1)
			break
		}
	}
	w.SharedWork()
	j.finish()
	j.wait()
	j.sh = nil
	jobs.Put(j)
}

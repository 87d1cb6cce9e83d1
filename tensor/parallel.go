package tensor

import (
	"runtime"
	"sync/atomic"

	"github.com/fess-seg/fess/internal/workers"
)

var threads atomic.Int64

func init() { threads.Store(int64(runtime.GOMAXPROCS(0))) }

// Threads returns the number of workers the engine's loops use (default
// GOMAXPROCS at start-up). Results are bit-identical for a given value.
func Threads() int { return int(threads.Load()) }

// SetThreads sets the worker count (values < 1 mean 1) and returns the old one.
func SetThreads(n int) int {
	if n < 1 {
		n = 1
	}
	return int(threads.Swap(int64(n)))
}

// minGrain is the smallest amount of work (in loop iterations) worth a
// goroutine; smaller loops run on the calling goroutine.
const minGrain = 4096

// Parallel splits [0,n) into Chunks(n, grain) contiguous ranges in order and
// calls fn(worker, lo, hi) for each, concurrently. The split depends only on
// n, grain and Threads(), never on timing, so per-chunk partial results that
// are combined in worker order give bit-identical results run to run. grain
// is the minimum iterations per chunk (<= 0 means a default of 4096).
func Parallel(n, grain int, fn func(worker, lo, hi int)) {
	p := Chunks(n, grain)
	if p <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	// chunk 0 on the caller, the others on the spinning helpers
	// (internal/workers)
	workers.Run(p, func(w int) { fn(w, w*n/p, (w+1)*n/p) })
}

// Chunks returns how many chunks Parallel(n, grain, ·) uses.
func Chunks(n, grain int) int {
	if grain <= 0 {
		grain = minGrain
	}
	p := Threads()
	if m := n / grain; m < p {
		p = m
	}
	if p < 1 {
		p = 1
	}
	return p
}

// useDynamic enables ParallelDynamic's dynamic hand-out (else it is
// Parallel); a variable so benchmarks can compare the two.
var useDynamic atomic.Bool

func init() { useDynamic.Store(true) }

// SetDynamic switches ParallelDynamic between handing out chunks as
// workers free up (on, the default) and Parallel's fixed split, and
// returns the old setting. For A/B benchmarks.
func SetDynamic(on bool) bool { return useDynamic.Swap(on) }

// ParallelDynamic calls fn(worker, lo, hi) for consecutive ranges of
// [0,n) of chunk iterations each (the last may be shorter), handing the
// next range to whichever of the Threads() workers is free first: a
// worker slowed down (another process on its core, a slower share of the
// work) takes fewer chunks instead of holding the others up. A worker may
// get several ranges, in increasing order, and worker numbers are in
// [0, Threads()). Which worker runs which range depends on timing, so fn
// must write only outputs that belong to its range (no per-worker partial
// sums): then the results are the same bits as with Parallel.
func ParallelDynamic(n, chunk int, fn func(worker, lo, hi int)) {
	if chunk < 1 {
		chunk = 1
	}
	nc := (n + chunk - 1) / chunk
	p := min(Threads(), nc)
	if p <= 1 || !useDynamic.Load() {
		Parallel(nc, 1, func(w, lo, hi int) {
			if lo < hi {
				fn(w, lo*chunk, min(hi*chunk, n))
			}
		})
		return
	}
	var next atomic.Int64
	run := func(w int) {
		for {
			c := int(next.Add(1) - 1)
			if c >= nc {
				return
			}
			fn(w, c*chunk, min((c+1)*chunk, n))
		}
	}
	workers.Run(p, run)
}

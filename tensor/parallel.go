package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
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
	var wg sync.WaitGroup
	for w := 1; w < p; w++ {
		lo, hi := w*n/p, (w+1)*n/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	fn(0, 0, n/p)
	wg.Wait()
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

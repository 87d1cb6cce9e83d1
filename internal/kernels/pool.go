package kernels

import (
	"sync"
	"sync/atomic"
)

// Parallel regions run on a small set of long-lived helper goroutines, so
// that a call neither spawns goroutines nor allocates. A job's caller always
// works on the job itself too, so it completes even when every helper is busy
// with another caller's job (helpers never start nested parallel regions).

// task is a parallel job: worker(true) takes items until none are left and
// then reports done to the job's WaitGroup.
type task interface {
	worker(done bool)
}

var (
	taskQueue   = make(chan task, 64)
	helpers     atomic.Int32
	helpersLock sync.Mutex
)

// ensureHelpers starts helper goroutines until there are at least n.
func ensureHelpers(n int) {
	if int(helpers.Load()) >= n {
		return
	}
	helpersLock.Lock()
	for int(helpers.Load()) < n {
		helpers.Add(1)
		go func() {
			for t := range taskQueue {
				t.worker(true)
			}
		}()
	}
	helpersLock.Unlock()
}

// runParallel runs t on nt goroutines, the caller's included; wg must be the
// job's WaitGroup that t.worker(true) marks done.
func runParallel(t task, nt int, wg *sync.WaitGroup) {
	if nt > 1 {
		ensureHelpers(nt - 1)
		wg.Add(nt - 1)
		for w := 1; w < nt; w++ {
			taskQueue <- t
		}
	}
	t.worker(false)
	wg.Wait()
}

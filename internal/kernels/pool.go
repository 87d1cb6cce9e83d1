package kernels

import (
	"sync"
	"sync/atomic"

	"github.com/fess-seg/fess/internal/workers"
)

// Parallel regions run on a small set of long-lived helper goroutines, so
// that a call neither spawns goroutines nor allocates. A job is handed only
// to helpers that are idle at that moment, and its caller works on it too:
// when the caller is itself one of several goroutines calling Sgemm at once
// (an engine spreading tiles over the cores), the calls simply run on fewer
// threads instead of queueing behind each other. Which goroutine runs an item
// never changes the result.

// task is a parallel job: worker(true) takes items until none are left and
// then reports done to the job's WaitGroup.
type task interface {
	worker(done bool)
	workers.Sharer // SharedWork: worker(false), for the spinning helpers
}

var (
	taskQueue   = make(chan task) // unbuffered: a send reaches a waiting helper
	helpers     atomic.Int32
	idle        atomic.Int32 // helpers waiting on taskQueue, not yet claimed
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
			for {
				idle.Add(1)
				t := <-taskQueue // the sender has claimed this helper
				t.worker(true)
			}
		}()
	}
	helpersLock.Unlock()
}

// runParallel runs t on up to nt goroutines: the caller and as many as
// nt-1 idle helpers. wg must be the job's WaitGroup, which t.worker(true)
// marks done.
//
// With the spinning helpers on (internal/workers, the default) the job
// goes to those instead: they pick it up at once, where these helpers,
// asleep on the channel between jobs, had to be woken first.
func runParallel(t task, nt int, wg *sync.WaitGroup) {
	if nt > 1 && workers.Enabled() {
		workers.Share(nt, t)
		return
	}
	if nt > 1 {
		ensureHelpers(nt - 1)
		for w := 1; w < nt; w++ {
			if idle.Add(-1) < 0 { // no idle helper left: undo the claim
				idle.Add(1)
				break
			}
			wg.Add(1)
			taskQueue <- t
		}
	}
	t.worker(false)
	wg.Wait()
}

func (j *gemmJob) SharedWork()   { j.worker(false) }
func (j *bf16Job) SharedWork()   { j.worker(false) }
func (j *dotJob) SharedWork()    { j.worker(false) }
func (j *kSplitJob) SharedWork() { j.worker(false) }

package train

import (
	"fmt"
	"os"
	"os/signal"
)

// Preemption. A run's Options.Stop carries the signals that ask it to stop
// (NotifyStop connects SIGTERM, SIGUSR1 and SIGINT to it). Run looks at the
// channel between optimiser steps without blocking: on a signal it finishes
// the step in progress, saves the last checkpoint at that exact point
// (mid-epoch: with the position within the epoch and the epoch's sums so
// far, see epochPos) and returns an *ErrInterrupted. --resume then
// continues from that step, and the final weights equal an uninterrupted
// run's bit for bit. A signal during validation or the end-of-epoch save
// takes effect once the epoch's checkpoint and log line are written.

// ErrInterrupted reports a run stopped by a signal after saving its state.
// The command line exits with ExitCode: 3 (interrupted, state saved,
// resumable) for SIGTERM and SIGUSR1, 130 for SIGINT.
type ErrInterrupted struct {
	Signal os.Signal
	Epoch  int   // the epoch in progress (1-based)
	Step   int64 // optimiser steps taken in all
	Ckpt   string
	Out    string
}

func (e *ErrInterrupted) Error() string {
	return fmt.Sprintf("received %s at epoch %d step %d; saved %s; resume with fess train --out %s --resume",
		SignalName(e.Signal), e.Epoch, e.Step, e.Ckpt, e.Out)
}

// ExitCode is the process exit status for the interruption: 130 (128 +
// SIGINT) for SIGINT, else 3.
func (e *ErrInterrupted) ExitCode() int {
	if e.Signal == os.Interrupt {
		return 130
	}
	return 3
}

// NotifyStop relays SIGTERM, SIGUSR1 (Slurm's --signal=B:USR1@120) and
// SIGINT to the returned channel, for Options.Stop; release restores the
// default handling.
func NotifyStop() (stop <-chan os.Signal, release func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals...)
	return ch, func() { signal.Stop(ch) }
}

// pending returns a signal waiting on stop, or nil (never blocks).
func pending(stop <-chan os.Signal) os.Signal {
	if stop == nil {
		return nil
	}
	select {
	case s := <-stop:
		return s
	default:
		return nil
	}
}

//go:build unix

package train

import (
	"os"
	"syscall"
)

var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGUSR1, os.Interrupt}

// SignalName is the conventional name of s ("SIGTERM"), as Slurm and kill
// spell it.
func SignalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case os.Interrupt:
		return "SIGINT"
	case nil:
		return "no signal"
	}
	return s.String()
}

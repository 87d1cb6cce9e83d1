//go:build !unix

package train

import (
	"os"
	"syscall"
)

var stopSignals = []os.Signal{syscall.SIGTERM, os.Interrupt}

// SignalName is the conventional name of s ("SIGTERM").
func SignalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case os.Interrupt:
		return "SIGINT"
	case nil:
		return "no signal"
	}
	return s.String()
}

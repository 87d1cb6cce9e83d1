// Package errs defines the two error kinds the fess command line maps to exit
// status 2: bad usage (wrong flags) and bad input (a file that cannot be read
// or does not make sense). Every other error exits with status 1.
//
// Errors of these kinds name the file and the fault, e.g.
//
//	brain.nii.gz: header promises 8388608 bytes of voxel data, file has 1024
package errs

import (
	"errors"
	"fmt"
)

// InputError reports a fault in a user-supplied file or directory.
type InputError struct {
	File  string // the offending file or directory ("" if none)
	Fault string // what is wrong with it
	Err   error  // optional underlying cause
}

func (e *InputError) Error() string {
	if e.File == "" {
		return e.Fault
	}
	return e.File + ": " + e.Fault
}

func (e *InputError) Unwrap() error { return e.Err }

// Input returns an *InputError for file with a formatted fault.
func Input(file, format string, args ...any) error {
	return &InputError{File: file, Fault: fmt.Sprintf(format, args...)}
}

// WrapInput returns an *InputError for file wrapping cause.
func WrapInput(file string, cause error, format string, args ...any) error {
	return &InputError{File: file, Fault: fmt.Sprintf(format, args...) + ": " + cause.Error(), Err: cause}
}

// UsageError reports a wrong command-line invocation.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usage returns a *UsageError with a formatted message.
func Usage(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitCoder is an error that chooses its own exit status (train's
// ErrInterrupted: 3 = interrupted, state saved, resumable; 130 for SIGINT).
type ExitCoder interface {
	error
	ExitCode() int
}

// ExitCode maps an error to the process exit status: 0 for nil, an
// ExitCoder's own status, 2 for usage and input errors, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var ie *InputError
	var ue *UsageError
	if errors.As(err, &ie) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

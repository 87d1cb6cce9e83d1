package dataset

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoExchange says the system or file system cannot swap two paths.
var errNoExchange = errors.New("atomic exchange not supported")

// exchange swaps the folders a and b in one step (renameat2 with
// RENAME_EXCHANGE), or returns errNoExchange.
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return errNoExchange
	}
	if err != nil {
		return &os.LinkError{Op: "exchange", Old: a, New: b, Err: err}
	}
	return nil
}

// sameDevice reports whether a and b are on one file system (false when
// either cannot be read, which makes Prepare stage inside the output).
func sameDevice(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return false
	}
	da, ok1 := sa.Sys().(*syscall.Stat_t)
	db, ok2 := sb.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && da.Dev == db.Dev
}

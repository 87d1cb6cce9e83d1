//go:build !linux

package dataset

import "errors"

// errNoExchange says the system or file system cannot swap two paths.
var errNoExchange = errors.New("atomic exchange not supported")

// exchange is not available here: Prepare renames the old folder away and
// the new one in.
func exchange(a, b string) error { return errNoExchange }

// sameDevice assumes one file system (no portable device number here).
func sameDevice(a, b string) bool { return true }

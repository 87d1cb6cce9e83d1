//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package lock

import (
	"fmt"
	"os"
)

// Acquire only creates dir: on this system fess has no folder lock (flock
// is implemented for Linux and the BSDs), so nothing stops two fess
// processes from writing one folder at once here.
func Acquire(dir, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return &Lock{dir: dir, path: lockPath(dir)}, nil
}

// Release is a no-op on this system.
func (l *Lock) Release() error { return nil }

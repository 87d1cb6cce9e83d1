//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/fess-seg/fess/errs"
)

// Acquire creates dir if needed and locks it for what (the fess command,
// e.g. "train"). If another process, or another Acquire of this one, holds
// the lock, it returns an errs.Input error (exit status 2) that names the
// holder. A lock file left by a dead process is taken over, with a note on
// stderr when it names a pid on this host that no longer exists.
func Acquire(dir, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := lockPath(dir)
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		if err := flock(f); err != nil {
			h, ok := readHolder(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
				who := "another fess process (it has not written its name yet)"
				if ok {
					who = h.describe()
				}
				return nil, errs.Input(dir, "is being written by %s; wait for it or use another folder", who)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The file may have been removed (and maybe re-created) between
		// open and flock; then we hold a lock nobody else sees. Retry.
		if same(f, path) {
			l := &Lock{dir: dir, path: path, f: f}
			if err := l.claim(what); err != nil {
				l.Release()
				return nil, err
			}
			return l, nil
		}
		f.Close()
		if try >= 10 {
			return nil, fmt.Errorf("lock %s: the lock file keeps being replaced", path)
		}
	}
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func same(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// claim reports a stale previous holder and writes this process into the
// lock file.
func (l *Lock) claim(what string) error {
	me := self(what)
	if old, ok := readHolder(l.f); ok && old.Host == me.Host && old.PID != me.PID && !alive(old.PID) {
		fmt.Fprintf(logw(), "%s: taking over the stale lock of %s\n", l.dir, old.describe())
	}
	data, err := json.Marshal(me)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write lock file %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write lock file %s: %w", l.path, err)
	}
	return nil
}

// alive reports whether a process with this pid exists on this host.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Release empties the lock file (it stays in the folder, so that a process
// waiting on the same inode is not fooled) and releases the lock. A nil or
// released Lock is a no-op.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	terr := f.Truncate(0)
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	cerr := f.Close()
	return errors.Join(terr, uerr, cerr)
}

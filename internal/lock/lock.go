// Package lock keeps two fess processes from writing one folder at once.
//
// Acquire takes an exclusive, non-blocking flock(2) on DIR/.fess.lock and
// writes the holder (host name, pid, command, command line, start time) into
// that file, so a second fess that finds the folder busy can say who holds
// it. The lock belongs to the open file description: it is released when
// Release closes the file or when the process dies, however it dies, so a
// lock file left behind by a killed process is simply locked again (and its
// stale holder reported). Because it is per open file description, two
// Acquire calls on one folder conflict even inside one process.
//
// flock is reliable on local file systems. On NFS, Linux emulates flock with
// POSIX byte-range locks (since 2.6.12), which works only where the server
// and the client's lock manager cooperate; older clients and some servers
// lock nothing across machines. Do not rely on the lock to keep fess
// processes on different machines apart on a network file system.
//
// The lock is implemented on Linux and the BSDs (macOS included); on other
// systems Acquire only creates the folder and locks nothing.
package lock

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileName is the lock file inside a locked folder.
const FileName = ".fess.lock"

// Log receives the note about a taken-over stale lock; nil means the
// process's current os.Stderr.
var Log io.Writer

// Holder is what a lock file records about the process holding it.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	What    string    `json:"what"`    // the fess command, e.g. "train"
	Command []string  `json:"command"` // the full command line
	Since   time.Time `json:"since"`
}

// Lock is a held folder lock.
type Lock struct {
	dir  string
	path string
	f    *os.File
}

// Dir is the locked folder.
func (l *Lock) Dir() string { return l.dir }

func logw() io.Writer {
	if Log != nil {
		return Log
	}
	return os.Stderr
}

func self(what string) Holder {
	host, _ := os.Hostname()
	return Holder{Host: host, PID: os.Getpid(), What: what, Command: os.Args, Since: time.Now().UTC().Truncate(time.Second)}
}

// parseHolder reads a lock file's content; ok is false for an empty or
// unreadable one.
func parseHolder(data []byte) (h Holder, ok bool) {
	if len(data) == 0 || json.Unmarshal(data, &h) != nil || h.PID == 0 {
		return Holder{}, false
	}
	return h, true
}

func readHolder(f *os.File) (Holder, bool) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil {
		return Holder{}, false
	}
	return parseHolder(data)
}

func (h Holder) describe() string {
	what := h.What
	if what == "" {
		what = "?"
	}
	return fmt.Sprintf("pid %d on host %s (fess %s since %s)", h.PID, h.Host, what, h.Since.Local().Format(time.RFC3339))
}

func lockPath(dir string) string { return filepath.Join(dir, FileName) }

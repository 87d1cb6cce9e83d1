package lock

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/internal/atomicio"
)

// RemoveStaleTemps deletes the temporary files that an interrupted atomic
// write (package atomicio, ".<name>.tmp-<digits>") left in the locked
// folder and in its subfolders named by sub (relative to it, one level
// each, not recursive), with a one-line note per folder on w (nil: none).
// Call it right after Acquire: while the lock is held no other fess is
// writing there.
func (l *Lock) RemoveStaleTemps(w io.Writer, sub ...string) error {
	dirs := []string{l.dir}
	for _, s := range sub {
		dirs = append(dirs, filepath.Join(l.dir, s))
	}
	for _, d := range dirs {
		removed, err := atomicio.RemoveStale(d)
		if len(removed) > 0 && w != nil {
			names := make([]string, len(removed))
			for i, p := range removed {
				names[i] = filepath.Base(p)
			}
			fmt.Fprintf(w, "%s: removed %d stale temporary file(s) of an interrupted write: %s\n", d, len(removed), strings.Join(names, ", "))
		}
		if err != nil {
			return fmt.Errorf("remove stale temporary files in %s: %w", d, err)
		}
	}
	return nil
}

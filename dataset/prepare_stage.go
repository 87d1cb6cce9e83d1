package dataset

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/internal/lock"
)

// A full preparation is written into a staging folder and swapped in whole,
// so the folder under the final name is always either the old data set or
// the new one, never a mix, and a failed or killed run leaves the old one
// as it was.
//
// The staging folder is normally a sibling of the output, <out>.tmp-<pid>.
// On Linux the two are swapped with one renameat2(RENAME_EXCHANGE), after
// which the old data set sits under the staging name and is removed;
// elsewhere (or where the file system cannot exchange) the old folder is
// renamed to <out>.old-<pid>, the new one to <out>, and the old one
// removed, so for an instant no folder has the final name. Folders and
// files in the output that Prepare does not write (a run folder kept next
// to the cases, notes) are moved into the new folder before the swap.
//
// Where the sibling cannot be made (the parent folder is not writable) or
// the output is a mount point (a sibling would be on another file system),
// the staging folder is <out>/.staging-<pid>: the old manifest is removed
// first, then cases/, splits.json and the new manifest are renamed in, the
// manifest last, so the folder is for a moment not a prepared data set but
// never a manifest over another run's cases.
//
// Each staging folder is locked (package internal/lock) by the process
// writing it; its lock file becomes the output's after the exchange, so a
// concurrent fess still finds the output busy. A staging folder whose lock
// is free belongs to a dead process and is removed by the next Prepare
// (RemoveStaleStaging).
const (
	stageInfix   = ".tmp-"
	oldInfix     = ".old-"
	insidePrefix = ".staging-"
)

type stage struct {
	out    string // the output folder (absolute, symlinks resolved)
	dir    string // the staging folder
	inside bool   // dir is inside out
	lk     *lock.Lock
	done   bool
}

// newStage creates and locks the staging folder for out, with an empty
// cases/ in it.
func newStage(out string) (*stage, error) {
	pid := strconv.Itoa(os.Getpid())
	parent := filepath.Dir(out)
	s := &stage{out: out, dir: filepath.Join(parent, filepath.Base(out)+stageInfix+pid)}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", parent, err)
	}
	s.inside = isDir(out) && !sameDevice(out, parent)
	if !s.inside {
		err := os.Mkdir(s.dir, 0o755)
		switch {
		case err == nil:
		case (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) && isDir(out):
			s.inside = true
		case errors.Is(err, fs.ErrExist):
			return nil, errs.Input(s.dir, "staging folder of prepare into %s already exists and is in use; wait for it or remove it", out)
		default:
			return nil, fmt.Errorf("create staging folder for %s: %w", out, err)
		}
	}
	if s.inside {
		s.dir = filepath.Join(out, insidePrefix+pid)
		if err := os.Mkdir(s.dir, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, errs.Input(s.dir, "staging folder of prepare into %s already exists and is in use; wait for it or remove it", out)
			}
			return nil, fmt.Errorf("create staging folder in %s: %w", out, err)
		}
	}
	if st, err := os.Stat(out); err == nil && !s.inside {
		// The new folder takes the old one's place: give it its mode.
		os.Chmod(s.dir, st.Mode().Perm())
	}
	lk, err := lock.Acquire(s.dir, "prepare")
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	s.lk = lk
	if err := os.Mkdir(filepath.Join(s.dir, "cases"), 0o755); err != nil {
		s.abort()
		return nil, fmt.Errorf("create %s: %w", filepath.Join(s.dir, "cases"), err)
	}
	return s, nil
}

// abort removes the staging folder of a run that did not commit.
func (s *stage) abort() {
	if s.done {
		return
	}
	s.done = true
	os.RemoveAll(s.dir)
	s.lk.Release()
}

// written reports whether name (an entry of the output folder) is written
// by Prepare or is the folder's lock or temporary file, as opposed to
// something else kept in the folder.
func written(name string) bool {
	switch name {
	case ManifestName, SplitsName, "cases", lock.FileName:
		return true
	}
	return atomicio.IsTemp(name) || staleName(name, insidePrefix) != ""
}

// commit puts the staged data set in place of the output folder and
// removes the old one. On an error the output is as it was.
func (s *stage) commit() error {
	if s.inside {
		return s.commitInside()
	}
	if _, err := os.Lstat(s.out); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(s.dir, s.out); err == nil {
			s.done = true
			return s.lk.Release()
		}
		// The output appeared in the meantime: swap with it.
	}
	ents, err := os.ReadDir(s.out)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.out, err)
	}
	var moved []string
	unmove := func() {
		for _, n := range moved {
			os.Rename(filepath.Join(s.dir, n), filepath.Join(s.out, n))
		}
	}
	for _, e := range ents {
		if written(e.Name()) {
			continue
		}
		if err := os.Rename(filepath.Join(s.out, e.Name()), filepath.Join(s.dir, e.Name())); err != nil {
			unmove()
			return fmt.Errorf("move %s into the new data set: %w", filepath.Join(s.out, e.Name()), err)
		}
		moved = append(moved, e.Name())
	}
	old := s.dir
	if err := exchange(s.dir, s.out); err != nil {
		if !errors.Is(err, errNoExchange) {
			unmove()
			return fmt.Errorf("swap %s into %s: %w", s.dir, s.out, err)
		}
		old = filepath.Join(filepath.Dir(s.out), filepath.Base(s.out)+oldInfix+strconv.Itoa(os.Getpid()))
		if err := os.Rename(s.out, old); err != nil {
			unmove()
			return fmt.Errorf("rename %s away: %w", s.out, err)
		}
		if err := os.Rename(s.dir, s.out); err != nil {
			if rerr := os.Rename(old, s.out); rerr == nil {
				unmove()
			}
			return fmt.Errorf("rename %s to %s: %w", s.dir, s.out, err)
		}
	}
	s.done = true
	// A folder that cannot be removed now is stale and goes with the next
	// prepare (RemoveStaleStaging).
	os.RemoveAll(old)
	return s.lk.Release()
}

func (s *stage) commitInside() error {
	for _, n := range []string{ManifestName, SplitsName} {
		if err := os.Remove(filepath.Join(s.out, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	cases := filepath.Join(s.out, "cases")
	if _, err := os.Lstat(cases); err == nil {
		if err := os.Rename(cases, filepath.Join(s.dir, ".old-cases")); err != nil {
			return fmt.Errorf("rename %s away: %w", cases, err)
		}
	}
	if err := os.Rename(filepath.Join(s.dir, "cases"), cases); err != nil {
		return fmt.Errorf("rename the new cases into %s: %w", s.out, err)
	}
	if isFile(filepath.Join(s.dir, SplitsName)) {
		if err := os.Rename(filepath.Join(s.dir, SplitsName), filepath.Join(s.out, SplitsName)); err != nil {
			return err
		}
	}
	if err := os.Rename(filepath.Join(s.dir, ManifestName), filepath.Join(s.out, ManifestName)); err != nil {
		return err
	}
	s.done = true
	os.RemoveAll(s.dir)
	return s.lk.Release()
}

// staleName returns the digits of name if it is prefix followed by digits
// only, and "" otherwise.
func staleName(name, prefix string) string {
	d, ok := strings.CutPrefix(name, prefix)
	if !ok || d == "" {
		return ""
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return d
}

// outPath returns out as an absolute path with symlinks resolved (as far
// as it exists), the folder Prepare swaps.
func outPath(out string) (string, error) {
	out, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(out); err == nil {
		out = r
	}
	return out, nil
}

// RemoveStaleStaging removes the staging folders that a Prepare into out
// left when it died: <out>.tmp-<pid> and <out>.old-<pid> next to it and
// <out>/.staging-<pid> inside it, each only if no live process holds its
// lock. It writes one line per removed folder to w (nil: none). Prepare
// calls it itself; call it after taking out's lock to report the removal
// where Prepare's progress writer is nil.
func RemoveStaleStaging(out string, w io.Writer) error {
	out, err := outPath(out)
	if err != nil {
		return err
	}
	parent, base := filepath.Dir(out), filepath.Base(out)
	var cands []string
	if ents, err := os.ReadDir(parent); err == nil {
		for _, e := range ents {
			if e.IsDir() && (staleName(e.Name(), base+stageInfix) != "" || staleName(e.Name(), base+oldInfix) != "") {
				cands = append(cands, filepath.Join(parent, e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(out); err == nil {
		for _, e := range ents {
			if e.IsDir() && staleName(e.Name(), insidePrefix) != "" {
				cands = append(cands, filepath.Join(out, e.Name()))
			}
		}
	}
	for _, c := range cands {
		lk, err := lock.Acquire(c, "prepare")
		if err != nil {
			var ie *errs.InputError
			if errors.As(err, &ie) {
				continue // a live prepare is writing it
			}
			return fmt.Errorf("remove stale staging folder %s: %w", c, err)
		}
		rerr := os.RemoveAll(c)
		lk.Release()
		if rerr != nil {
			return fmt.Errorf("remove stale staging folder %s: %w", c, rerr)
		}
		if w != nil {
			fmt.Fprintf(w, "%s: removed the stale staging folder of an interrupted prepare\n", c)
		}
	}
	return nil
}

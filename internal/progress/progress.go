// Package progress reports the progress of a long loop for people and for
// logs: a progress bar when the destination is a terminal, otherwise plain
// lines (no carriage returns) at most every Interval, when asked (Line) and
// at the end (Finish), so that a Slurm log or a redirected stderr stays
// readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Interval is the least time between two periodic plain lines.
const Interval = 10 * time.Second

// Reporter advances a count towards a total. It is safe for concurrent use.
type Reporter interface {
	// Add advances the count by n.
	Add(n int)
	// Describe sets the text shown before the count.
	Describe(s string)
	// Line writes a plain line now (plain mode; a bar ignores it).
	Line()
	// Finish ends the report; a plain reporter writes its last line.
	// Further calls do nothing.
	Finish()
}

// IsTerminal reports whether w is a terminal (a character device such as
// a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a reporter writing to w: a progress bar when w is a
// terminal, else plain lines "desc done/total". A nil w (or a nil
// *os.File) gives a reporter that writes nothing.
func New(w io.Writer, total int64, desc string) Reporter {
	if w == nil {
		return nop{}
	}
	if f, ok := w.(*os.File); ok && f == nil {
		return nop{}
	}
	if IsTerminal(w) {
		return &bar{b: progressbar.NewOptions64(max(total, 0),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)}
	}
	return &plain{w: w, total: max(total, 0), desc: desc, last: now()}
}

// now is the clock of plain reporters (replaced in tests).
var now = time.Now

type nop struct{}

func (nop) Add(int)         {}
func (nop) Describe(string) {}
func (nop) Line()           {}
func (nop) Finish()         {}

type bar struct {
	mu   sync.Mutex
	b    *progressbar.ProgressBar
	done bool
}

func (r *bar) Add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		_ = r.b.Add(n)
	}
}

func (r *bar) Describe(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.b.Describe(s)
	}
}

func (r *bar) Line() {}

func (r *bar) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.done = true
		_ = r.b.Finish()
	}
}

type plain struct {
	mu          sync.Mutex
	w           io.Writer
	n, total    int64
	desc        string
	last        time.Time
	wrote, done bool
	lastN       int64
}

func (r *plain) Add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.n += int64(n)
	if t := now(); t.Sub(r.last) >= Interval {
		r.write(t)
	}
}

func (r *plain) Describe(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desc = s
}

func (r *plain) Line() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.write(now())
	}
}

func (r *plain) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	// The last line, unless it would repeat the one just written.
	if !r.wrote || r.lastN != r.n {
		r.write(now())
	}
}

func (r *plain) write(t time.Time) {
	fmt.Fprintf(r.w, "%s %d/%d\n", r.desc, r.n, r.total)
	r.last, r.wrote, r.lastN = t, true, r.n
}

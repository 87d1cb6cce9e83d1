package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock replaces the package clock for the test's duration.
func fakeClock(t *testing.T) *time.Time {
	t.Helper()
	c := time.Unix(1e9, 0)
	old := now
	now = func() time.Time { return c }
	t.Cleanup(func() { now = old })
	return &c
}

func TestPlainLines(t *testing.T) {
	clk := fakeClock(t)
	var b bytes.Buffer
	r := New(&b, 40, "prepare")
	if _, ok := r.(*plain); !ok {
		t.Fatalf("a bytes.Buffer got %T, want plain lines", r)
	}
	for i := 0; i < 12; i++ {
		r.Add(1)
		*clk = clk.Add(time.Second) // 12 s in all: one periodic line at 10 s
	}
	r.Describe("prepare case_012")
	r.Line()
	r.Line() // a forced line is written even with nothing new
	for i := 0; i < 28; i++ {
		r.Add(1)
	}
	r.Finish()
	r.Finish()
	r.Add(1)
	out := b.String()
	if strings.Contains(out, "\r") {
		t.Fatalf("carriage return in plain output %q", out)
	}
	want := "prepare 11/40\nprepare case_012 12/40\nprepare case_012 12/40\nprepare case_012 40/40\n"
	if out != want {
		t.Fatalf("output\n%q\nwant\n%q", out, want)
	}
}

func TestPlainFinishNoRepeat(t *testing.T) {
	fakeClock(t)
	var b bytes.Buffer
	r := New(&b, 3, "train fess")
	r.Add(3)
	r.Line()
	r.Finish()
	if got := b.String(); got != "train fess 3/3\n" {
		t.Fatalf("got %q", got)
	}
}

func TestNilAndTerminal(t *testing.T) {
	New(nil, 5, "x").Add(1)
	var f *os.File
	r := New(f, 5, "x")
	r.Add(1)
	r.Finish()
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is no terminal")
	}
	tmp, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if IsTerminal(tmp) {
		t.Fatal("a regular file is no terminal")
	}
	if _, ok := New(tmp, 5, "x").(*plain); !ok {
		t.Fatal("a log file should get plain lines")
	}
}

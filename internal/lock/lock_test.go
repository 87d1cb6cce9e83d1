//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package lock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fess-seg/fess/errs"
)

// A second Acquire (another open file description, same process) fails,
// names the holder and exits 2; after Release it succeeds.
func TestAcquireConflictAndRelease(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "run")
	l, err := Acquire(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var h Holder
	host, _ := os.Hostname()
	if err := json.Unmarshal(data, &h); err != nil || h.PID != os.Getpid() || h.Host != host || h.What != "train" || len(h.Command) == 0 || h.Since.IsZero() {
		t.Fatalf("lock file %q: %+v, %v", data, h, err)
	}
	_, err = Acquire(dir, "prepare")
	if err == nil {
		t.Fatal("second Acquire succeeded while the lock is held")
	}
	if errs.ExitCode(err) != 2 {
		t.Errorf("exit code %d, want 2: %v", errs.ExitCode(err), err)
	}
	for _, want := range []string{dir, fmt.Sprintf("pid %d", os.Getpid()), "host " + host, "fess train since", "wait for it or use another folder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil { // twice is fine
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "prepare")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer l2.Release()
	if l2.Dir() != dir {
		t.Errorf("Dir() = %q", l2.Dir())
	}
}

// A lock file naming a dead pid on this host is taken over, with a note.
func TestStaleLockTakenOver(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot start a child process:", err)
	}
	dead := cmd.Process.Pid
	if alive(dead) {
		t.Skipf("pid %d was reused", dead)
	}
	host, _ := os.Hostname()
	old, _ := json.Marshal(Holder{Host: host, PID: dead, What: "train", Command: []string{"fess", "train"}, Since: time.Now().Add(-time.Hour)})
	if err := os.WriteFile(filepath.Join(dir, FileName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	Log = &buf
	defer func() { Log = nil }()
	l, err := Acquire(dir, "prepare")
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	defer l.Release()
	if want := fmt.Sprintf("taking over the stale lock of pid %d", dead); !strings.Contains(buf.String(), want) {
		t.Errorf("note %q lacks %q", buf.String(), want)
	}
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	var h Holder
	if json.Unmarshal(data, &h) != nil || h.PID != os.Getpid() || h.What != "prepare" {
		t.Errorf("lock file not rewritten: %q", data)
	}
	// A lock released normally leaves an empty file: no note next time.
	l.Release()
	buf.Reset()
	l3, err := Acquire(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	l3.Release()
	if buf.Len() != 0 {
		t.Errorf("note after a clean release: %q", buf.String())
	}
}

// A lock held by a live process of this host other than us (a child that
// holds it) is refused, and the child's death frees it.
func TestLockDiesWithProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	os.WriteFile(path, nil, 0o644)
	cmd := exec.Command("flock", "-x", path, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill flock and sleep together
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	defer kill()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var l *Lock
		if l, err = Acquire(dir, "train"); err != nil {
			break
		}
		l.Release()
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "another fess process") {
		t.Fatalf("lock held by flock(1) not refused: %v", err)
	}
	kill()
	cmd.Wait()
	// sleep, which shares flock's descriptor, may die a moment later.
	var l *Lock
	for deadline = time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if l, err = Acquire(dir, "train"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("lock not freed by the holder's death: %v", err)
	}
	l.Release()
}

// RemoveStaleTemps deletes atomicio's temporaries in the folder and the
// named subfolder only, with a note.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cases", "deep"), 0o755)
	files := map[string]bool{ // path → removed
		".manifest.json.tmp-123":       true,
		"cases/.a_image.nii.gz.tmp-45": true,
		"cases/deep/.b.tmp-6":          false,
		"manifest.json":                false,
		"notes.tmp-1":                  false,
		"cases/a_image.nii.gz":         false,
	}
	for f := range files {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	l, err := Acquire(dir, "prepare")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	var buf bytes.Buffer
	if err := l.RemoveStaleTemps(&buf, "cases", "missing"); err != nil {
		t.Fatal(err)
	}
	for f, gone := range files {
		_, err := os.Stat(filepath.Join(dir, f))
		if gone != os.IsNotExist(err) {
			t.Errorf("%s: removed %v, want %v", f, os.IsNotExist(err), gone)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Error("lock file removed")
	}
	if got := strings.Count(buf.String(), "\n"); got != 2 || !strings.Contains(buf.String(), ".a_image.nii.gz.tmp-45") {
		t.Errorf("notes: %q", buf.String())
	}
}

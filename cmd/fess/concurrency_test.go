//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fess-seg/fess/internal/lock"
)

// Two fess processes on one folder, as real OS processes: the first takes
// the folder's lock; once its lock file names it, the test stops it
// (SIGSTOP) so the second surely runs while the first holds the lock, and
// starts the second, which must exit 2 naming the first's host and pid.
// Then the first continues, and what it wrote must be what a solo run of
// the same command writes in the same folder.

// buildFess builds the fess binary into a temporary folder.
func buildFess(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fess")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when the process has ended
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		// Never leave a stopped process behind.
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
	})
	return p
}

// wait returns the exit status of p (the test fails after a minute).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("%v did not finish in a minute", p.cmd.Args)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runSolo runs fess alone and fails the test unless it exits 0.
func runSolo(t *testing.T, bin string, args ...string) {
	t.Helper()
	p := start(t, bin, args...)
	if code := p.wait(t); code != 0 {
		t.Fatalf("fess %s exited %d:\n%s", strings.Join(args, " "), code, p.stderr.String())
	}
}

// holdsLock reports whether dir's lock file names pid.
func holdsLock(dir string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(dir, lock.FileName))
	if err != nil || len(b) == 0 {
		return false
	}
	var h lock.Holder
	return json.Unmarshal(b, &h) == nil && h.PID == pid
}

// race runs first until it holds dir's lock, stops it, runs second to its
// end (it must exit 2 naming the first), and lets the first finish (it
// must exit 0). A first that ends before the test sees it holding the lock
// is started again, up to three times, with reset() run before each try.
func race(t *testing.T, bin, dir string, reset func(), first, second []string) {
	t.Helper()
	host, _ := os.Hostname()
	for try := 1; ; try++ {
		reset()
		p1 := start(t, bin, first...)
		pid := p1.cmd.Process.Pid
		caught := false
	poll:
		for {
			if holdsLock(dir, pid) && p1.cmd.Process.Signal(syscall.SIGSTOP) == nil {
				// Release empties the lock file before unlocking: if the
				// stopped process is still named there, it holds the lock.
				if caught = holdsLock(dir, pid); !caught {
					p1.cmd.Process.Signal(syscall.SIGCONT)
				}
				break
			}
			select {
			case <-p1.done:
				break poll
			case <-time.After(200 * time.Microsecond):
			}
		}
		if !caught {
			code := p1.wait(t)
			if code != 0 {
				t.Fatalf("first fess %s exited %d:\n%s", first[0], code, p1.stderr.String())
			}
			if try == 3 {
				t.Fatalf("fess %s finished before the test saw it hold the lock of %s, three times", first[0], dir)
			}
			continue
		}
		t.Logf("fess %s (pid %d) stopped holding %s (try %d); starting the second", first[0], pid, dir, try)
		p2 := start(t, bin, second...)
		code2 := p2.wait(t)
		p1.cmd.Process.Signal(syscall.SIGCONT)
		if code2 != 2 {
			t.Errorf("second fess %s exited %d, want 2:\n%s", second[0], code2, p2.stderr.String())
		}
		for _, want := range []string{dir, fmt.Sprintf("pid %d on host %s (fess %s since", pid, host, first[0]), "wait for it or use another folder"} {
			if !strings.Contains(p2.stderr.String(), want) {
				t.Errorf("second fess %s: stderr lacks %q:\n%s", second[0], want, p2.stderr.String())
			}
		}
		if code := p1.wait(t); code != 0 {
			t.Fatalf("first fess %s exited %d:\n%s", first[0], code, p1.stderr.String())
		}
		return
	}
}

// timeKeys are the JSON keys whose values are times or durations.
var timeKeys = []string{"seconds", "elapsed", "time", "since", "started", "finished"}

// deterministic returns data with what differs between identical runs
// removed: the times in log.jsonl lines, and, where source files were
// written anew (fingerprint true), the manifest's fingerprint of their
// modification times. ok is false for a file that is not compared at all
// (the report page, which names the command line and the time).
func deterministic(t *testing.T, rel string, data []byte, fingerprint bool) ([]byte, bool) {
	base := filepath.Base(rel)
	switch {
	case base == lock.FileName, base == "index.html":
		return nil, false
	case strings.HasSuffix(base, ".jsonl"):
		var out []byte
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			for _, k := range timeKeys {
				delete(m, k)
			}
			b, _ := json.Marshal(m)
			out = append(append(out, b...), '\n')
		}
		return out, true
	case base == "manifest.json" && fingerprint:
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if m["fingerprint"] == "" || m["fingerprint"] == nil {
			t.Errorf("%s has no fingerprint", rel)
		}
		delete(m, "fingerprint")
		b, _ := json.Marshal(m)
		return b, true
	}
	return data, true
}

// snapshot reads every file under dir (relative path → deterministic
// content).
func snapshot(t *testing.T, dir string, fingerprint bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if c, ok := deterministic(t, rel, data, fingerprint); ok {
			files[rel] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sameTree fails the test unless got and want hold the same files with the
// same deterministic content; must names files that must be there.
func sameTree(t *testing.T, what string, got, want map[string][]byte, must ...string) {
	t.Helper()
	for _, m := range must {
		if _, ok := want[m]; !ok {
			t.Errorf("%s: the solo run wrote no %s", what, m)
		}
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		switch {
		case !gok:
			t.Errorf("%s: %s is missing (the solo run wrote it)", what, n)
		case !wok:
			t.Errorf("%s: %s is extra (the solo run did not write it)", what, n)
		case !bytes.Equal(g, w):
			t.Errorf("%s: %s differs from the solo run's (%d vs %d bytes)", what, n, len(g), len(w))
		}
	}
}

// TestConcurrentProcesses: two fess prepare into one folder, two fess train
// on one --out and two fess experiment on one out folder.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds fess and runs it as processes")
	}
	bin := buildFess(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	runSolo(t, bin, "synth", "--kind", "brain", "--cases", "8", "--size", "16", "--seed", "3", "--out", raw, "--quiet")

	t.Run("prepare", func(t *testing.T) {
		prep := filepath.Join(dir, "prep")
		args := []string{"prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet"}
		// The second asks for another size: the old bug mixed the two
		// sizes' case files under one manifest.
		other := []string{"prepare", "--in", raw, "--out", prep, "--size", "12", "--split", "0.5,0.25,0.25", "--quiet"}
		race(t, bin, prep, func() { os.RemoveAll(prep) }, args, other)
		got := snapshot(t, prep, false)
		if err := os.Rename(prep, prep+"-raced"); err != nil {
			t.Fatal(err)
		}
		runSolo(t, bin, args...)
		sameTree(t, "prepare", got, snapshot(t, prep, false), "manifest.json", filepath.Join("cases", "BraTS17_Synth_000_image.nii.gz"))
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "prep.") {
				t.Errorf("prepare left %s next to the data set", e.Name())
			}
		}
		os.RemoveAll(prep + "-raced")
	})

	// A prepare over an existing data set killed before its swap leaves
	// the old data set byte for byte; the next prepare removes its staging
	// folder with a note and replaces the data set.
	t.Run("killed-prepare", func(t *testing.T) {
		prep := filepath.Join(dir, "prep-killed")
		old := []string{"prepare", "--in", raw, "--out", prep, "--size", "12", "--split", "0.5,0.25,0.25", "--quiet"}
		args := []string{"prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet"}
		runSolo(t, bin, old...)
		before := snapshot(t, prep, false)
		for try := 1; ; try++ {
			p := start(t, bin, args...)
			staging := fmt.Sprintf("%s.tmp-%d", prep, p.cmd.Process.Pid)
			killed := false
		poll:
			for {
				if ents, _ := os.ReadDir(filepath.Join(staging, "cases")); len(ents) > 0 && p.cmd.Process.Signal(syscall.SIGSTOP) == nil {
					// Stopped with its staging folder and no staged manifest:
					// it has not swapped.
					if _, err := os.Stat(filepath.Join(staging, "manifest.json")); os.IsNotExist(err) {
						killed = p.cmd.Process.Kill() == nil
					} else {
						p.cmd.Process.Signal(syscall.SIGCONT)
					}
					break
				}
				select {
				case <-p.done:
					break poll
				case <-time.After(200 * time.Microsecond):
				}
			}
			p.wait(t)
			if killed {
				t.Logf("killed fess prepare (pid %d) while it staged in %s (try %d)", p.cmd.Process.Pid, staging, try)
				if _, err := os.Stat(staging); err != nil {
					t.Fatalf("no staging folder after the kill: %v", err)
				}
				sameTree(t, "killed prepare", snapshot(t, prep, false), before, "manifest.json")
				break
			}
			if try == 3 {
				t.Fatalf("fess prepare finished before the test could kill it while staging, three times")
			}
			runSolo(t, bin, old...)
		}
		p := start(t, bin, args...)
		if code := p.wait(t); code != 0 {
			t.Fatalf("prepare after the kill exited %d:\n%s", code, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), "removed the stale staging folder of an interrupted prepare") {
			t.Errorf("no note of the removed staging folder:\n%s", p.stderr.String())
		}
		if !strings.HasPrefix(p.stdout.String(), "prepared 8 cases") || !strings.Contains(p.stdout.String(), "16³") {
			t.Errorf("prepare after the kill: %q", p.stdout.String())
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "prep-killed.") {
				t.Errorf("%s left next to the data set", e.Name())
			}
		}
		got := snapshot(t, prep, false)
		os.RemoveAll(prep)
		runSolo(t, bin, args...)
		sameTree(t, "prepare after the kill", got, snapshot(t, prep, false), "manifest.json")
	})

	t.Run("train", func(t *testing.T) {
		prep := filepath.Join(dir, "prep")
		if _, err := os.Stat(filepath.Join(prep, "manifest.json")); err != nil {
			runSolo(t, bin, "prepare", "--in", raw, "--out", prep, "--size", "16", "--split", "0.5,0.25,0.25", "--quiet")
		}
		out := filepath.Join(dir, "run")
		args := []string{"train", "--data", prep, "--out", out, "--epochs", "2", "--filters", "2", "--levels", "2", "--quiet"}
		race(t, bin, out, func() { os.RemoveAll(out) }, args, args)
		got := snapshot(t, out, false)
		if err := os.Rename(out, out+"-raced"); err != nil {
			t.Fatal(err)
		}
		runSolo(t, bin, args...)
		sameTree(t, "train", got, snapshot(t, out, false), "last.safetensors", "best.safetensors", "config.json", "log.jsonl")
	})

	t.Run("experiment", func(t *testing.T) {
		exp := filepath.Join(dir, "exp")
		cfg := filepath.Join(dir, "exp.json")
		body := `{"name": "tiny", "out": "` + filepath.ToSlash(exp) + `",
		  "datasets": [{"name": "brain", "kind": "brain", "cases": 8, "synth_size": 16, "size": 16}],
		  "losses": ["dice"], "seeds": [1],
		  "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2}}`
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"experiment", "--config", cfg, "--quiet"}
		race(t, bin, exp, func() { os.RemoveAll(exp) }, args, args)
		// The experiment synthesises its data anew: the source files'
		// times, and so the manifest's fingerprint, differ.
		got := snapshot(t, exp, true)
		if err := os.Rename(exp, exp+"-raced"); err != nil {
			t.Fatal(err)
		}
		runSolo(t, bin, args...)
		sameTree(t, "experiment", got, snapshot(t, exp, true), "experiment.json", filepath.Join("results", "table.csv"),
			filepath.Join("data", "brain", "prepared", "manifest.json"))
	})
}

//go:build unix

package train

import (
	"bytes"
	"encoding/json"
	"errors"
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

// stopAt returns Options whose Stop channel receives sig once global step
// k (1-based) has been taken.
func stopAt(k int64, sig os.Signal) Options {
	ch := make(chan os.Signal, 1)
	return Options{Stop: ch, afterStep: func(t *Trainer) {
		if t.step+1 == k {
			ch <- sig
		}
	}}
}

// logLines returns log.jsonl's lines without their "seconds" field.
func logLines(t *testing.T, run string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		m := map[string]any{}
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		delete(m, "seconds")
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

func sameLogs(t *testing.T, a, b string) {
	t.Helper()
	la, lb := logLines(t, a), logLines(t, b)
	if strings.Join(la, "\n") != strings.Join(lb, "\n") {
		t.Fatalf("logs differ:\n%s\nvs\n%s", strings.Join(la, "\n"), strings.Join(lb, "\n"))
	}
}

// TestStopResumeBitIdentical stops runs through Options.Stop mid-epoch
// (step 5 of 3-step epochs) and at an epoch's end (step 3), resumes them
// and checks the final checkpoint and the log equal an uninterrupted run's,
// for cube and patch training.
func TestStopResumeBitIdentical(t *testing.T) {
	data := tinyData(t)
	cfgs := map[string]Config{"cube": tinyConfig(data, "fess"), "patch": patchConfig(data, "fess")}
	for _, kind := range []string{"cube", "patch"} {
		cfg := cfgs[kind]
		full := filepath.Join(t.TempDir(), "full")
		runTo(t, cfg, full, Options{})
		for _, c := range []struct {
			at          int64
			sig         os.Signal
			epoch, logs int
			it          int
			code        int
		}{{5, syscall.SIGTERM, 1, 1, 2, 3}, {3, os.Interrupt, 1, 1, 0, 130}, {7, syscall.SIGUSR1, 2, 2, 1, 3}} {
			t.Run(fmt.Sprintf("%s/%d", kind, c.at), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "run")
				tr, err := New(cfg, out, Options{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = tr.Run(stopAt(c.at, c.sig))
				var ie *ErrInterrupted
				if !errors.As(err, &ie) || ie.Step != c.at || ie.Signal != c.sig {
					t.Fatalf("err = %v, want ErrInterrupted at step %d", err, c.at)
				}
				if got := errs.ExitCode(err); got != c.code {
					t.Fatalf("exit code %d, want %d", got, c.code)
				}
				want := fmt.Sprintf("received %s at epoch %d step %d; saved %s; resume with fess train --out %s --resume",
					SignalName(c.sig), ie.Epoch, c.at, filepath.Join(out, LastCheckpoint), out)
				if err.Error() != want {
					t.Fatalf("message %q, want %q", err, want)
				}
				if n := len(logLines(t, out)); n != c.logs {
					t.Fatalf("%d log lines after the stop, want %d", n, c.logs)
				}
				tr, err = New(cfg, out, Options{Resume: true})
				if err != nil {
					t.Fatal(err)
				}
				it := 0
				if tr.pos != nil {
					it = tr.pos.it
				}
				if tr.epoch != c.epoch || tr.step != c.at || it != c.it {
					t.Fatalf("resumed at epoch %d step %d (within the epoch %d), want %d, %d, %d", tr.epoch, tr.step, it, c.epoch, c.at, c.it)
				}
				if _, err := tr.Run(Options{}); err != nil {
					t.Fatal(err)
				}
				sameBits(t, paramsOf(t, filepath.Join(full, LastCheckpoint)), paramsOf(t, filepath.Join(out, LastCheckpoint)))
				sameBits(t, paramsOf(t, filepath.Join(full, BestCheckpoint)), paramsOf(t, filepath.Join(out, BestCheckpoint)))
				sameLogs(t, full, out)
			})
		}
	}
}

// TestSIGTERMProcess sends a real SIGTERM to a training process (through
// NotifyStop) once its first epoch is logged: it saves and exits 3, and the
// resumed run ends bit-identical to an uninterrupted one.
func TestSIGTERMProcess(t *testing.T) {
	cfgOf := func(data string) Config {
		c := tinyConfig(data, "fess")
		c.Epochs = 30
		return c
	}
	if os.Getenv("FESS_SIG_CHILD") != "" {
		stop, release := NotifyStop()
		defer release()
		opts := Options{Stop: stop}
		tr, err := New(cfgOf(os.Getenv("FESS_SIG_DATA")), os.Getenv("FESS_SIG_OUT"), opts)
		if err == nil {
			_, err = tr.Run(opts)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "fess: %v\n", err)
		}
		os.Exit(errs.ExitCode(err))
	}
	data := tinyData(t)
	dir := t.TempDir()
	full, run := filepath.Join(dir, "full"), filepath.Join(dir, "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGTERMProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FESS_SIG_CHILD=1", "FESS_SIG_DATA="+data, "FESS_SIG_OUT="+run)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(run, "log.jsonl"))
		if bytes.Contains(b, []byte("\n")) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no log line within a minute\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit status 3\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "fess: received SIGTERM at epoch ") ||
		!strings.Contains(stderr.String(), "; saved "+filepath.Join(run, LastCheckpoint)+"; resume with fess train --out "+run+" --resume") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
	tr, err := New(cfgOf(data), run, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if tr.epoch >= 30 || tr.step < 3 {
		t.Fatalf("resumed at epoch %d step %d", tr.epoch, tr.step)
	}
	if _, err := tr.Run(Options{}); err != nil {
		t.Fatal(err)
	}
	runTo(t, cfgOf(data), full, Options{})
	sameBits(t, paramsOf(t, filepath.Join(full, LastCheckpoint)), paramsOf(t, filepath.Join(run, LastCheckpoint)))
	sameLogs(t, full, run)
}

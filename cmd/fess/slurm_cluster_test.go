package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// slurmIdle reports whether sinfo answers with an idle (or partly used)
// node, and why not.
func slurmIdle() (bool, string) {
	for _, c := range []string{"sinfo", "sbatch", "squeue", "scancel"} {
		if _, err := exec.LookPath(c); err != nil {
			return false, c + " is not on PATH"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "-h", "-o", "%T").CombinedOutput()
	if err != nil {
		return false, "sinfo failed: " + strings.TrimSpace(string(out))
	}
	for _, s := range strings.Fields(string(out)) {
		if strings.HasPrefix(s, "idle") || strings.HasPrefix(s, "mix") {
			return true, ""
		}
	}
	return false, "no idle node (sinfo -h -o %T: " + strings.TrimSpace(string(out)) + ")"
}

// noSlurmEnv is the environment without the SLURM_ variables of an
// enclosing job (SLURM_CPUS_PER_TASK would change the thread count).
func noSlurmEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SLURM_") {
			env = append(env, e)
		}
	}
	return env
}

// A real Slurm cluster (scripts/slurm-localhost.sh starts a one-node one;
// .ci/run does): fess experiment --slurm --submit runs a 2×2 grid as a job
// array, one running cell is sent USR1 (saved, exit 3, requeued, resumed),
// the aggregation job runs after the array, and its table.md is the same
// bytes as a local run's.
func TestSlurmClusterExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no Slurm cluster test")
	}
	if ok, why := slurmIdle(); !ok {
		t.Skip("no Slurm cluster (" + why + "; start one with scripts/slurm-localhost.sh as root)")
	}
	start := time.Now()
	dir := t.TempDir()
	// An absolute binary the jobs can run (the test binary is not fess).
	fess := filepath.Join(dir, "fess")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", fess, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", fess, time.Since(start).Round(time.Millisecond))

	writeCfg := func(d string) string {
		cfg := filepath.Join(d, "tiny.json")
		body := `{"name": "tiny", "out": "` + filepath.ToSlash(filepath.Join(d, "out")) + `",
		  "datasets": [{"name": "brain", "kind": "brain", "cases": 10, "synth_size": 24, "size": 16}],
		  "losses": ["fess", "dice"], "seeds": [1, 2],
		  "train": {"filters": 2, "levels": 2, "epochs": 1, "batch": 2, "threads": 1}}`
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := writeCfg(dir)
	sdir := filepath.Join(dir, "slurm")
	sub := exec.Command(fess, "experiment", "--config", cfg, "--slurm", sdir, "--submit", "--slurm-opt", "--time=00:10:00 --open-mode=append")
	sub.Env = noSlurmEnv()
	so, err := sub.CombinedOutput()
	if err != nil {
		t.Fatalf("fess experiment --slurm --submit: %v\n%s", err, so)
	}
	mc := regexp.MustCompile(`submitted cells: job (\d+)`).FindSubmatch(so)
	ma := regexp.MustCompile(`submitted aggregation: job (\d+)`).FindSubmatch(so)
	if mc == nil || ma == nil {
		t.Fatalf("no job ids in the --submit output:\n%s", so)
	}
	cells, agg := string(mc[1]), string(ma[1])
	t.Logf("submitted array %s and aggregation %s in %v", cells, agg, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { exec.Command("scancel", cells, agg).Run() })

	logs := filepath.Join(sdir, "logs")
	cellLogs := func() map[string]string {
		m := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(logs, "cell-"+cells+"_*.out"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			task := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "cell-"+cells+"_"), ".out")
			m[task] = string(b)
		}
		return m
	}
	// Wait for both jobs to leave the queue; send USR1 to the first cell
	// whose log shows it training (its batch shell's trap is then set).
	// Once: whether it arrived is read from the log (--open-mode=append
	// keeps the interrupted attempt's lines). scancel may answer "Job can
	// not be altered now" for a task of an array that still has pending
	// tasks although the running task got the signal, and then retries by
	// itself: it gets 5 s.
	preempted := ""
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if time.Now().After(deadline) {
			q, _ := exec.Command("squeue", "-j", cells+","+agg).CombinedOutput()
			t.Fatalf("jobs %s and %s not done after 5 min:\n%s\nlogs: %v", cells, agg, q, cellLogs())
		}
		if preempted == "" {
			for task, l := range cellLogs() {
				if !strings.Contains(l, "to train") || strings.Contains(l, "trained in") {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := exec.CommandContext(ctx, "scancel", "--signal=USR1", "--batch", cells+"_"+task).CombinedOutput()
				cancel()
				if err != nil {
					t.Logf("scancel --signal=USR1 --batch %s_%s: %v %s", cells, task, err, bytes.TrimSpace(out))
				}
				preempted = task
				t.Logf("sent USR1 to task %s_%s at %v", cells, task, time.Since(start).Round(time.Millisecond))
				break
			}
		}
		q, err := exec.Command("squeue", "-h", "-j", cells+","+agg, "-o", "%i %T").CombinedOutput()
		if err == nil && strings.TrimSpace(string(q)) == "" {
			break
		}
		if err != nil && !strings.Contains(string(q), "Invalid job id") {
			t.Logf("squeue: %v %s", err, q)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("array and aggregation done at %v", time.Since(start).Round(time.Millisecond))

	aggLog, _ := os.ReadFile(filepath.Join(logs, "aggregate-"+agg+".out"))
	table, err := os.ReadFile(filepath.Join(dir, "out", "results", "table.md"))
	if err != nil {
		t.Fatalf("the aggregation job wrote no table: %v\naggregation log:\n%s\ncell logs: %v", err, aggLog, cellLogs())
	}
	if !strings.Contains(string(aggLog), "4 complete runs of 4 aggregated") {
		t.Errorf("aggregation log:\n%s", aggLog)
	}
	switch l := cellLogs()[preempted]; {
	case preempted == "":
		t.Log("every cell finished before its log showed it training: none preempted")
	case strings.Contains(l, "interrupted with its state saved; requeueing"):
		t.Logf("task %s_%s was interrupted, requeued and resumed:\n%s", cells, preempted, l)
		if !strings.Contains(l, "1 resumed") && !strings.Contains(l, "trained in") {
			t.Errorf("the requeued task %s did not finish its cell:\n%s", preempted, l)
		}
	default:
		t.Logf("task %s_%s finished before USR1 reached it (too fast to catch):\n%s", cells, preempted, l)
	}

	// A plain local run of the same experiment in another folder.
	dir2 := t.TempDir()
	loc := exec.Command(fess, "experiment", "--config", writeCfg(dir2), "--quiet")
	loc.Env = noSlurmEnv()
	if out, err := loc.CombinedOutput(); err != nil {
		t.Fatalf("local run: %v\n%s", err, out)
	}
	local, err := os.ReadFile(filepath.Join(dir2, "out", "results", "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(table, local) {
		t.Errorf("table.md from the Slurm jobs differs from a local run's:\n%s\nvs\n%s", table, local)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

package experiment

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// Slurm describes the job scripts WriteSlurm writes.
type Slurm struct {
	// Dir receives cells.sbatch, aggregate.sbatch and logs/.
	Dir string
	// Fess is the absolute path of the fess binary the jobs run.
	Fess string
	// Config is the absolute path of the experiment file; Out, if set,
	// the absolute --out given on the command line.
	Config, Out string
	// Cells is the size of the grid: the array is 0-(Cells-1).
	Cells int
	// Threads is the recipe's thread count, the array's --cpus-per-task.
	Threads int
	// Opts are extra sbatch options ("--partition=cpu"), one #SBATCH line
	// each in both scripts.
	Opts []string
	// Name is the experiment's name, for --job-name.
	Name string
}

// reserved are sbatch options WriteSlurm sets itself.
var reserved = []string{"--array", "--output", "--error", "--cpus-per-task", "--requeue", "--no-requeue", "--signal", "--dependency", "--job-name"}

// CheckSlurmOpts refuses pass-through sbatch options that do not start
// with "--" (write "--partition=cpu", not "-p cpu"), that hold characters
// an #SBATCH line cannot carry, or that WriteSlurm sets itself.
func CheckSlurmOpts(opts []string) error {
	for _, o := range opts {
		if !strings.HasPrefix(o, "--") || len(o) == 2 {
			return errs.Usage("experiment: --slurm-opt %q: each sbatch option must start with \"--\" (e.g. --partition=cpu, --time=02:00:00)", o)
		}
		if strings.ContainsAny(o, " \t\r\n'\"\\") {
			return errs.Usage("experiment: --slurm-opt %q: an #SBATCH option cannot hold blanks, quotes or backslashes", o)
		}
		name, _, _ := strings.Cut(o, "=")
		for _, r := range reserved {
			if name == r {
				return errs.Usage("experiment: --slurm-opt %s is set by fess experiment --slurm itself", name)
			}
		}
	}
	return nil
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CellsScript is the job array script's path, AggregateScript the
// aggregation job's.
func (s *Slurm) CellsScript() string     { return filepath.Join(s.Dir, "cells.sbatch") }
func (s *Slurm) AggregateScript() string { return filepath.Join(s.Dir, "aggregate.sbatch") }

func (s *Slurm) fessArgs() string {
	a := shellQuote(s.Fess) + " experiment --config " + shellQuote(s.Config)
	if s.Out != "" {
		a += " --out " + shellQuote(s.Out)
	}
	return a
}

func (s *Slurm) header(b *strings.Builder, job, log string) {
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(b, "#SBATCH --job-name=%s\n", job)
	fmt.Fprintf(b, "#SBATCH --output=%s\n", log)
}

// WriteSlurm writes DIR/cells.sbatch and DIR/aggregate.sbatch and creates
// DIR/logs.
//
// cells.sbatch is a job array, one task per cell. Slurm sends the batch
// shell SIGUSR1 120 s before the time limit (--signal=B:USR1@120); the
// script forwards it (and SIGTERM, as sent on preemption or scancel) to
// fess, which saves the cell's training state and exits 3; the script then
// requeues the task (scontrol requeue $SLURM_JOB_ID, allowed by
// --requeue), and the requeued task resumes the cell from its checkpoint.
// aggregate.sbatch runs --aggregate-only; submitted with
// --dependency=afterany on the array, it runs once every task has ended
// (a requeued task is not ended) and exits 1 listing incomplete cells.
func WriteSlurm(s *Slurm) error {
	if s.Cells < 1 {
		return fmt.Errorf("experiment: the grid has no cells")
	}
	if err := CheckSlurmOpts(s.Opts); err != nil {
		return err
	}
	for _, p := range []string{s.Fess, s.Config, s.Dir} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("experiment: slurm: %s is not an absolute path", p)
		}
	}
	logs := filepath.Join(s.Dir, "logs")
	if strings.ContainsAny(logs, " \t\r\n'\"\\%") {
		return errs.Usage("experiment: --slurm %s: the folder's path cannot hold blanks, quotes, backslashes or %% (it goes on #SBATCH lines)", s.Dir)
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	name := "fess-" + safeName(s.Name)
	threads := max(1, s.Threads)

	var c strings.Builder
	s.header(&c, name, filepath.Join(logs, "cell-%A_%a.out"))
	fmt.Fprintf(&c, "#SBATCH --array=0-%d\n", s.Cells-1)
	fmt.Fprintf(&c, "#SBATCH --cpus-per-task=%d\n", threads)
	c.WriteString("#SBATCH --requeue\n")
	c.WriteString("#SBATCH --signal=B:USR1@120\n")
	for _, o := range s.Opts {
		fmt.Fprintf(&c, "#SBATCH %s\n", o)
	}
	fmt.Fprintf(&c, `
# Written by fess experiment --slurm: one array task per grid cell
# (fess experiment --dry-run lists them). Slurm signals this shell with
# USR1 120 s before the time limit; the trap forwards USR1 and TERM to
# fess, which saves the cell's training state and exits 3, and the task is
# then requeued with scontrol requeue: the requeued task resumes the cell
# from its checkpoint. A complete cell is skipped, so requeueing or
# resubmitting is always safe. Threads: SLURM_CPUS_PER_TASK.
set -u
%s --cell "$SLURM_ARRAY_TASK_ID" --quiet &
pid=$!
trap 'kill -USR1 "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
# A trapped signal interrupts wait (status > 128): wait again until fess ends.
status=0
while :; do
  wait "$pid"
  status=$?
  if [ "$status" -le 128 ] || ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
done
# (bash keeps the status of a child it reaped while the trap ran)
if [ "$status" -gt 128 ] && ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid" 2>/dev/null
  s=$?
  if [ "$s" -ne 127 ]; then status=$s; fi
fi
if [ "$status" -eq 3 ]; then
  echo "fess: cell $SLURM_ARRAY_TASK_ID interrupted with its state saved; requeueing job $SLURM_JOB_ID" >&2
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
`, s.fessArgs())

	var a strings.Builder
	s.header(&a, name+"-aggregate", filepath.Join(logs, "aggregate-%j.out"))
	for _, o := range s.Opts {
		fmt.Fprintf(&a, "#SBATCH %s\n", o)
	}
	fmt.Fprintf(&a, `
# Written by fess experiment --slurm: aggregates the complete cells into
# OUT/results and OUT/report; exits 1 listing the incomplete cells.
# Submitted with --dependency=afterany:<array job id>.
set -u
exec %s --aggregate-only --quiet
`, s.fessArgs())

	if err := os.WriteFile(s.CellsScript(), []byte(c.String()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.AggregateScript(), []byte(a.String()), 0o755)
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/bench"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/train"
)

const benchUsage = `usage: fess bench [--config a,b,c,d] [--json] [--threads 2] [--warmup 2] [--iters 5]
                  [--no-gate] [--memory] [--peer torch.json] [--results fess.json]
                  [--precision fp32|bf16] [--winograd 2|4]

Times the 3-D U-Net training step of the PyTorch peer
(bench/peer/torch_unet3d.py) on this engine: no-grad pass, grad pass, FESS loss (0.5·Dice +
0.5·1e-4·contrastive), backward, gradient clipping to norm 1, Adam.
Configurations (N batch, S³ input, F base filters, L levels):
  a  N2, 32³, F8,  L3, training step
  b  N1, 64³, F16, L4, training step
  c  N2, 64³, F8,  L4, training step
  d  N1, 64³, F32, L4, forward only (inference mode)
  s  N5, 64³, F32, L4, training step of the reference's network (preset seed:
     one conv per encoder level, 1024-channel bottleneck, BatchNorm after each
     up-conv, dropout 0.2); ~7 GB, tens of seconds a step: not in the default list
Each configuration runs in a fresh subprocess (its own peak RSS); after
--warmup untimed steps, --iters timed ones; the median is reported.
Samples during which other processes used CPU are retried as the peer does
(--no-gate keeps every sample). GFLOP/s uses the peer's analytic FLOP count.
--json prints one object per configuration. --peer reads the peer's --json
output and prints a side-by-side table against its fastest variant (with
both peak RSS figures and their ratio);
--results prints the tables from an earlier --json output without running.
--memory runs a single training step (a single forward for d) per
configuration, untimed and ungated, and reports its peak memory: peak RSS,
the buffer pool's peak live and allocated bytes, the Go heap; against
--peer, the ratio to PyTorch's peak RSS (run the peer with
--iters 1 --warmup 0 for a like-for-like figure).

example:
  /usr/bin/python3 bench/peer/torch_unet3d.py --configs a,b,c,d --json /tmp/torch.json
  fess bench --config a,b,c,d --peer /tmp/torch.json`

func init() {
	register("bench", "time the U-Net training step (PyTorch peer's configurations)",
		func(args []string) error { return runBench(args, os.Stdout, os.Stderr) })
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", benchUsage)
	cfgs := fs.String("config", "a,b,c,d", "comma-separated configurations (a, b, c, d, s)")
	asJSON := fs.Bool("json", false, "print JSON (one object per configuration)")
	threads := fs.Int("threads", 2, "worker threads")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	iters := fs.Int("iters", 5, "timed steps (median reported)")
	noGate := fs.Bool("no-gate", false, "keep samples disturbed by other processes")
	memory := fs.Bool("memory", false, "one step per configuration, for its peak memory (no timing)")
	peer := fs.String("peer", "", "the PyTorch peer's --json output, for a side-by-side table")
	prev := fs.String("results", "", "print the tables from an earlier --json output instead of running")
	one := fs.String("one", "", "internal: run one configuration in this process, print JSON")
	cpuprof := fs.String("cpuprofile", "", "with --one: write a CPU profile of the timed steps (after set-up and warm-up) to this file")
	precision := fs.String("precision", "fp32", "GEMM arithmetic: fp32, or bf16 (needs AVX-512-BF16; compared with the peer's keep+bf16 variant)")
	winograd := fs.Int("winograd", 2, "Winograd output tile of the 3×3×3 convolutions: 2 (F(2,3)), or 4 (F(4,3): faster, about ten times the float32 rounding error)")
	if err := parseFlags(fs, benchUsage, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if *threads < 1 || *iters < 1 || *warmup < 0 {
		return errs.Usage("bench: need --threads ≥ 1, --iters ≥ 1, --warmup ≥ 0\n%s", benchUsage)
	}
	if err := train.SetPrecision(*precision); err != nil {
		return err
	}
	if err := train.SetWinograd(*winograd); err != nil {
		return err
	}
	opt := bench.Options{Warmup: *warmup, Iters: *iters, Threads: *threads, Gate: !*noGate && !*memory,
		Memory: *memory}
	if *cpuprof != "" && *one == "" {
		return errs.Usage("bench: --cpuprofile needs --one CONFIG (one configuration in this process)")
	}
	if *one != "" {
		c, ok := bench.Lookup(*one)
		if !ok {
			return errs.Usage("bench: unknown configuration %q", *one)
		}
		var perr error
		if *cpuprof != "" {
			// the timed steps alone (bench.Options.Timed)
			f, err := os.Create(*cpuprof)
			if err != nil {
				return errs.Usage("bench: --cpuprofile: %v", err)
			}
			defer f.Close()
			opt.Timed = func() func() {
				if perr = pprof.StartCPUProfile(f); perr != nil {
					return func() {}
				}
				return pprof.StopCPUProfile
			}
		}
		r, err := bench.Run(c, opt)
		if err != nil {
			return err
		}
		if perr != nil {
			return fmt.Errorf("bench: --cpuprofile: %v", perr)
		}
		r.Precision = kernels.Precision().String()
		r.Winograd = autodiff.Winograd()
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "@@JSON@@%s\n", b)
		return nil
	}
	var list []bench.Config
	for _, n := range strings.Split(*cfgs, ",") {
		c, ok := bench.Lookup(strings.TrimSpace(n))
		if !ok {
			return errs.Usage("bench: unknown configuration %q (want a, b, c, d or s)\n%s", n, benchUsage)
		}
		list = append(list, c)
	}
	var peerRows []peerRow
	if *peer != "" {
		b, err := os.ReadFile(*peer)
		if err != nil {
			return errs.Input(*peer, "%v", err)
		}
		if err := json.Unmarshal(b, &peerRows); err != nil {
			return errs.Input(*peer, "not the peer's --json output: %v", err)
		}
	}
	var results []*bench.Result
	if *prev != "" {
		b, err := os.ReadFile(*prev)
		if err != nil {
			return errs.Input(*prev, "%v", err)
		}
		if err := json.Unmarshal(b, &results); err != nil {
			return errs.Input(*prev, "not fess bench --json output: %v", err)
		}
		list = nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for _, c := range list {
		if opt.Gate {
			if fc, waited := bench.WaitQuiet(120*time.Second, 0.15, time.Second); waited > 1500*time.Millisecond {
				fmt.Fprintf(stderr, "(waited %.0fs for a quiet machine; foreign load now %.2f cores)\n",
					waited.Seconds(), fc)
			}
		}
		cmd := exec.Command(exe, "bench", "--one", c.Name, "--threads", strconv.Itoa(*threads),
			"--warmup", strconv.Itoa(*warmup), "--iters", strconv.Itoa(*iters))
		if *noGate {
			cmd.Args = append(cmd.Args, "--no-gate")
		}
		if *memory {
			cmd.Args = append(cmd.Args, "--memory")
		}
		cmd.Args = append(cmd.Args, "--precision", *precision, "--winograd", strconv.Itoa(*winograd))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench: configuration %s: %v", c.Name, err)
		}
		var r bench.Result
		found := false
		for _, l := range strings.Split(out.String(), "\n") {
			if s, ok := strings.CutPrefix(l, "@@JSON@@"); ok {
				if err := json.Unmarshal([]byte(s), &r); err != nil {
					return fmt.Errorf("bench: configuration %s: %v", c.Name, err)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("bench: configuration %s printed no result", c.Name)
		}
		if !*asJSON {
			fmt.Fprintln(stdout, r.String())
		}
		results = append(results, &r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(results)
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, benchTable(results))
	if len(peerRows) > 0 {
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, sideBySide(results, peerRows))
	}
	return nil
}

func benchTable(rs []*bench.Result) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| cfg | N | S³ | F | L | params | step GFLOP | step med s | step min s | GFLOP/s | fwd med s | fwd GFLOP/s | peak RSS MiB | allocs/step | MiB alloc/step | clean/tries |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		g := r.FwdGFLOP
		if r.Train {
			g = r.TrainGFLOP
		}
		noisy := ""
		if r.Noisy {
			noisy = " NOISY"
		}
		fmt.Fprintf(&b, "| %s%s | %d | %d³ | %d | %d | %d | %.2f | %.3f | %.3f | %.1f | %.3f | %.1f | %.0f | %.0f | %.1f | %d/%d%s |\n",
			r.Config, map[bool]string{true: "", false: " (fwd)"}[r.Train], r.N, r.S, r.F, r.L, r.Params, g,
			r.StepMedian, r.StepMin, r.GFLOPs, r.FwdMedian, r.FwdGFLOPs, r.PeakRSSMiB, r.AllocsPerStep,
			r.AllocMiBPerStep, r.StepClean, r.StepAttempts, noisy)
	}
	return b.String()
}

// peerRow is the part of the peer's JSON rows the comparison uses.
type peerRow struct {
	Config     string  `json:"config"`
	Variant    string  `json:"variant"`
	TrainMed   float64 `json:"train_med"`
	FwdMed     float64 `json:"fwd_med"`
	TrainGFLOP float64 `json:"train_gflop"`
	FwdGFLOP   float64 `json:"fwd_gflop"`
	MaxRSS     float64 `json:"maxrss_mib"`
	Threads    int     `json:"threads"`
}

// sideBySide compares each result with the peer's fastest variant of the
// same configuration (training step for a–c, forward for d).
func sideBySide(rs []*bench.Result, peer []peerRow) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| cfg | what | fess s | PyTorch s (variant) | fess/PyTorch | fess GFLOP/s | PyTorch GFLOP/s | fess RSS MiB | PyTorch RSS MiB (that variant) | RSS fess/PyTorch (lowest PyTorch RSS) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		var best *peerRow
		bestT, lowRSS := 0.0, 0.0
		for i := range peer {
			p := &peer[i]
			// bf16 against the peer's bfloat16 autocast, fp32 against its
			// fp32 variants only.
			if p.Config != r.Config || (p.Variant == "keep+bf16") != (r.Precision == "bf16") {
				continue
			}
			if p.MaxRSS > 0 && (lowRSS == 0 || p.MaxRSS < lowRSS) {
				lowRSS = p.MaxRSS
			}
			t := p.FwdMed
			if r.Train {
				t = p.TrainMed
			}
			if t > 0 && (best == nil || t < bestT) {
				best, bestT = p, t
			}
		}
		what := "train step"
		if !r.Train {
			what = "forward"
		}
		if r.Precision == "bf16" {
			what += " bf16"
		}
		if r.Winograd == 4 {
			what += " F(4,3)"
		}
		ratio := "–"
		if lowRSS > 0 {
			ratio = fmt.Sprintf("%.2f (%.0f)", r.PeakRSSMiB/lowRSS, lowRSS)
		}
		if best == nil {
			fmt.Fprintf(&b, "| %s | %s | %.3f | – | – | %.1f | – | %.0f | – | %s |\n", r.Config, what, r.StepMedian,
				r.GFLOPs, r.PeakRSSMiB, ratio)
			continue
		}
		g := best.FwdGFLOP
		if r.Train {
			g = best.TrainGFLOP
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f (%s) | %.2f | %.1f | %.1f | %.0f | %.0f | %s |\n", r.Config, what,
			r.StepMedian, bestT, best.Variant, r.StepMedian/bestT, r.GFLOPs, g/bestT, r.PeakRSSMiB, best.MaxRSS, ratio)
	}
	return b.String()
}

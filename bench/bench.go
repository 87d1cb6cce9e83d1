// Package bench times the engine on the U-Net training step of the
// PyTorch peer (bench/peer/torch_unet3d.py), configuration by
// configuration, so `fess bench` and the peer print comparable numbers.
//
// The timed training step is the peer's, operation for operation:
//
//	a := bottleneck of a no-grad forward (training mode: batch statistics,
//	     running statistics updated)
//	probs, b := forward with gradient (training mode)
//	loss := 0.5·Dice(probs, mask) + 0.5·1e-4·ContrastiveFESS(a, b)   (T = 0.5)
//	zero the gradients; backward; clip the global norm to 1.0; Adam (lr 1e-4)
//
// on the peer's network: for configurations a–d the unet3d preset with
// NoUpBN (the peer has no BatchNorm after the up-sampling convs), dropout
// 0; for s the seed preset (the reference's network: one conv per encoder
// level, a 1024-channel bottleneck, BatchNorm after each up-conv, dropout
// 0.2), the peer's SeedUNet layer for layer. The forward-only time is
// an inference-mode (running statistics) forward without a tape. Inputs are
// standard-normal voxels and a random binary mask (fixed seeds; the values do
// not change the work done). Both passes run on arena tapes
// (autodiff.NewArenaTape, NewNoGradArena): op outputs and intermediate
// gradients are pooled buffers reused from step to step.
//
// FLOP counts are the peer's analytic ones (AnalyticFLOPs): 2·MACs of every
// conv and transposed conv of one forward; a training step counts
// 4·forward − first conv (no-grad pass + grad pass + backward at twice the
// forward, minus the first conv's input gradient, which is not computed).
//
// Samples during which other processes used CPU are discarded and retried,
// with the peer's rule (Gated): a sample is clean when other processes used
// at most one scheduler tick plus 5 % of one core over its wall time.
package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/loss"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/tensor"
)

// Config is one benchmark configuration: batch N, cube side S, base filters
// F, levels L, and whether the training step is timed (else forward only).
// Seed selects the reference's network (model preset "seed": one conv per
// encoder level, bottleneck of Cb channels, BatchNorm after each up-conv,
// dropout 0.2) instead of the peer's default double-conv U-Net.
type Config struct {
	Name        string
	N, S, F, L  int
	Train       bool
	Description string
	Seed        bool
	Cb          int // bottleneck channels; 0 = F·2^L
}

// Configs are the peer's configurations a–d and s (see
// bench/peer/torch_unet3d.py).
var Configs = []Config{
	{"a", 2, 32, 8, 3, true, "N2, 32³, F8, 3 levels, training step", false, 0},
	{"b", 1, 64, 16, 4, true, "N1, 64³, F16, 4 levels, training step", false, 0},
	{"c", 2, 64, 8, 4, true, "N2, 64³, F8, 4 levels, training step", false, 0},
	{"d", 1, 64, 32, 4, false, "N1, 64³, F32, 4 levels, forward only", false, 0},
	{"s", 5, 64, 32, 4, true, "N5, 64³, F32, 4 levels, seed network (Cb 1024, dropout 0.2), training step", true, 1024},
}

// EncConvs returns the convs per encoder level (1 for the seed network).
func (c Config) EncConvs() int {
	if c.Seed {
		return 1
	}
	return 2
}

// FLOPs returns AnalyticFLOPsNet for c's network.
func (c Config) FLOPs() (total, first int64) {
	return AnalyticFLOPsNet(c.N, c.S, c.F, c.L, c.EncConvs(), c.Cb)
}

// TrainFLOPs returns the peer's training-step count 4·forward − first for c.
func (c Config) TrainFLOPs() int64 {
	f, first := c.FLOPs()
	return 4*f - first
}

// ModelConfig returns the model configuration that is the peer's network
// for c: preset unet3d without the up-conv BatchNorm and no dropout for
// a–d, preset seed (its defaults: dropout 0.2, Keras initialisation) with
// Cb bottleneck channels for s.
func (c Config) ModelConfig() model.Config {
	if c.Seed {
		return model.Config{Preset: "seed", Filters: c.F, Levels: c.L, InputSize: c.S, BottleneckChannels: c.Cb}
	}
	return model.Config{Preset: "unet3d", Filters: c.F, Levels: c.L, InputSize: c.S, NoUpBN: true, Dropout: -1}
}

// Lookup returns the configuration named name.
func Lookup(name string) (Config, bool) {
	for _, c := range Configs {
		if c.Name == name {
			return c, true
		}
	}
	return Config{}, false
}

// AnalyticFLOPs returns the forward FLOPs (2·MACs) of every conv and
// transposed conv of the peer's U-Net (one input and one output channel),
// and those of the first conv alone. Bias, BatchNorm, ReLU, pooling and the
// sigmoid are not counted. Per level i (side s = S/2^i, c_i = F·2^i):
// encoder 27·s³·(c_in·c_i + c_i²); bottleneck likewise at S/2^L with
// F·2^L; decoder: transposed conv s³·c_{i+1}·c_i (one MAC per output voxel
// per channel pair) + 27·s³·(2c_i·c_i + c_i²); head S³·F.
func AnalyticFLOPs(N, S, F, L int) (total, first int64) {
	return AnalyticFLOPsNet(N, S, F, L, 2, 0)
}

// AnalyticFLOPsNet is AnalyticFLOPs for the peer's analytic_flops with its
// enc_convs and cb arguments: encConvs convs per encoder level (1 for the
// seed network: 27·s³·c_in·c_i only) and a bottleneck of cb channels
// (0: F·2^L).
func AnalyticFLOPsNet(N, S, F, L, encConvs, cb int) (total, first int64) {
	var macs int64
	n := int64(N)
	c := int64(1)
	first = -1
	for i := 0; i < L; i++ {
		v := int64(S>>i) * int64(S>>i) * int64(S>>i)
		co := int64(F) << i
		m1 := n * v * c * co * 27
		if first < 0 {
			first = m1
		}
		macs += m1 + int64(encConvs-1)*n*v*co*co*27
		c = co
	}
	v := int64(S>>L) * int64(S>>L) * int64(S>>L)
	co := int64(F) << L
	if cb > 0 {
		co = int64(cb)
	}
	macs += n*v*c*co*27 + n*v*co*co*27
	c = co
	for i := L - 1; i >= 0; i-- {
		v := int64(S>>i) * int64(S>>i) * int64(S>>i)
		co := int64(F) << i
		macs += n * v * c * co
		macs += n*v*(2*co)*co*27 + n*v*co*co*27
		c = co
	}
	macs += n * int64(S) * int64(S) * int64(S) * c
	return 2 * macs, 2 * first
}

// TrainFLOPs returns the peer's training-step FLOP count 4·forward − first.
func TrainFLOPs(N, S, F, L int) int64 {
	f, first := AnalyticFLOPs(N, S, F, L)
	return 4*f - first
}

// Options controls one configuration's run.
type Options struct {
	Warmup, Iters int
	Threads       int
	Gate          bool // discard samples disturbed by other processes
	// Memory runs one untimed-gate training step (one forward for
	// forward-only configurations) and nothing else, for its peak memory:
	// Warmup, Iters and Gate are ignored and the forward-only timing is
	// skipped.
	Memory bool
	// Timed, if set, runs just before the timed steps (the training steps,
	// or the forward passes of a forward-only configuration), and the
	// function it returns just after them: `fess bench --cpuprofile`
	// profiles those steps alone, without the set-up and warm-up.
	Timed func() (done func())
}

// timed runs o.Timed's hooks around fn.
func (o Options) timed(fn func()) {
	if o.Timed != nil {
		defer o.Timed()()
	}
	fn()
}

// Result is one configuration's measurements (JSON field names are what
// `fess bench --json` prints).
type Result struct {
	Config             string             `json:"config"`
	N                  int                `json:"N"`
	S                  int                `json:"S"`
	F                  int                `json:"F"`
	L                  int                `json:"L"`
	Train              bool               `json:"train"`
	Params             int                `json:"params"`
	Threads            int                `json:"threads"`
	Kernel             string             `json:"kernel"`
	Precision          string             `json:"precision,omitempty"` // GEMM arithmetic: fp32 or bf16
	Winograd           int                `json:"winograd,omitempty"`  // Winograd output tile: 2 (F(2,3)) or 4 (F(4,3))
	FwdGFLOP           float64            `json:"fwd_gflop"`
	TrainGFLOP         float64            `json:"train_gflop,omitempty"`
	StepMedian         float64            `json:"step_seconds_median"` // training step, or the forward for forward-only configs
	StepMin            float64            `json:"step_seconds_min"`
	StepAll            []float64          `json:"step_seconds_all"`
	StepClean          int                `json:"step_clean"`
	StepAttempts       int                `json:"step_attempts"`
	Phases             map[string]float64 `json:"phases_median,omitempty"`
	FwdMedian          float64            `json:"forward_seconds_median"`
	FwdMin             float64            `json:"forward_seconds_min"`
	FwdAll             []float64          `json:"forward_seconds_all"`
	FwdClean           int                `json:"forward_clean"`
	FwdAttempts        int                `json:"forward_attempts"`
	GFLOPs             float64            `json:"gflops"`         // step GFLOP / step median
	FwdGFLOPs          float64            `json:"forward_gflops"` // forward GFLOP / forward median
	PeakRSSMiB         float64            `json:"peak_rss_mib"`
	AllocsPerStep      float64            `json:"allocs_per_step"`
	AllocMiBPerStep    float64            `json:"alloc_mib_per_step"`
	MinorFaultsPerStep float64            `json:"minor_faults_per_step"`
	LossFirst          float64            `json:"loss_first,omitempty"`
	LossLast           float64            `json:"loss_last,omitempty"`
	Noisy              bool               `json:"noisy"` // too few clean samples: all samples used
	// Memory: only one step was run (Options.Memory); the timings are that
	// one step's.
	Memory bool `json:"memory_only,omitempty"`
	// The arena buffer pool (autodiff.ReadPoolStats) at the end: the most
	// bytes handed out at once during the steps, and the address range it
	// has handed out (the most of it that can be resident).
	PoolPeakMiB  float64 `json:"pool_peak_live_mib"`
	PoolTotalMiB float64 `json:"pool_total_mib"`
	// Go runtime (the pool's slabs are outside its heap): the most heap in
	// use seen after a step, and all the memory it took from the OS
	// (runtime.MemStats HeapInuse, Sys).
	HeapInuseMiB float64 `json:"heap_inuse_mib"`
	GoSysMiB     float64 `json:"go_sys_mib"`
}

// Batch returns configuration c's input batch (standard normal voxels)
// and target (each voxel 1 with probability 1/2), [N,S,S,S,1], the same
// on every call.
func (c Config) Batch() (x, y *tensor.Tensor) {
	rng := rand.New(rand.NewPCG(1, 2))
	x = tensor.New(c.N, c.S, c.S, c.S, 1)
	y = tensor.New(c.N, c.S, c.S, c.S, 1)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
		if rng.Float64() > 0.5 {
			y.Data[i] = 1
		}
	}
	return x, y
}

// Run builds configuration c's network and inputs and times it.
func Run(c Config, o Options) (*Result, error) {
	if o.Iters < 1 {
		o.Iters = 1
	}
	if o.Memory {
		o.Warmup, o.Iters, o.Gate = 0, 1, false
	}
	if o.Threads < 1 {
		o.Threads = 1
	}
	tensor.SetThreads(o.Threads)
	kernels.SetThreads(o.Threads)
	m, err := model.New(c.ModelConfig())
	if err != nil {
		return nil, err
	}
	x, y := c.Batch()
	xv, yv := autodiff.Const(x), autodiff.Const(y)
	params := m.Params()
	np := 0
	for _, p := range params {
		np += p.Value.Len()
	}
	fwd, _ := c.FLOPs()
	r := &Result{Config: c.Name, N: c.N, S: c.S, F: c.F, L: c.L, Train: c.Train, Params: np,
		Threads: o.Threads, Kernel: kernels.KernelName(), FwdGFLOP: float64(fwd) / 1e9, Memory: o.Memory}
	autodiff.ResetPoolPeak()
	var heapInuse uint64
	noteHeap := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapInuse = max(heapInuse, ms.HeapInuse)
	}
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage

	if c.Train {
		r.TrainGFLOP = float64(c.TrainFLOPs()) / 1e9
		opt := optim.NewAdam(1e-4)
		fopt := loss.DefaultFESSOptions()
		tp, ng := autodiff.NewArenaTape(), autodiff.NewNoGradArena()
		type phases [4]float64
		var last float64
		step := func() phases {
			t0 := time.Now()
			pa, a := m.Forward(ng, xv, true)
			ng.Free(pa) // only the bottleneck is used
			t1 := time.Now()
			probs, b := m.Forward(tp, xv, true)
			l := loss.FESS(tp, probs, yv, a, b, fopt).Total
			t2 := time.Now()
			optim.ZeroGrad(params)
			tp.Backward(l)
			t3 := time.Now()
			last = float64(l.Item())
			optim.ClipGradNorm(params, 1)
			opt.Step(params)
			if o.Memory {
				noteHeap()
			}
			tp.Reset()
			ng.Reset()
			t4 := time.Now()
			return phases{t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t3.Sub(t2).Seconds(), t4.Sub(t3).Seconds()}
		}
		for i := 0; i < o.Warmup; i++ {
			step()
			if i == 0 {
				r.LossFirst = last
			}
		}
		runtime.ReadMemStats(&ms0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		var clean, all []Sample
		o.timed(func() { clean, all = Gated(o.Gate, o.Iters, func() any { return step() }) })
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		runtime.ReadMemStats(&ms1)
		if o.Warmup == 0 {
			r.LossFirst = last
		}
		r.LossLast = last
		k := float64(len(all))
		r.AllocsPerStep = float64(ms1.Mallocs-ms0.Mallocs) / k
		r.AllocMiBPerStep = float64(ms1.TotalAlloc-ms0.TotalAlloc) / k / (1 << 20)
		r.MinorFaultsPerStep = float64(ru1.Minflt-ru0.Minflt) / k
		use, noisy := pick(clean, all, o.Iters)
		r.StepAll, r.StepMedian, r.StepMin = walls(use), median(walls(use)), slices.Min(walls(use))
		r.StepClean, r.StepAttempts, r.Noisy = len(clean), len(all), noisy
		names := []string{"nograd_fwd", "grad_fwd+loss", "backward", "clip+adam"}
		r.Phases = map[string]float64{}
		for j, nm := range names {
			var v []float64
			for _, s := range use {
				v = append(v, s.Out.(phases)[j])
			}
			r.Phases[nm] = median(v)
		}
		r.GFLOPs = r.TrainGFLOP / r.StepMedian
	}

	if c.Train && o.Memory {
		r.finishMemory(heapInuse)
		return r, nil
	}
	fa := autodiff.NewNoGradArena()
	fw := func() any {
		m.Forward(fa, xv, false)
		if o.Memory {
			noteHeap()
		}
		fa.Reset()
		return nil
	}
	for i := 0; i < o.Warmup; i++ {
		fw()
	}
	if !c.Train {
		runtime.ReadMemStats(&ms0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	}
	var clean, all []Sample
	if c.Train {
		clean, all = Gated(o.Gate, o.Iters, fw)
	} else {
		o.timed(func() { clean, all = Gated(o.Gate, o.Iters, fw) })
	}
	if !c.Train {
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		runtime.ReadMemStats(&ms1)
		k := float64(len(all))
		r.AllocsPerStep = float64(ms1.Mallocs-ms0.Mallocs) / k
		r.AllocMiBPerStep = float64(ms1.TotalAlloc-ms0.TotalAlloc) / k / (1 << 20)
		r.MinorFaultsPerStep = float64(ru1.Minflt-ru0.Minflt) / k
	}
	use, noisy := pick(clean, all, o.Iters)
	r.FwdAll, r.FwdMedian, r.FwdMin = walls(use), median(walls(use)), slices.Min(walls(use))
	r.FwdClean, r.FwdAttempts = len(clean), len(all)
	r.FwdGFLOPs = r.FwdGFLOP / r.FwdMedian
	if !c.Train {
		r.StepAll, r.StepMedian, r.StepMin = r.FwdAll, r.FwdMedian, r.FwdMin
		r.StepClean, r.StepAttempts, r.Noisy = r.FwdClean, r.FwdAttempts, noisy
		r.GFLOPs = r.FwdGFLOPs
	}
	r.finishMemory(heapInuse)
	return r, nil
}

// finishMemory records the peak RSS, the pool's accounting and the Go
// runtime's memory.
func (r *Result) finishMemory(heapInuse uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.PeakRSSMiB = PeakRSSMiB()
	ps := autodiff.ReadPoolStats()
	r.PoolPeakMiB, r.PoolTotalMiB = float64(ps.Peak)/(1<<20), float64(ps.Total)/(1<<20)
	r.HeapInuseMiB = float64(max(heapInuse, ms.HeapInuse)) / (1 << 20)
	r.GoSysMiB = float64(ms.Sys) / (1 << 20)
}

// pick returns the clean samples when there are at least min(3, iters) of
// them (as the peer does), else all samples and noisy = true.
func pick(clean, all []Sample, iters int) ([]Sample, bool) {
	if len(clean) >= max(1, min(3, iters)) {
		return clean, false
	}
	return all, len(clean) < len(all)
}

func walls(s []Sample) []float64 {
	w := make([]float64, len(s))
	for i, v := range s {
		w[i] = v.Wall
	}
	return w
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PeakRSSMiB returns the process's peak resident set size (getrusage
// ru_maxrss, KiB on Linux) in MiB.
func PeakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// String formats a result as one line.
func (r *Result) String() string {
	s := fmt.Sprintf("config %s: fwd med %.3fs (%.1f GFLOP/s, %d clean of %d)", r.Config, r.FwdMedian,
		r.FwdGFLOPs, r.FwdClean, r.FwdAttempts)
	if r.Train {
		s += fmt.Sprintf("; train step med %.3fs min %.3fs (%.1f GFLOP/s, %d clean of %d)", r.StepMedian,
			r.StepMin, r.GFLOPs, r.StepClean, r.StepAttempts)
	}
	if r.Memory {
		what := "training step"
		if !r.Train {
			what = "forward"
		}
		return fmt.Sprintf("config %s: one %s (%.1fs): peak RSS %.0f MiB; buffer pool peak live %.0f MiB of %.0f MiB touched; "+
			"Go heap in use %.0f MiB, from the OS %.0f MiB; %.1f MiB allocated on the Go heap", r.Config, what, r.StepMedian,
			r.PeakRSSMiB, r.PoolPeakMiB, r.PoolTotalMiB, r.HeapInuseMiB, r.GoSysMiB, r.AllocMiBPerStep)
	}
	return s + fmt.Sprintf("; peak RSS %.0f MiB; %.0f allocs, %.1f MiB allocated per step", r.PeakRSSMiB,
		r.AllocsPerStep, r.AllocMiBPerStep)
}

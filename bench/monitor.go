package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is the kernel's clock tick for /proc/stat (USER_HZ, 100 on Linux).
const clkTck = 100

// Sample is one timed call: its wall seconds, the CPU other processes used
// meanwhile (in cores) and its position among all attempts.
type Sample struct {
	Wall         float64
	ForeignCores float64
	Out          any // fn's return value
}

// sysBusy returns the machine's busy CPU seconds (all of /proc/stat's first
// line except idle and iowait); ok is false where /proc/stat is unreadable.
func sysBusy() (float64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, false
	}
	fs := strings.Fields(sc.Text())
	if len(fs) < 9 || fs[0] != "cpu" {
		return 0, false
	}
	var v [8]int64
	for i := range v {
		v[i], err = strconv.ParseInt(fs[i+1], 10, 64)
		if err != nil {
			return 0, false
		}
	}
	var sum int64
	for _, x := range v {
		sum += x
	}
	return float64(sum-v[3]-v[4]) / clkTck, true
}

// ownCPU returns this process's user+system CPU seconds.
func ownCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// measure runs fn and returns its wall seconds and the CPU seconds other
// processes used meanwhile (busy machine time minus ours, floored at 0).
func measure(fn func()) (wall, foreign float64) {
	b0, ok0 := sysBusy()
	o0 := ownCPU()
	t0 := time.Now()
	fn()
	wall = time.Since(t0).Seconds()
	b1, ok1 := sysBusy()
	o1 := ownCPU()
	if ok0 && ok1 {
		foreign = max(0, (b1-b0)-(o1-o0))
	}
	return wall, foreign
}

// WaitQuiet waits (at most maxWait) until other processes use less than
// thresh cores over a window, and returns the last foreign load and the time
// waited.
func WaitQuiet(maxWait time.Duration, thresh float64, window time.Duration) (float64, time.Duration) {
	t0 := time.Now()
	for {
		w, f := measure(func() { time.Sleep(window) })
		fc := f / w
		if fc < thresh || time.Since(t0) > maxWait {
			return fc, time.Since(t0)
		}
	}
}

// Gated runs fn until n clean samples are collected or 4n+4 attempts are
// made, as the peer's gated(): a sample is clean when other processes used
// at most one clock tick plus 5 % of one core over its wall time; after a
// disturbed sample it waits for a quiet machine and re-warms with one
// untimed call. Without gate every sample counts as clean.
func Gated(gate bool, n int, fn func() any) (clean, all []Sample) {
	needWait := true
	for attempts := 0; len(clean) < n && attempts < 4*n+4; attempts++ {
		if gate && needWait {
			WaitQuiet(60*time.Second, 0.05, 500*time.Millisecond)
			fn()
		}
		var out any
		wall, foreign := measure(func() { out = fn() })
		s := Sample{Wall: wall, ForeignCores: foreign / wall, Out: out}
		all = append(all, s)
		ok := foreign <= 1.0/clkTck+0.05*wall
		needWait = !ok
		if !gate || ok {
			clean = append(clean, s)
		}
	}
	return clean, all
}

package infer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// anchorEnv reads an integer setting of the sliding-window speed anchor.
func anchorEnv(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// anchorConfig is the network of bench/peer/sliding_window_anchor.sh: the
// peer's default stand-in (unet3d without the up-sampling BatchNorm, F=16,
// 4 levels, 4 channels in, 3 regions out) unless FESS_SW_* say otherwise.
func anchorConfig(t *testing.T) (model.Config, [3]int) {
	cfg := model.Config{Preset: "unet3d", Filters: anchorEnv(t, "FESS_SW_FILTERS", 16), Levels: anchorEnv(t, "FESS_SW_LEVELS", 4),
		InputSize: anchorEnv(t, "FESS_SW_PATCH", 128), InChannels: anchorEnv(t, "FESS_SW_CHANNELS", 4),
		OutChannels: anchorEnv(t, "FESS_SW_OUT_CHANNELS", 3), NoUpBN: true, Dropout: -1, Seed: 1}
	shape := os.Getenv("FESS_SW_SHAPE")
	if shape == "" {
		shape = "240,240,155"
	}
	var dims [3]int
	parts := strings.Split(shape, ",")
	if len(parts) != 3 {
		t.Fatalf("FESS_SW_SHAPE=%q: want X,Y,Z", shape)
	}
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			t.Fatalf("FESS_SW_SHAPE=%q: %v", shape, err)
		}
		dims[i] = v
	}
	return cfg, dims
}

// TestSlidingWindowAnchor is the fess side of
// bench/peer/sliding_window_anchor.sh; it skips unless FESS_SW_ANCHOR_DIR
// is set. FESS_SW_STEP=export writes a randomly initialised network (BatchNorm
// statistics perturbed) as w.safetensors and a seeded Gaussian case as
// x.npy (C×X×Y×Z) into the directory; FESS_SW_STEP=run loads both, times
// Probabilities once with FESS_SW_THREADS engine threads (FESS_SW_TTA=1 for
// mirroring), prints seconds, windows and peak RSS (VmHWM, reset after the
// case is loaded where the kernel allows and read right after the timed
// call; load_peak_rss_mib is the peak while loading) as JSON and writes the probabilities as
// fess_tta<0|1>.npy (K×X×Y×Z).
func TestSlidingWindowAnchor(t *testing.T) {
	dir := os.Getenv("FESS_SW_ANCHOR_DIR")
	if dir == "" {
		t.Skip("FESS_SW_ANCHOR_DIR not set (bench/peer/sliding_window_anchor.sh sets it)")
	}
	cfg, dims := anchorConfig(t)
	wf, xf := filepath.Join(dir, "w.safetensors"), filepath.Join(dir, "x.npy")
	vox := dims[0] * dims[1] * dims[2]
	switch step := os.Getenv("FESS_SW_STEP"); step {
	case "export":
		m := newModel(t, cfg)
		js, _ := json.Marshal(m.Cfg)
		if err := m.WriteTorchFile(wf, map[string]string{"config": string(js), "fess_version": "sliding-window-anchor", "format": "pt", "outputs": "logits"}); err != nil {
			t.Fatal(err)
		}
		if err := writeNPY(xf, []int{cfg.InChannels, dims[0], dims[1], dims[2]}, randCase(2, cfg.InChannels*vox)); err != nil {
			t.Fatal(err)
		}
	case "run":
		tensor.SetThreads(anchorEnv(t, "FESS_SW_THREADS", 2))
		m, err := model.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.LoadTorchFile(wf); err != nil {
			t.Fatal(err)
		}
		shape, x, err := readNPY(xf)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != 4 || shape[0] != cfg.InChannels || shape[1] != dims[0] || shape[2] != dims[1] || shape[3] != dims[2] {
			t.Fatalf("x.npy has shape %v", shape)
		}
		img := fromCXYZ(x, cfg.InChannels, dims)
		x = nil
		loadHWM := readHWM()
		// Reset VmHWM (Linux ≥ 4.0) so that peak_rss_mib covers the
		// inference with the case resident, not the transient second copy
		// made while loading it; load_peak_rss_mib keeps the earlier peak.
		runtime.GC()
		debug.FreeOSMemory()
		reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		tta := os.Getenv("FESS_SW_TTA") == "1"
		opt := Options{Patch: [3]int{cfg.InputSize, cfg.InputSize, cfg.InputSize}, Overlap: 0.5, TTA: tta}
		t0 := time.Now()
		p, err := Probabilities(m, img, dims, opt)
		sec := time.Since(t0).Seconds()
		hwm := readHWM()
		if err != nil {
			t.Fatal(err)
		}
		windows := 1
		for a := range dims {
			windows *= len(Starts(max(dims[a], cfg.InputSize), cfg.InputSize, 0.5))
		}
		res := map[string]any{"tool": "fess", "shape": dims, "channels": cfg.InChannels, "patch": cfg.InputSize, "overlap": 0.5,
			"tta": tta, "filters": cfg.Filters, "levels": cfg.Levels, "threads": tensor.Threads(), "windows": windows,
			"seconds": sec, "peak_rss_mib": hwm, "load_peak_rss_mib": loadHWM, "peak_reset_after_load": reset}
		js, _ := json.Marshal(res)
		fmt.Println(string(js))
		name := "fess_tta0.npy"
		if tta {
			name = "fess_tta1.npy"
		}
		K := cfg.OutChannels
		if err := writeNPY(filepath.Join(dir, name), []int{K, dims[0], dims[1], dims[2]}, toCXYZ(p, K, dims)); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("FESS_SW_STEP=%q: want export or run", step)
	}
}

package autodiff

import (
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/internal/workers"
	"github.com/fess-seg/fess/tensor"
)

// Toggles lets the A/B benchmarks (ab_bench_test.go, package
// autodiff_test) switch the engine's optional paths between steps.
var Toggles = map[string]func(on bool){
	"convcat": func(on bool) { useConvCat = on },
	"conv1":   func(on bool) { useConv1 = on },
	"dynamic": func(on bool) { tensor.SetDynamic(on) },
	"up2":     func(on bool) { useUp2 = on },
	"spin":    func(on bool) { workers.SetEnabled(on) },
	"ucache":  func(on bool) { useUCache = on },
	// off: a row-major A's partial last panel packed, not read in place
	"overread": func(on bool) { kernels.SetOverread(on) },
	// off: the AVX2 6×16 GEMM kernel for 9–16 columns on AVX-512 CPUs
	"mid512": func(on bool) { kernels.SetAVX512Mid(on) },
	// off: the AVX2 kernels only (FESS_AVX512=0) on AVX-512 CPUs
	"avx512": func(on bool) { kernels.SetAVX512(on) },
	// off: BF16 precision's Winograd blocks in multiples of 12 tiles, as
	// the float32 kernels' (on: of the bfloat16 kernel's 16)
	"block16": func(on bool) {
		winoBlockQuantBF16 = 12
		if on {
			winoBlockQuantBF16 = 16
		}
	},
	// off: tiles at an x face gathered (on: read in place, masked)
	"xrows": func(on bool) { useRowsWindow = on },
	// off: the whole schedule by size alone
	"wholetiles": func(on bool) {
		winoWholeMaxTiles = 1 << 40
		if on {
			winoWholeMaxTiles = 256
		}
	},
	// off: the 1 MiB Winograd block budget of earlier sessions
	"block": func(on bool) {
		winoBlockBytes = 1 << 20
		if on {
			winoBlockBytes = 5 << 19
		}
	},
}

//go:build !amd64 || purego

package kernels

// Without assembly the pure-Go kernels (kernel_go.go) serve every call.

func asmKernels() []*microKernel { return nil }

func asmDotKernels() []*dotKernel { return nil }

func fmaPeakAVX2(n int) { panic("kernels: no AVX2 on this build") }

func fmaPeakAVX512(n int) { panic("kernels: no AVX-512 on this build") }

var hasAVX2 = false

// SetAVX512Mid has nothing to switch without the AVX-512 kernels.
func SetAVX512Mid(on bool) {}

// SetAVX512 has nothing to switch without the AVX-512 kernels.
func SetAVX512(on bool) {}

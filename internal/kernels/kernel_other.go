//go:build !amd64 || purego

package kernels

// Without assembly the pure-Go kernels (kernel_go.go) serve every call.

func asmKernels() []*microKernel { return nil }

func asmDotKernels() []*dotKernel { return nil }

func fmaPeakAVX2(n int) { panic("kernels: no AVX2 on this build") }

var hasAVX2 = false

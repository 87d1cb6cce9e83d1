//go:build amd64 && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// dropAsm: the AVX-512F/DQ mask loop (dropout_amd64.s) runs; its test held
// it bit for bit to dropMaskGo on an AMD EPYC Zen 4.
var dropAsm = useAVX512 && cpu.X86.HasAVX512DQ

//go:noescape
func dropMaskAVX512(d unsafe.Pointer, blocks int, base, key, thresh uint64, s float32, grad int)

func dropMaskAsm(d []float32, base, key, thresh uint64, s float32, grad int) {
	dropMaskAVX512(unsafe.Pointer(&d[0]), len(d)/16, base, key, thresh, s, grad)
}

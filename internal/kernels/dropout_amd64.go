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
func dropMaskAVX512(d unsafe.Pointer, blocks int, base, key, thresh uint64, s float32, grad int, bits unsafe.Pointer)

//go:noescape
func dropApplyAVX512(d unsafe.Pointer, blocks int, bits unsafe.Pointer, s float32, grad int)

// dropMaskAsm runs the mask loop on len(d)/16 blocks; with bits (one uint16
// per block) it records the keep masks too.
func dropMaskAsm(d []float32, base, key, thresh uint64, s float32, grad int, bits []uint16) {
	var bp unsafe.Pointer
	if bits != nil {
		bp = unsafe.Pointer(&bits[0])
	}
	dropMaskAVX512(unsafe.Pointer(&d[0]), len(d)/16, base, key, thresh, s, grad, bp)
}

func dropApplyAsm(d []float32, bits []uint16, s float32, grad int) {
	dropApplyAVX512(unsafe.Pointer(&d[0]), len(d)/16, unsafe.Pointer(&bits[0]), s, grad)
}

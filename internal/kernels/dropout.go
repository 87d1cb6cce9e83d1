package kernels

import (
	"fmt"
	"math"
)

// Dropout masks. The engine's dropout draws element i of draw k from a
// counter-based hash: it keeps the element when the top 24 bits of
// Splitmix64(key ^ Splitmix64(i)) (key derived from the seed and k) are at
// least DropThreshold(p), that is when the uniform number in [0, 1) those
// bits stand for, bits·2⁻²⁴, is ≥ p. Because the mask is a pure function of
// (key, i), the backward pass redraws it instead of storing it, and any
// split of the elements between threads gives the same bits. DropMask runs
// 16 elements per step on AVX-512F/DQ (the 64-bit multiply VPMULLQ), held
// bit for bit to the Go loop by the tests.

// Splitmix64 is Steele et al.'s SplitMix64 finaliser (a bijective mixer).
func Splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// DropThreshold returns the integer T such that the 24-bit draw b keeps its
// element (b·2⁻²⁴ ≥ p) exactly when b ≥ T: T = ⌈p·2²⁴⌉ (exact in float64),
// 0 for p ≤ 0, 2²⁴ (nothing kept) for p ≥ 1.
func DropThreshold(p float32) uint64 {
	if !(p > 0) {
		return 0
	}
	if p >= 1 {
		return 1 << 24
	}
	return uint64(math.Ceil(float64(p) * (1 << 24)))
}

// DropBits is the 24-bit draw of element i under key.
func DropBits(key uint64, i uint64) uint64 { return Splitmix64(key^Splitmix64(i)) >> 40 }

// DropMask multiplies d[j] by the mask value of element base+j: s where it
// is kept (DropBits(key, base+j) ≥ thresh), 0 where it is dropped (a
// multiplication, so ±Inf and NaN become NaN as they would in x·0). With
// grad it stores 0 + d[j]·mask instead, the form of a fresh gradient (−0
// becomes +0).
func DropMask(d []float32, base int, key, thresh uint64, s float32, grad bool) {
	n16 := 0
	if dropAsm && len(d) >= 16 {
		n16 = len(d) &^ 15
		dropMaskAsm(d[:n16], uint64(base), key, thresh, s, gradFlag(grad), nil)
	}
	dropMaskGo(d[n16:], uint64(base+n16), key, thresh, s, grad)
}

// DropMaskRecord is DropMask without grad that also records the mask:
// bit j%16 of bits[j/16] is set where element j of d is kept (bits needs
// (len(d)+15)/16 entries), for DropApply to reapply it without redrawing.
func DropMaskRecord(d []float32, base int, key, thresh uint64, s float32, bits []uint16) {
	if len(bits) < (len(d)+15)/16 {
		panic(fmt.Sprintf("kernels.DropMaskRecord: %d mask words for %d elements", len(bits), len(d)))
	}
	n16 := 0
	if dropAsm && len(d) >= 16 {
		n16 = len(d) &^ 15
		dropMaskAsm(d[:n16], uint64(base), key, thresh, s, 0, bits)
	}
	for j := n16; j < len(d); j++ {
		if DropBits(key, uint64(base+j)) >= thresh {
			bits[j/16] |= 1 << (j % 16)
		} else {
			bits[j/16] &^= 1 << (j % 16)
		}
	}
	dropApplyGo(d, bits, n16, s, false) // the tail, from the mask just drawn
}

// DropApply multiplies d[j] by s where bit j%16 of bits[j/16] is set, by 0
// elsewhere, as DropMask does with the mask DropMaskRecord recorded (with
// grad, 0 + d[j]·mask): the same bits as DropMask with that mask's key.
func DropApply(d []float32, bits []uint16, s float32, grad bool) {
	if len(bits) < (len(d)+15)/16 {
		panic(fmt.Sprintf("kernels.DropApply: %d mask words for %d elements", len(bits), len(d)))
	}
	n16 := 0
	if dropAsm && len(d) >= 16 {
		n16 = len(d) &^ 15
		dropApplyAsm(d[:n16], bits, s, gradFlag(grad))
	}
	dropApplyGo(d, bits, n16, s, grad)
}

// dropApplyGo is DropApply's loop from element j0 on.
func dropApplyGo(d []float32, bits []uint16, j0 int, s float32, grad bool) {
	var z float32
	for j := j0; j < len(d); j++ {
		var m float32
		if bits[j/16]>>(j%16)&1 != 0 {
			m = s
		}
		if grad {
			d[j] = z + d[j]*m
		} else {
			d[j] *= m
		}
	}
}

func gradFlag(grad bool) int {
	if grad {
		return 1
	}
	return 0
}

func dropMaskGo(d []float32, base, key, thresh uint64, s float32, grad bool) {
	var z float32
	for j := range d {
		var m float32
		if DropBits(key, base+uint64(j)) >= thresh {
			m = s
		}
		if grad {
			d[j] = z + d[j]*m
		} else {
			d[j] *= m
		}
	}
}

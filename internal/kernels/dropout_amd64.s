//go:build amd64 && !purego

#include "textflag.h"

// Dropout masks, 16 elements per iteration (see dropout.go): the element
// indices in two vectors of 8 uint64 (Z0: elements 0-7, Z1: 8-15), each
// hashed as Splitmix64(key ^ Splitmix64(i)) with VPMULLQ (AVX-512DQ), the
// top 24 bits compared with thresh, the two 8-bit masks joined into one
// 16-bit mask, and d multiplied by s or 0 (then 0 + that, for gradients).

// MIX(x, t): x = Splitmix64(x); Z23-Z25 hold its three constants, t is clobbered.
#define MIX(x, t) \
	VPADDQ  Z23, x, x; \
	VPSRLQ  $30, x, t; \
	VPXORQ  t, x, x; \
	VPMULLQ Z24, x, x; \
	VPSRLQ  $27, x, t; \
	VPXORQ  t, x, x; \
	VPMULLQ Z25, x, x; \
	VPSRLQ  $31, x, t; \
	VPXORQ  t, x, x

DATA dropC1<>+0(SB)/8, $0x9e3779b97f4a7c15
GLOBL dropC1<>(SB), RODATA|NOPTR, $8
DATA dropC2<>+0(SB)/8, $0xbf58476d1ce4e5b9
GLOBL dropC2<>(SB), RODATA|NOPTR, $8
DATA dropC3<>+0(SB)/8, $0x94d049bb133111eb
GLOBL dropC3<>(SB), RODATA|NOPTR, $8
DATA dropIota<>+0(SB)/8, $0
DATA dropIota<>+8(SB)/8, $1
DATA dropIota<>+16(SB)/8, $2
DATA dropIota<>+24(SB)/8, $3
DATA dropIota<>+32(SB)/8, $4
DATA dropIota<>+40(SB)/8, $5
DATA dropIota<>+48(SB)/8, $6
DATA dropIota<>+56(SB)/8, $7
GLOBL dropIota<>(SB), RODATA|NOPTR, $64
DATA dropEight<>+0(SB)/8, $8
GLOBL dropEight<>(SB), RODATA|NOPTR, $8

// func dropMaskAVX512(d unsafe.Pointer, blocks int, base, key, thresh uint64, s float32, grad int, bits unsafe.Pointer)
// With bits != nil each block's 16-bit keep mask is stored there too.
TEXT ·dropMaskAVX512(SB), NOSPLIT, $0-64
	MOVQ d+0(FP), DI
	MOVQ blocks+8(FP), CX
	MOVQ base+16(FP), AX
	MOVQ key+24(FP), BX
	MOVQ thresh+32(FP), DX
	MOVQ grad+48(FP), R8
	MOVQ bits+56(FP), R9
	VPBROADCASTQ BX, Z20
	VPBROADCASTQ DX, Z21
	VBROADCASTSS s+40(FP), Z22
	VPBROADCASTQ dropC1<>(SB), Z23
	VPBROADCASTQ dropC2<>(SB), Z24
	VPBROADCASTQ dropC3<>(SB), Z25
	VPBROADCASTQ dropEight<>(SB), Z26
	VPADDQ       Z26, Z26, Z27
	VPXORD       Z28, Z28, Z28
	VPBROADCASTQ AX, Z0
	VPADDQ       dropIota<>(SB), Z0, Z0
	VPADDQ       Z26, Z0, Z1
	TESTQ CX, CX
	JZ    done

loop:
	VMOVDQA64 Z0, Z2
	VMOVDQA64 Z1, Z3
	MIX(Z2, Z4)
	MIX(Z3, Z5)
	VPXORQ Z20, Z2, Z2
	VPXORQ Z20, Z3, Z3
	MIX(Z2, Z4)
	MIX(Z3, Z5)
	VPSRLQ  $40, Z2, Z2
	VPSRLQ  $40, Z3, Z3
	VPCMPUQ $5, Z21, Z2, K1 // K1 = bits >= thresh, elements 0-7
	VPCMPUQ $5, Z21, Z3, K2 // elements 8-15
	KUNPCKBW K1, K2, K3     // K3 = K2:K1
	TESTQ    R9, R9
	JZ       nobits
	KMOVW    K3, (R9)
	ADDQ     $2, R9
nobits:
	VMOVAPS.Z Z22, K3, Z6   // s where kept, 0 where dropped
	VMULPS  (DI), Z6, Z7
	TESTQ   R8, R8
	JZ      store
	VADDPS  Z28, Z7, Z7
store:
	VMOVUPS Z7, (DI)
	VPADDQ  Z27, Z0, Z0
	VPADDQ  Z27, Z1, Z1
	ADDQ    $64, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func dropApplyAVX512(d unsafe.Pointer, blocks int, bits unsafe.Pointer, s float32, grad int)
// d multiplied by s where its block's 16-bit mask in bits has the bit set,
// by 0 elsewhere (then 0 + that, for gradients): dropMaskAVX512's
// arithmetic on a recorded mask.
TEXT ·dropApplyAVX512(SB), NOSPLIT, $0-40
	MOVQ d+0(FP), DI
	MOVQ blocks+8(FP), CX
	MOVQ bits+16(FP), R9
	VBROADCASTSS s+24(FP), Z22
	MOVQ grad+32(FP), R8
	VPXORD Z28, Z28, Z28
	TESTQ CX, CX
	JZ    adone

aloop:
	KMOVW     (R9), K3
	VMOVAPS.Z Z22, K3, Z6
	VMULPS    (DI), Z6, Z7
	TESTQ     R8, R8
	JZ        astore
	VADDPS    Z28, Z7, Z7
astore:
	VMOVUPS Z7, (DI)
	ADDQ    $2, R9
	ADDQ    $64, DI
	DECQ    CX
	JNZ     aloop

adone:
	VZEROUPPER
	RET

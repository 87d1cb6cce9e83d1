//go:build amd64 && !purego

#include "textflag.h"

// The sigmoid loop of sigmoid.go, eight values per step: the same float32
// operations in the same order as Sigmoid1 (no fused multiply-add), so the
// two agree bit for bit. Each constant is stored eight times for use as a
// 256-bit memory operand.

DATA sigSign<>+0(SB)/4, $0x80000000
DATA sigSign<>+4(SB)/4, $0x80000000
DATA sigSign<>+8(SB)/4, $0x80000000
DATA sigSign<>+12(SB)/4, $0x80000000
DATA sigSign<>+16(SB)/4, $0x80000000
DATA sigSign<>+20(SB)/4, $0x80000000
DATA sigSign<>+24(SB)/4, $0x80000000
DATA sigSign<>+28(SB)/4, $0x80000000
GLOBL sigSign<>(SB), RODATA|NOPTR, $32

DATA sigClamp<>+0(SB)/4, $0xc2d00000
DATA sigClamp<>+4(SB)/4, $0xc2d00000
DATA sigClamp<>+8(SB)/4, $0xc2d00000
DATA sigClamp<>+12(SB)/4, $0xc2d00000
DATA sigClamp<>+16(SB)/4, $0xc2d00000
DATA sigClamp<>+20(SB)/4, $0xc2d00000
DATA sigClamp<>+24(SB)/4, $0xc2d00000
DATA sigClamp<>+28(SB)/4, $0xc2d00000
GLOBL sigClamp<>(SB), RODATA|NOPTR, $32

DATA sigLog2e<>+0(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+4(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+8(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+12(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+16(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+20(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+24(SB)/4, $0x3fb8aa3b
DATA sigLog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL sigLog2e<>(SB), RODATA|NOPTR, $32

DATA sigLn2Hi<>+0(SB)/4, $0x3f318000
DATA sigLn2Hi<>+4(SB)/4, $0x3f318000
DATA sigLn2Hi<>+8(SB)/4, $0x3f318000
DATA sigLn2Hi<>+12(SB)/4, $0x3f318000
DATA sigLn2Hi<>+16(SB)/4, $0x3f318000
DATA sigLn2Hi<>+20(SB)/4, $0x3f318000
DATA sigLn2Hi<>+24(SB)/4, $0x3f318000
DATA sigLn2Hi<>+28(SB)/4, $0x3f318000
GLOBL sigLn2Hi<>(SB), RODATA|NOPTR, $32

DATA sigLn2Lo<>+0(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+4(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+8(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+12(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+16(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+20(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+24(SB)/4, $0xb95e8083
DATA sigLn2Lo<>+28(SB)/4, $0xb95e8083
GLOBL sigLn2Lo<>(SB), RODATA|NOPTR, $32

DATA sigP0<>+0(SB)/4, $0x39506967
DATA sigP0<>+4(SB)/4, $0x39506967
DATA sigP0<>+8(SB)/4, $0x39506967
DATA sigP0<>+12(SB)/4, $0x39506967
DATA sigP0<>+16(SB)/4, $0x39506967
DATA sigP0<>+20(SB)/4, $0x39506967
DATA sigP0<>+24(SB)/4, $0x39506967
DATA sigP0<>+28(SB)/4, $0x39506967
GLOBL sigP0<>(SB), RODATA|NOPTR, $32

DATA sigP1<>+0(SB)/4, $0x3ab743ce
DATA sigP1<>+4(SB)/4, $0x3ab743ce
DATA sigP1<>+8(SB)/4, $0x3ab743ce
DATA sigP1<>+12(SB)/4, $0x3ab743ce
DATA sigP1<>+16(SB)/4, $0x3ab743ce
DATA sigP1<>+20(SB)/4, $0x3ab743ce
DATA sigP1<>+24(SB)/4, $0x3ab743ce
DATA sigP1<>+28(SB)/4, $0x3ab743ce
GLOBL sigP1<>(SB), RODATA|NOPTR, $32

DATA sigP2<>+0(SB)/4, $0x3c088908
DATA sigP2<>+4(SB)/4, $0x3c088908
DATA sigP2<>+8(SB)/4, $0x3c088908
DATA sigP2<>+12(SB)/4, $0x3c088908
DATA sigP2<>+16(SB)/4, $0x3c088908
DATA sigP2<>+20(SB)/4, $0x3c088908
DATA sigP2<>+24(SB)/4, $0x3c088908
DATA sigP2<>+28(SB)/4, $0x3c088908
GLOBL sigP2<>(SB), RODATA|NOPTR, $32

DATA sigP3<>+0(SB)/4, $0x3d2aa9c1
DATA sigP3<>+4(SB)/4, $0x3d2aa9c1
DATA sigP3<>+8(SB)/4, $0x3d2aa9c1
DATA sigP3<>+12(SB)/4, $0x3d2aa9c1
DATA sigP3<>+16(SB)/4, $0x3d2aa9c1
DATA sigP3<>+20(SB)/4, $0x3d2aa9c1
DATA sigP3<>+24(SB)/4, $0x3d2aa9c1
DATA sigP3<>+28(SB)/4, $0x3d2aa9c1
GLOBL sigP3<>(SB), RODATA|NOPTR, $32

DATA sigP4<>+0(SB)/4, $0x3e2aaaaa
DATA sigP4<>+4(SB)/4, $0x3e2aaaaa
DATA sigP4<>+8(SB)/4, $0x3e2aaaaa
DATA sigP4<>+12(SB)/4, $0x3e2aaaaa
DATA sigP4<>+16(SB)/4, $0x3e2aaaaa
DATA sigP4<>+20(SB)/4, $0x3e2aaaaa
DATA sigP4<>+24(SB)/4, $0x3e2aaaaa
DATA sigP4<>+28(SB)/4, $0x3e2aaaaa
GLOBL sigP4<>(SB), RODATA|NOPTR, $32

DATA sigP5<>+0(SB)/4, $0x3f000000
DATA sigP5<>+4(SB)/4, $0x3f000000
DATA sigP5<>+8(SB)/4, $0x3f000000
DATA sigP5<>+12(SB)/4, $0x3f000000
DATA sigP5<>+16(SB)/4, $0x3f000000
DATA sigP5<>+20(SB)/4, $0x3f000000
DATA sigP5<>+24(SB)/4, $0x3f000000
DATA sigP5<>+28(SB)/4, $0x3f000000
GLOBL sigP5<>(SB), RODATA|NOPTR, $32

DATA sigOne<>+0(SB)/4, $0x3f800000
DATA sigOne<>+4(SB)/4, $0x3f800000
DATA sigOne<>+8(SB)/4, $0x3f800000
DATA sigOne<>+12(SB)/4, $0x3f800000
DATA sigOne<>+16(SB)/4, $0x3f800000
DATA sigOne<>+20(SB)/4, $0x3f800000
DATA sigOne<>+24(SB)/4, $0x3f800000
DATA sigOne<>+28(SB)/4, $0x3f800000
GLOBL sigOne<>(SB), RODATA|NOPTR, $32

DATA sig127<>+0(SB)/4, $0x0000007f
DATA sig127<>+4(SB)/4, $0x0000007f
DATA sig127<>+8(SB)/4, $0x0000007f
DATA sig127<>+12(SB)/4, $0x0000007f
DATA sig127<>+16(SB)/4, $0x0000007f
DATA sig127<>+20(SB)/4, $0x0000007f
DATA sig127<>+24(SB)/4, $0x0000007f
DATA sig127<>+28(SB)/4, $0x0000007f
GLOBL sig127<>(SB), RODATA|NOPTR, $32

// func sigmoidAVX2(dst, src unsafe.Pointer, n8 int)
// dst[i] = σ(src[i]) for i < 8·n8.
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n8+16(FP), CX
	TESTQ CX, CX
	JZ sig_done
sig_loop:
	VMOVUPS (SI), Y0                // v
	VORPS sigSign<>(SB), Y0, Y1     // t = −|v|
	VMAXPS sigClamp<>(SB), Y1, Y1   // t = max(t, −104)
	VMULPS sigLog2e<>(SB), Y1, Y2
	VROUNDPS $0, Y2, Y2             // kf = round(t·log₂e), ties to even
	VMULPS sigLn2Hi<>(SB), Y2, Y3
	VSUBPS Y3, Y1, Y1               // r = t − kf·ln2hi
	VMULPS sigLn2Lo<>(SB), Y2, Y3
	VSUBPS Y3, Y1, Y1               // r −= kf·ln2lo
	VMULPS Y1, Y1, Y4               // z = r²
	VMULPS sigP0<>(SB), Y1, Y5      // P(r), Horner
	VADDPS sigP1<>(SB), Y5, Y5
	VMULPS Y1, Y5, Y5
	VADDPS sigP2<>(SB), Y5, Y5
	VMULPS Y1, Y5, Y5
	VADDPS sigP3<>(SB), Y5, Y5
	VMULPS Y1, Y5, Y5
	VADDPS sigP4<>(SB), Y5, Y5
	VMULPS Y1, Y5, Y5
	VADDPS sigP5<>(SB), Y5, Y5
	VMULPS Y4, Y5, Y5               // P·z
	VADDPS Y1, Y5, Y5               // + r
	VADDPS sigOne<>(SB), Y5, Y5     // + 1: y = eʳ
	VCVTTPS2DQ Y2, Y2               // k
	VPSRAD $1, Y2, Y3               // k₁ = k >> 1
	VPSUBD Y3, Y2, Y2               // k₂ = k − k₁
	VPADDD sig127<>(SB), Y3, Y3
	VPSLLD $23, Y3, Y3              // 2^k₁
	VPADDD sig127<>(SB), Y2, Y2
	VPSLLD $23, Y2, Y2              // 2^k₂
	VMULPS Y3, Y5, Y5
	VMULPS Y2, Y5, Y5               // e = y·2^k₁·2^k₂
	VADDPS sigOne<>(SB), Y5, Y6     // d = 1 + e
	VMOVUPS sigOne<>(SB), Y7
	VBLENDVPS Y0, Y5, Y7, Y7        // numerator: e where v's sign bit is set, else 1
	VDIVPS Y6, Y7, Y7
	VCMPPS $3, Y0, Y0, Y8           // NaN lanes keep v
	VBLENDVPS Y8, Y0, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ sig_loop
sig_done:
	VZEROUPPER
	RET

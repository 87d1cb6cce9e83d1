//go:build amd64 && !purego

#include "textflag.h"

// AVX2 loops of BatchNorm; see bn.go for the contracts. Per-channel float64
// sums keep one accumulator lane per channel and add rows in order, so they
// equal the portable loops bit for bit. Strides are in bytes.

// func bnSumAVX2(acc unsafe.Pointer, x unsafe.Pointer, rows int, stride uintptr, wide int)
// Sums 8 channels (wide = 0) or 16 (wide = 1) of each row into acc.
TEXT ·bnSumAVX2(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ stride+24(FP), R8
	MOVQ wide+32(FP), DX
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	TESTQ DX, DX
	JNZ sumwide
sum8:
	VCVTPS2PD 0(SI), Y4
	VCVTPS2PD 16(SI), Y5
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	ADDQ R8, SI
	DECQ CX
	JNZ sum8
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VZEROUPPER
	RET
sumwide:
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
sum16:
	VCVTPS2PD 0(SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	ADDQ R8, SI
	DECQ CX
	JNZ sum16
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET

// func bnSqDevAVX2(acc, x, mu unsafe.Pointer, rows int, stride uintptr, wide int)
// acc[j] += (float64(x[j]) - mu[j])^2 over the rows, 8 or 16 channels.
TEXT ·bnSqDevAVX2(SB), NOSPLIT, $0-48
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mu+16(FP), BX
	MOVQ rows+24(FP), CX
	MOVQ stride+32(FP), R8
	MOVQ wide+40(FP), DX
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 0(BX), Y8
	VMOVUPD 32(BX), Y9
	TESTQ DX, DX
	JNZ sqwide
sq8:
	VCVTPS2PD 0(SI), Y4
	VCVTPS2PD 16(SI), Y5
	VSUBPD Y8, Y4, Y4
	VSUBPD Y9, Y5, Y5
	VMULPD Y4, Y4, Y4
	VMULPD Y5, Y5, Y5
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	ADDQ R8, SI
	DECQ CX
	JNZ sq8
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VZEROUPPER
	RET
sqwide:
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	VMOVUPD 64(BX), Y10
	VMOVUPD 96(BX), Y11
sq16:
	VCVTPS2PD 0(SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VSUBPD Y8, Y4, Y4
	VSUBPD Y9, Y5, Y5
	VSUBPD Y10, Y6, Y6
	VSUBPD Y11, Y7, Y7
	VMULPD Y4, Y4, Y4
	VMULPD Y5, Y5, Y5
	VMULPD Y6, Y6, Y6
	VMULPD Y7, Y7, Y7
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	ADDQ R8, SI
	DECQ CX
	JNZ sq16
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET

// func bnGradSumsAVX2(gs, gd, x, gy, o, mean, invstd unsafe.Pointer, rows int, stride uintptr, relu int)
// For 8 channels: gv = g (masked by o > 0 if relu), xh = (x - mean) * invstd
// in float32; gs += float64(gv), gd += float64(gv) * float64(xh).
TEXT ·bnGradSumsAVX2(SB), NOSPLIT, $0-80
	MOVQ gs+0(FP), DI
	MOVQ gd+8(FP), R9
	MOVQ x+16(FP), SI
	MOVQ gy+24(FP), R10
	MOVQ o+32(FP), R11
	MOVQ mean+40(FP), AX
	MOVQ invstd+48(FP), BX
	MOVQ rows+56(FP), CX
	MOVQ stride+64(FP), R8
	MOVQ relu+72(FP), DX
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 0(R9), Y2
	VMOVUPD 32(R9), Y3
	VMOVUPS (AX), Y4
	VMOVUPS (BX), Y5
	VXORPS Y15, Y15, Y15
gsloop:
	VMOVUPS (SI), Y6
	VSUBPS Y4, Y6, Y6
	VMULPS Y5, Y6, Y6
	VMOVUPS (R10), Y7
	TESTQ DX, DX
	JZ gsnomask
	VMOVUPS (R11), Y8
	VCMPPS $0x1E, Y15, Y8, Y8
	VANDPS Y8, Y7, Y7
	ADDQ R8, R11
gsnomask:
	VCVTPS2PD X7, Y9
	VEXTRACTF128 $1, Y7, X10
	VCVTPS2PD X10, Y10
	VCVTPS2PD X6, Y11
	VEXTRACTF128 $1, Y6, X12
	VCVTPS2PD X12, Y12
	VADDPD Y9, Y0, Y0
	VADDPD Y10, Y1, Y1
	VMULPD Y11, Y9, Y9
	VMULPD Y12, Y10, Y10
	VADDPD Y9, Y2, Y2
	VADDPD Y10, Y3, Y3
	ADDQ R8, SI
	ADDQ R8, R10
	DECQ CX
	JNZ gsloop
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 0(R9)
	VMOVUPD Y3, 32(R9)
	VZEROUPPER
	RET

// func bnApplyAVX2(out, x, scale, shift unsafe.Pointer, rows, chunks, relu int)
// out = x*scale + shift (then max(., 0) keeping NaNs) for rows of 8*chunks channels.
TEXT ·bnApplyAVX2(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ rows+32(FP), CX
	MOVQ relu+48(FP), R9
	VXORPS Y15, Y15, Y15
aprow:
	MOVQ scale+16(FP), AX
	MOVQ shift+24(FP), BX
	MOVQ chunks+40(FP), DX
apchunk:
	VMOVUPS (SI), Y0
	VMULPS (AX), Y0, Y0
	VADDPS (BX), Y0, Y0
	TESTQ R9, R9
	JZ apstore
	VMAXPS Y15, Y0, Y1
	VCMPPS $3, Y0, Y0, Y2
	VBLENDVPS Y2, Y0, Y1, Y0
apstore:
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, AX
	ADDQ $32, BX
	DECQ DX
	JNZ apchunk
	DECQ CX
	JNZ aprow
	VZEROUPPER
	RET

// func bnGradInputAVX2(gx, x, gy, o, pc unsafe.Pointer, rows, chunks, flags int)
// pc holds, per 8-channel chunk, 40 floats: mean, invstd, scale, a, b (8 each).
// gx += scale * ((gv - a) - xh*b), gv and xh as in bnGradSumsAVX2.
TEXT ·bnGradInputAVX2(SB), NOSPLIT, $0-64
	MOVQ gx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ gy+16(FP), R10
	MOVQ o+24(FP), R11
	MOVQ rows+40(FP), CX
	MOVQ flags+56(FP), R9
	MOVQ R9, R8
	ANDQ $1, R9 // relu
	ANDQ $2, R8 // set: write gx instead of adding to it
	VXORPS Y15, Y15, Y15
girow:
	MOVQ pc+32(FP), AX
	MOVQ chunks+48(FP), DX
gichunk:
	VMOVUPS (SI), Y0
	VSUBPS 0(AX), Y0, Y0
	VMULPS 32(AX), Y0, Y0
	VMOVUPS (R10), Y1
	TESTQ R9, R9
	JZ ginomask
	VMOVUPS (R11), Y2
	VCMPPS $0x1E, Y15, Y2, Y2
	VANDPS Y2, Y1, Y1
	ADDQ $32, R11
ginomask:
	VSUBPS 96(AX), Y1, Y1
	VMULPS 128(AX), Y0, Y0
	VSUBPS Y0, Y1, Y1
	VMULPS 64(AX), Y1, Y1
	TESTQ R8, R8
	JNZ giset
	VADDPS (DI), Y1, Y1
giset:
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R10
	ADDQ $160, AX
	DECQ DX
	JNZ gichunk
	DECQ CX
	JNZ girow
	VZEROUPPER
	RET

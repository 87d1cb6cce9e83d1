//go:build amd64 && !purego

#include "textflag.h"

// func adamStepAVX2(p, grad, m, v unsafe.Pointer, n int, c *[7]float32)
// Adam's update on n (a multiple of 8) values, eight at a time, with the
// operations of AdamStep's Go loop in its order; c holds b1, b2, ob1, ob2,
// bc2s, eps, step.
TEXT ·adamStepAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8  // b1
	VBROADCASTSS 4(AX), Y9  // b2
	VBROADCASTSS 8(AX), Y10 // ob1
	VBROADCASTSS 12(AX), Y11 // ob2
	VBROADCASTSS 16(AX), Y12 // bc2s
	VBROADCASTSS 20(AX), Y13 // eps
	VBROADCASTSS 24(AX), Y14 // step
	XORQ BX, BX
adam_loop:
	VMOVUPS (SI)(BX*4), Y0 // g
	VMULPS (R8)(BX*4), Y8, Y1 // m*b1
	VMULPS Y0, Y10, Y2 // ob1*g
	VADDPS Y2, Y1, Y1 // m
	VMOVUPS Y1, (R8)(BX*4)
	VMULPS (R9)(BX*4), Y9, Y3 // v*b2
	VMULPS Y0, Y11, Y4 // ob2*g
	VMULPS Y0, Y4, Y4 // (ob2*g)*g
	VADDPS Y4, Y3, Y3 // v
	VMOVUPS Y3, (R9)(BX*4)
	VSQRTPS Y3, Y5
	VDIVPS Y12, Y5, Y5 // sqrt(v)/bc2s
	VADDPS Y13, Y5, Y5 // + eps
	VDIVPS Y5, Y1, Y6 // m/den
	VMULPS Y6, Y14, Y6 // step*(m/den)
	VADDPS (DI)(BX*4), Y6, Y6 // p + ...
	VMOVUPS Y6, (DI)(BX*4)
	ADDQ $8, BX
	CMPQ BX, CX
	JLT adam_loop
	VZEROUPPER
	RET

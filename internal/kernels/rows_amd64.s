//go:build amd64 && !purego

#include "textflag.h"

// The bias row loops (rows.go), eight channels per instruction; channels
// past a multiple of 8 are done in Go. Strides are in bytes.

// func addBiasAVX2(rows unsafe.Pointer, n, c8, stride int, bias unsafe.Pointer)
// rows[r][j] += bias[j] for r < n, j < c8.
TEXT ·addBiasAVX2(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ c8+16(FP), DX
	MOVQ stride+24(FP), R8
	MOVQ bias+32(FP), SI
	SHLQ $2, DX // bytes of the vector channels
	TESTQ CX, CX
	JZ ab_done
ab_row:
	XORQ AX, AX
ab_col:
	VMOVUPS (SI)(AX*1), Y0
	VADDPS (DI)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, DX
	JLT ab_col
	ADDQ R8, DI
	DECQ CX
	JNZ ab_row
ab_done:
	VZEROUPPER
	RET

// func addToAVX2(dst, src unsafe.Pointer, n int)
// dst[i] += src[i] for i < n (a multiple of 8).
TEXT ·addToAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-32, DX // whole groups of 32
	JZ at_tail
at_loop32:
	VMOVUPS (DI)(AX*4), Y0
	VMOVUPS 32(DI)(AX*4), Y1
	VMOVUPS 64(DI)(AX*4), Y2
	VMOVUPS 96(DI)(AX*4), Y3
	VADDPS (SI)(AX*4), Y0, Y0
	VADDPS 32(SI)(AX*4), Y1, Y1
	VADDPS 64(SI)(AX*4), Y2, Y2
	VADDPS 96(SI)(AX*4), Y3, Y3
	VMOVUPS Y0, (DI)(AX*4)
	VMOVUPS Y1, 32(DI)(AX*4)
	VMOVUPS Y2, 64(DI)(AX*4)
	VMOVUPS Y3, 96(DI)(AX*4)
	ADDQ $32, AX
	CMPQ AX, DX
	JLT at_loop32
at_tail:
	CMPQ AX, CX
	JGE at_done
	VMOVUPS (DI)(AX*4), Y0
	VADDPS (SI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP at_tail
at_done:
	VZEROUPPER
	RET

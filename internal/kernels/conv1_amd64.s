//go:build amd64 && !purego

#include "textflag.h"

// func conv1RowAVX2(out, rows, w unsafe.Pointer, nx, co8 int, ldo uintptr)
// Four output voxels by eight channels per step: Y0-Y3 accumulate
// w[p][chunk] · row[p/3][x + i + p%3] for p = 0..26 in order (one FMA
// chain per output, from +0); rows points to nine row pointers; ldo is co
// floats in bytes (the stride of output voxels and of w's taps).
TEXT ·conv1RowAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ rows+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ nx+24(FP), CX
	MOVQ co8+32(FP), R8
	MOVQ ldo+40(FP), R9
	XORQ R10, R10 // x

xloop:
	CMPQ R10, CX
	JGE  done
	XORQ R11, R11 // channel chunk

cloop:
	CMPQ   R11, R8
	JGE    cdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   R11, R12
	SHLQ   $5, R12
	ADDQ   DX, R12    // &w[0][chunk]
	XORQ   R13, R13   // row r

rloop:
	MOVQ (SI)(R13*8), AX
	LEAQ (AX)(R10*4), AX // &row[x]

	VMOVUPS      (R12), Y4
	VBROADCASTSS 0(AX), Y5
	VFMADD231PS  Y5, Y4, Y0
	VBROADCASTSS 4(AX), Y5
	VFMADD231PS  Y5, Y4, Y1
	VBROADCASTSS 8(AX), Y5
	VFMADD231PS  Y5, Y4, Y2
	VBROADCASTSS 12(AX), Y5
	VFMADD231PS  Y5, Y4, Y3
	ADDQ         R9, R12

	VMOVUPS      (R12), Y4
	VBROADCASTSS 4(AX), Y5
	VFMADD231PS  Y5, Y4, Y0
	VBROADCASTSS 8(AX), Y5
	VFMADD231PS  Y5, Y4, Y1
	VBROADCASTSS 12(AX), Y5
	VFMADD231PS  Y5, Y4, Y2
	VBROADCASTSS 16(AX), Y5
	VFMADD231PS  Y5, Y4, Y3
	ADDQ         R9, R12

	VMOVUPS      (R12), Y4
	VBROADCASTSS 8(AX), Y5
	VFMADD231PS  Y5, Y4, Y0
	VBROADCASTSS 12(AX), Y5
	VFMADD231PS  Y5, Y4, Y1
	VBROADCASTSS 16(AX), Y5
	VFMADD231PS  Y5, Y4, Y2
	VBROADCASTSS 20(AX), Y5
	VFMADD231PS  Y5, Y4, Y3
	ADDQ         R9, R12

	INCQ R13
	CMPQ R13, $9
	JL   rloop

	// out + x*ldo + chunk*32
	MOVQ    R10, BX
	IMULQ   R9, BX
	ADDQ    DI, BX
	MOVQ    R11, AX
	SHLQ    $5, AX
	ADDQ    AX, BX
	VMOVUPS Y0, (BX)
	ADDQ    R9, BX
	VMOVUPS Y1, (BX)
	ADDQ    R9, BX
	VMOVUPS Y2, (BX)
	ADDQ    R9, BX
	VMOVUPS Y3, (BX)
	INCQ    R11
	JMP     cloop

cdone:
	ADDQ $4, R10
	JMP  xloop

done:
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 version of the 6×16 kernel (kernel_amd64.s): the same code with
// 16-lane ZMM registers, so a 6×32 tile, B panels of 32 floats per p. Same
// contract (see microKernel). It runs only where the CPU reports AVX-512F.
//
// Written as a register-for-register widening of the AVX2 kernel; it
// performs the same fused multiply-adds in the same order, and the tests
// (TestAsmKernelsExact, TestAVX512SgemmMatchesAVX2) hold it bit for bit to
// the Go FMA emulation and to the AVX2 kernels. They passed executing it on
// an AMD EPYC Zen 4, 2026-12-01. Sgemm selects it on every AVX-512F CPU
// unless FESS_AVX512=0 (kernel_amd64.go).

// One p step of the 6×32 kernel: B row at off(DX), A column at SI (rows
// 0-2) and BX (rows 3-5), advancing both by csA (R10).
#define STEP6x32(off) \
	VMOVUPS      off(DX), Z0; \
	VMOVUPS      off+64(DX), Z1; \
	VBROADCASTSS (SI), Z2; \
	VBROADCASTSS (SI)(R8*1), Z3; \
	VFMADD231PS  Z0, Z2, Z4; \
	VFMADD231PS  Z1, Z2, Z5; \
	VFMADD231PS  Z0, Z3, Z6; \
	VFMADD231PS  Z1, Z3, Z7; \
	VBROADCASTSS (SI)(R8*2), Z2; \
	VBROADCASTSS (BX), Z3; \
	VFMADD231PS  Z0, Z2, Z8; \
	VFMADD231PS  Z1, Z2, Z9; \
	VFMADD231PS  Z0, Z3, Z10; \
	VFMADD231PS  Z1, Z3, Z11; \
	VBROADCASTSS (BX)(R8*1), Z2; \
	VBROADCASTSS (BX)(R8*2), Z3; \
	VFMADD231PS  Z0, Z2, Z12; \
	VFMADD231PS  Z1, Z2, Z13; \
	VFMADD231PS  Z0, Z3, Z14; \
	VFMADD231PS  Z1, Z3, Z15; \
	ADDQ         R10, SI; \
	ADDQ         R10, BX

// Write-back of one 32-wide row pair (acc0, acc1) at DI: C = alpha*acc + beta*C.
#define ROW32(acc0, acc1) \
	VMULPS      Z0, acc0, acc0; \
	VMULPS      Z0, acc1, acc1; \
	VFMADD231PS (DI), Z1, acc0; \
	VFMADD231PS 64(DI), Z1, acc1; \
	VMOVUPS     acc0, (DI); \
	VMOVUPS     acc1, 64(DI); \
	ADDQ        R11, DI

#define ROW32B0(acc0, acc1) \
	VMULPS  Z0, acc0, acc0; \
	VMULPS  Z0, acc1, acc1; \
	VMOVUPS acc0, (DI); \
	VMOVUPS acc1, 64(DI); \
	ADDQ    R11, DI

// Loop structure, tiling and prefetching as in kern6x16. Accumulators are
// zeroed with VPXORD (AVX-512F; the ZMM form of VXORPS needs AVX-512DQ).

// func kern6x32(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)
//
// Runs tiles tiles one after the other: tile t reads A at a + t*aStep and
// writes C at c + t*cStep (the same B panel), so one call covers a column of
// tiles. Locals hold the current A and C bases and the tiles left.
TEXT ·kern6x32(SB), NOSPLIT, $24-104
	MOVQ a+8(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ c+40(FP), AX
	MOVQ AX, cbase-16(SP)
	MOVQ tiles+80(FP), AX
	MOVQ AX, left-24(SP)
	MOVQ rsA+16(FP), R8
	MOVQ csA+24(FP), R10
	LEAQ (R8)(R8*2), R9  // 3*rsA
	MOVQ R10, R14
	SHLQ $3, R14

k6x32tile:
	MOVQ k+0(FP), CX
	MOVQ abase-8(SP), SI
	MOVQ b+32(FP), DX
	MOVQ pf+56(FP), R12
	MOVQ pfs+64(FP), R11
	LEAQ (SI)(R9*1), BX  // row 3
	ADDQ SI, R12

	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

	CMPQ CX, $8
	JLT  k6x32tail

k6x32loop8:
	MOVQ       R12, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	ADDQ       R11, R13
	ADDQ       R11, R13
	ADDQ       R11, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	ADDQ       R11, R13
	ADDQ       R11, R13
	ADDQ       R11, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	STEP6x32(0)
	STEP6x32(128)
	STEP6x32(256)
	STEP6x32(384)
	STEP6x32(512)
	STEP6x32(640)
	STEP6x32(768)
	STEP6x32(896)
	ADDQ R14, R12
	ADDQ $1024, DX
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  k6x32loop8

k6x32tail:
	TESTQ CX, CX
	JZ    k6x32store

k6x32loop1:
	STEP6x32(0)
	ADDQ $128, DX
	DECQ CX
	JNZ  k6x32loop1

k6x32store:
	MOVQ         cbase-16(SP), DI
	MOVQ         ldc+48(FP), R11
	VBROADCASTSS alpha+72(FP), Z0
	VBROADCASTSS beta+76(FP), Z1
	MOVL         beta+76(FP), AX
	TESTL        $0x7fffffff, AX
	JZ           k6x32beta0
	ROW32(Z4, Z5)
	ROW32(Z6, Z7)
	ROW32(Z8, Z9)
	ROW32(Z10, Z11)
	ROW32(Z12, Z13)
	ROW32(Z14, Z15)
	JMP k6x32next

k6x32beta0:
	ROW32B0(Z4, Z5)
	ROW32B0(Z6, Z7)
	ROW32B0(Z8, Z9)
	ROW32B0(Z10, Z11)
	ROW32B0(Z12, Z13)
	ROW32B0(Z14, Z15)

k6x32next:
	MOVQ abase-8(SP), AX
	ADDQ aStep+88(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ cbase-16(SP), AX
	ADDQ cStep+96(FP), AX
	MOVQ AX, cbase-16(SP)
	DECQ left-24(SP)
	JNZ  k6x32tile
	VZEROUPPER
	RET


// The 12×16 kernel: kern12x8 (kernel_amd64.s) widened to 16-lane ZMM
// registers, for outputs 9 to 16 columns wide (n = 16 channels: a 6×16
// AVX2 tile runs 8-lane FMAs, half the width of a Zen 5 or Xeon FMA unit).
// Twelve one-register rows, addressed as in kern12x8: SI (rows 0-4, 6, 8),
// AX = SI+5*rsA (rows 5, 7), BX = SI+9*rsA (rows 9-11); B panels of 16
// floats per p. Same contract (see microKernel) and the same fused
// multiply-adds in the same order as the AVX2 kernels, so the results are
// bit-identical (TestAsmKernelsExact, TestAVX512SgemmMatchesAVX2).
#define STEP12x16(off) \
	VMOVUPS      off(DX), Z0; \
	VBROADCASTSS (SI), Z1; \
	VBROADCASTSS (SI)(R8*1), Z2; \
	VBROADCASTSS (SI)(R8*2), Z3; \
	VFMADD231PS  Z0, Z1, Z4; \
	VFMADD231PS  Z0, Z2, Z5; \
	VFMADD231PS  Z0, Z3, Z6; \
	VBROADCASTSS (SI)(R9*1), Z1; \
	VBROADCASTSS (SI)(R8*4), Z2; \
	VBROADCASTSS (AX), Z3; \
	VFMADD231PS  Z0, Z1, Z7; \
	VFMADD231PS  Z0, Z2, Z8; \
	VFMADD231PS  Z0, Z3, Z9; \
	VBROADCASTSS (SI)(R9*2), Z1; \
	VBROADCASTSS (AX)(R8*2), Z2; \
	VBROADCASTSS (SI)(R8*8), Z3; \
	VFMADD231PS  Z0, Z1, Z10; \
	VFMADD231PS  Z0, Z2, Z11; \
	VFMADD231PS  Z0, Z3, Z12; \
	VBROADCASTSS (BX), Z1; \
	VBROADCASTSS (BX)(R8*1), Z2; \
	VBROADCASTSS (BX)(R8*2), Z3; \
	VFMADD231PS  Z0, Z1, Z13; \
	VFMADD231PS  Z0, Z2, Z14; \
	VFMADD231PS  Z0, Z3, Z15; \
	ADDQ         R10, SI; \
	ADDQ         R10, AX; \
	ADDQ         R10, BX

#define ROW16Z(acc) \
	VMULPS      Z0, acc, acc; \
	VFMADD231PS (DI), Z1, acc; \
	VMOVUPS     acc, (DI); \
	ADDQ        R11, DI

#define ROW16ZB0(acc) \
	VMULPS  Z0, acc, acc; \
	VMOVUPS acc, (DI); \
	ADDQ    R11, DI

// func kern12x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)
TEXT ·kern12x16(SB), NOSPLIT, $24-104
	MOVQ a+8(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ c+40(FP), AX
	MOVQ AX, cbase-16(SP)
	MOVQ tiles+80(FP), AX
	MOVQ AX, left-24(SP)
	MOVQ rsA+16(FP), R8
	MOVQ csA+24(FP), R10
	LEAQ (R8)(R8*2), R9  // 3*rsA
	MOVQ R10, R14
	SHLQ $3, R14

k12x16tile:
	MOVQ k+0(FP), CX
	MOVQ abase-8(SP), SI
	MOVQ b+32(FP), DX
	MOVQ pf+56(FP), R12
	MOVQ pfs+64(FP), R11
	LEAQ (SI)(R8*4), AX
	ADDQ R8, AX          // row 5
	LEAQ (SI)(R8*8), BX
	ADDQ R8, BX          // row 9
	ADDQ SI, R12

	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

	CMPQ CX, $8
	JLT  k12x16tail

k12x16loop8:
	MOVQ       R12, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	ADDQ       R11, R13
	ADDQ       R11, R13
	ADDQ       R11, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	ADDQ       R11, R13
	ADDQ       R11, R13
	ADDQ       R11, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	ADDQ       R11, R13
	ADDQ       R11, R13
	ADDQ       R11, R13
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 (R13)(R11*2)
	STEP12x16(0)
	STEP12x16(64)
	STEP12x16(128)
	STEP12x16(192)
	STEP12x16(256)
	STEP12x16(320)
	STEP12x16(384)
	STEP12x16(448)
	ADDQ R14, R12
	ADDQ $512, DX
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  k12x16loop8

k12x16tail:
	TESTQ CX, CX
	JZ    k12x16store

k12x16loop1:
	STEP12x16(0)
	ADDQ $64, DX
	DECQ CX
	JNZ  k12x16loop1

k12x16store:
	MOVQ         cbase-16(SP), DI
	MOVQ         ldc+48(FP), R11
	VBROADCASTSS alpha+72(FP), Z0
	VBROADCASTSS beta+76(FP), Z1
	MOVL         beta+76(FP), AX
	TESTL        $0x7fffffff, AX
	JZ           k12x16beta0
	ROW16Z(Z4)
	ROW16Z(Z5)
	ROW16Z(Z6)
	ROW16Z(Z7)
	ROW16Z(Z8)
	ROW16Z(Z9)
	ROW16Z(Z10)
	ROW16Z(Z11)
	ROW16Z(Z12)
	ROW16Z(Z13)
	ROW16Z(Z14)
	ROW16Z(Z15)
	JMP k12x16next

k12x16beta0:
	ROW16ZB0(Z4)
	ROW16ZB0(Z5)
	ROW16ZB0(Z6)
	ROW16ZB0(Z7)
	ROW16ZB0(Z8)
	ROW16ZB0(Z9)
	ROW16ZB0(Z10)
	ROW16ZB0(Z11)
	ROW16ZB0(Z12)
	ROW16ZB0(Z13)
	ROW16ZB0(Z14)
	ROW16ZB0(Z15)

k12x16next:
	MOVQ abase-8(SP), AX
	ADDQ aStep+88(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ cbase-16(SP), AX
	ADDQ cStep+96(FP), AX
	MOVQ AX, cbase-16(SP)
	DECQ left-24(SP)
	JNZ  k12x16tile
	VZEROUPPER
	RET

// func fmaPeakAVX512(n int)
// n iterations of 12 independent 16-lane FMAs (384 flops each), registers
// only: the FMA ceiling of a core whose AVX-512 units are 512 bits wide
// (on CPUs that split 512-bit operations into two 256-bit halves, as Zen 4
// does, it measures the same rate as fmaPeakAVX2).
TEXT ·fmaPeakAVX512(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ  CX, CX
	JZ     peak512done

peak512loop:
	VFMADD231PS Z0, Z1, Z4
	VFMADD231PS Z0, Z1, Z5
	VFMADD231PS Z0, Z1, Z6
	VFMADD231PS Z0, Z1, Z7
	VFMADD231PS Z0, Z1, Z8
	VFMADD231PS Z0, Z1, Z9
	VFMADD231PS Z0, Z1, Z10
	VFMADD231PS Z0, Z1, Z11
	VFMADD231PS Z0, Z1, Z12
	VFMADD231PS Z0, Z1, Z13
	VFMADD231PS Z0, Z1, Z14
	VFMADD231PS Z0, Z1, Z15
	DECQ        CX
	JNZ         peak512loop

peak512done:
	VZEROUPPER
	RET

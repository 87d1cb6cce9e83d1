//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA single-precision micro-kernels. Each computes one register tile
//
//	C[i][j] = alpha * sum_{p<k} A(i,p) * B[p][j] + beta * C[i][j]
//
// where A(i,p) is read at a + i*rsA + p*csA (byte strides, so the same kernel
// runs on a packed panel, rsA=4 and csA=4*mr, or straight on a row-major
// matrix, rsA=4*lda and csA=4, or on its transpose, rsA=4 and csA=4*lda), B is
// a packed panel of nr floats per p, and C rows are ldc bytes apart. When
// beta == 0 (either sign) C is only written. The sum over p is accumulated in
// increasing p with one FMA per term, so results are deterministic.

// One p step of the 6×16 kernel: B row at off(DX), A column at SI (rows
// 0-2) and BX (rows 3-5), advancing both by csA (R10).
#define STEP6x16(off) \
	VMOVUPS      off(DX), Y0; \
	VMOVUPS      off+32(DX), Y1; \
	VBROADCASTSS (SI), Y2; \
	VBROADCASTSS (SI)(R8*1), Y3; \
	VFMADD231PS  Y0, Y2, Y4; \
	VFMADD231PS  Y1, Y2, Y5; \
	VFMADD231PS  Y0, Y3, Y6; \
	VFMADD231PS  Y1, Y3, Y7; \
	VBROADCASTSS (SI)(R8*2), Y2; \
	VBROADCASTSS (BX), Y3; \
	VFMADD231PS  Y0, Y2, Y8; \
	VFMADD231PS  Y1, Y2, Y9; \
	VFMADD231PS  Y0, Y3, Y10; \
	VFMADD231PS  Y1, Y3, Y11; \
	VBROADCASTSS (BX)(R8*1), Y2; \
	VBROADCASTSS (BX)(R8*2), Y3; \
	VFMADD231PS  Y0, Y2, Y12; \
	VFMADD231PS  Y1, Y2, Y13; \
	VFMADD231PS  Y0, Y3, Y14; \
	VFMADD231PS  Y1, Y3, Y15; \
	ADDQ         R10, SI; \
	ADDQ         R10, BX

// Write-back of one 16-wide row pair (acc0, acc1) at DI: C = alpha*acc + beta*C.
#define ROW16(acc0, acc1) \
	VMULPS      Y0, acc0, acc0; \
	VMULPS      Y0, acc1, acc1; \
	VFMADD231PS (DI), Y1, acc0; \
	VFMADD231PS 32(DI), Y1, acc1; \
	VMOVUPS     acc0, (DI); \
	VMOVUPS     acc1, 32(DI); \
	ADDQ        R11, DI

// Store-only write-back (alpha == 1, beta == 0).
#define ROW16S(acc0, acc1) \
	VMOVUPS acc0, (DI); \
	VMOVUPS acc1, 32(DI); \
	ADDQ    R11, DI

#define ROW16B0(acc0, acc1) \
	VMULPS  Y0, acc0, acc0; \
	VMULPS  Y0, acc1, acc1; \
	VMOVUPS acc0, (DI); \
	VMOVUPS acc1, 32(DI); \
	ADDQ    R11, DI

// The main loops run 8 p per iteration and issue, once per iteration, one
// prefetch for each of a few lines pf, pf+pfs, pf+2*pfs, ... bytes past the
// current A position (R12 tracks A+pf, R13 walks the lines, R11 = pfs, R14 =
// 8*csA; C's row stride is reloaded for the write-back). The driver aims them
// at the A data the following iterations or the next panel will read; a hint
// at data already cached costs only the prefetch instructions; pfs == 0 skips
// them (the 6×16 kernel only: for an A block already in cache, where on a
// short k they cost about a tenth of the loop).

// func kern6x16(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)
//
// Runs tiles tiles one after the other: tile t reads A at a + t*aStep and
// writes C at c + t*cStep (the same B panel), so one call covers a column of
// tiles. Locals hold the current A and C bases and the tiles left.
TEXT ·kern6x16(SB), NOSPLIT, $24-104
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

k6x16tile:
	MOVQ k+0(FP), CX
	MOVQ abase-8(SP), SI
	MOVQ b+32(FP), DX
	MOVQ pf+56(FP), R12
	MOVQ pfs+64(FP), R11
	LEAQ (SI)(R9*1), BX  // row 3
	ADDQ SI, R12

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	CMPQ CX, $8
	JLT  k6x16tail

k6x16loop8:
	TESTQ      R11, R11
	JZ         k6x16nopf
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

k6x16nopf:
	STEP6x16(0)
	STEP6x16(64)
	STEP6x16(128)
	STEP6x16(192)
	STEP6x16(256)
	STEP6x16(320)
	STEP6x16(384)
	STEP6x16(448)
	ADDQ R14, R12
	ADDQ $512, DX
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  k6x16loop8

k6x16tail:
	TESTQ CX, CX
	JZ    k6x16store

k6x16loop1:
	STEP6x16(0)
	ADDQ $64, DX
	DECQ CX
	JNZ  k6x16loop1

k6x16store:
	MOVQ         cbase-16(SP), DI
	MOVQ         ldc+48(FP), R11
	VBROADCASTSS alpha+72(FP), Y0
	VBROADCASTSS beta+76(FP), Y1
	MOVL         beta+76(FP), AX
	TESTL        $0x7fffffff, AX
	JZ           k6x16beta0
	ROW16(Y4, Y5)
	ROW16(Y6, Y7)
	ROW16(Y8, Y9)
	ROW16(Y10, Y11)
	ROW16(Y12, Y13)
	ROW16(Y14, Y15)
	JMP k6x16next

k6x16beta0:
	MOVL  alpha+72(FP), AX
	CMPL  AX, $0x3f800000
	JEQ   k6x16alpha1
	ROW16B0(Y4, Y5)
	ROW16B0(Y6, Y7)
	ROW16B0(Y8, Y9)
	ROW16B0(Y10, Y11)
	ROW16B0(Y12, Y13)
	ROW16B0(Y14, Y15)
	JMP k6x16next

k6x16alpha1:
	ROW16S(Y4, Y5)
	ROW16S(Y6, Y7)
	ROW16S(Y8, Y9)
	ROW16S(Y10, Y11)
	ROW16S(Y12, Y13)
	ROW16S(Y14, Y15)

k6x16next:
	MOVQ abase-8(SP), AX
	ADDQ aStep+88(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ cbase-16(SP), AX
	ADDQ cStep+96(FP), AX
	MOVQ AX, cbase-16(SP)
	DECQ left-24(SP)
	JNZ  k6x16tile
	VZEROUPPER
	RET

// The 12×8 kernel is for narrow outputs (n <= 8): twelve one-register rows.
// Rows are addressed from three bases: SI (rows 0-4, 6, 8), AX = SI+5*rsA
// (rows 5, 7) and BX = SI+9*rsA (rows 9-11), with R8 = rsA and R9 = 3*rsA.
// Prefetching as in the 6×16 kernel, twelve lines per iteration.
#define STEP12x8(off) \
	VMOVUPS      off(DX), Y0; \
	VBROADCASTSS (SI), Y1; \
	VBROADCASTSS (SI)(R8*1), Y2; \
	VBROADCASTSS (SI)(R8*2), Y3; \
	VFMADD231PS  Y0, Y1, Y4; \
	VFMADD231PS  Y0, Y2, Y5; \
	VFMADD231PS  Y0, Y3, Y6; \
	VBROADCASTSS (SI)(R9*1), Y1; \
	VBROADCASTSS (SI)(R8*4), Y2; \
	VBROADCASTSS (AX), Y3; \
	VFMADD231PS  Y0, Y1, Y7; \
	VFMADD231PS  Y0, Y2, Y8; \
	VFMADD231PS  Y0, Y3, Y9; \
	VBROADCASTSS (SI)(R9*2), Y1; \
	VBROADCASTSS (AX)(R8*2), Y2; \
	VBROADCASTSS (SI)(R8*8), Y3; \
	VFMADD231PS  Y0, Y1, Y10; \
	VFMADD231PS  Y0, Y2, Y11; \
	VFMADD231PS  Y0, Y3, Y12; \
	VBROADCASTSS (BX), Y1; \
	VBROADCASTSS (BX)(R8*1), Y2; \
	VBROADCASTSS (BX)(R8*2), Y3; \
	VFMADD231PS  Y0, Y1, Y13; \
	VFMADD231PS  Y0, Y2, Y14; \
	VFMADD231PS  Y0, Y3, Y15; \
	ADDQ         R10, SI; \
	ADDQ         R10, AX; \
	ADDQ         R10, BX

#define ROW8(acc) \
	VMULPS      Y0, acc, acc; \
	VFMADD231PS (DI), Y1, acc; \
	VMOVUPS     acc, (DI); \
	ADDQ        R11, DI

#define ROW8B0(acc) \
	VMULPS  Y0, acc, acc; \
	VMOVUPS acc, (DI); \
	ADDQ    R11, DI

// func kern12x8(k int, a unsafe.Pointer, rsA, csA uintptr, b, c unsafe.Pointer, ldc, pf, pfs uintptr, alpha, beta float32, tiles int, aStep, cStep uintptr)
TEXT ·kern12x8(SB), NOSPLIT, $24-104
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

k12x8tile:
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

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	CMPQ CX, $8
	JLT  k12x8tail

k12x8loop8:
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
	STEP12x8(0)
	STEP12x8(32)
	STEP12x8(64)
	STEP12x8(96)
	STEP12x8(128)
	STEP12x8(160)
	STEP12x8(192)
	STEP12x8(224)
	ADDQ R14, R12
	ADDQ $256, DX
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  k12x8loop8

k12x8tail:
	TESTQ CX, CX
	JZ    k12x8store

k12x8loop1:
	STEP12x8(0)
	ADDQ $32, DX
	DECQ CX
	JNZ  k12x8loop1

k12x8store:
	MOVQ         cbase-16(SP), DI
	MOVQ         ldc+48(FP), R11
	VBROADCASTSS alpha+72(FP), Y0
	VBROADCASTSS beta+76(FP), Y1
	MOVL         beta+76(FP), AX
	TESTL        $0x7fffffff, AX
	JZ           k12x8beta0
	ROW8(Y4)
	ROW8(Y5)
	ROW8(Y6)
	ROW8(Y7)
	ROW8(Y8)
	ROW8(Y9)
	ROW8(Y10)
	ROW8(Y11)
	ROW8(Y12)
	ROW8(Y13)
	ROW8(Y14)
	ROW8(Y15)
	JMP k12x8next

k12x8beta0:
	ROW8B0(Y4)
	ROW8B0(Y5)
	ROW8B0(Y6)
	ROW8B0(Y7)
	ROW8B0(Y8)
	ROW8B0(Y9)
	ROW8B0(Y10)
	ROW8B0(Y11)
	ROW8B0(Y12)
	ROW8B0(Y13)
	ROW8B0(Y14)
	ROW8B0(Y15)

k12x8next:
	MOVQ abase-8(SP), AX
	ADDQ aStep+88(FP), AX
	MOVQ AX, abase-8(SP)
	MOVQ cbase-16(SP), AX
	ADDQ cStep+96(FP), AX
	MOVQ AX, cbase-16(SP)
	DECQ left-24(SP)
	JNZ  k12x8tile
	VZEROUPPER
	RET

// func fmaPeakAVX2(n int)
// n iterations of 12 independent 8-lane FMAs (192 flops each), registers only.
TEXT ·fmaPeakAVX2(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	TESTQ  CX, CX
	JZ     peakdone

peakloop:
	VFMADD231PS Y0, Y1, Y4
	VFMADD231PS Y0, Y1, Y5
	VFMADD231PS Y0, Y1, Y6
	VFMADD231PS Y0, Y1, Y7
	VFMADD231PS Y0, Y1, Y8
	VFMADD231PS Y0, Y1, Y9
	VFMADD231PS Y0, Y1, Y10
	VFMADD231PS Y0, Y1, Y11
	VFMADD231PS Y0, Y1, Y12
	VFMADD231PS Y0, Y1, Y13
	VFMADD231PS Y0, Y1, Y14
	VFMADD231PS Y0, Y1, Y15
	DECQ        CX
	JNZ         peakloop

peakdone:
	VZEROUPPER
	RET

// Dot-product kernel for narrow outputs with a row-major A (n <= 8):
//
//	C[i][j] = alpha * Σ_{p<k} A[i][p]·Bt[j][p] + beta * C[i][j],  i < 2, j < 4,
//
// A rows lda bytes apart, read in place; Bt = op(B)ᵀ packed with rows ldbt
// bytes apart and zero-padded to a multiple of 8 in p. Each of the 8
// accumulators holds 8 partial sums (lane l sums p ≡ l mod 8, in increasing
// p); they are reduced in a fixed tree at the end. The last k%8 values of A
// are loaded under mask (mask points at 8 int32 lanes, -1 for the lanes kept),
// so A is never read past its row.

// func dot2x4(k int, a unsafe.Pointer, lda uintptr, bt unsafe.Pointer, ldbt uintptr, c unsafe.Pointer, ldc uintptr, alpha, beta float32, mask unsafe.Pointer)
TEXT ·dot2x4(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ bt+24(FP), DX
	MOVQ ldbt+32(FP), R9
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	LEAQ (R9)(R9*2), R10

	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13

	MOVQ  CX, AX
	ANDQ  $7, AX
	SHRQ  $3, CX
	TESTQ CX, CX
	JZ    dottail

dotloop:
	VMOVUPS     (SI), Y0
	VMOVUPS     (SI)(R8*1), Y1
	VMOVUPS     (DX), Y2
	VMOVUPS     (DX)(R9*1), Y3
	VMOVUPS     (DX)(R9*2), Y4
	VMOVUPS     (DX)(R10*1), Y5
	VFMADD231PS Y2, Y0, Y6
	VFMADD231PS Y3, Y0, Y7
	VFMADD231PS Y4, Y0, Y8
	VFMADD231PS Y5, Y0, Y9
	VFMADD231PS Y2, Y1, Y10
	VFMADD231PS Y3, Y1, Y11
	VFMADD231PS Y4, Y1, Y12
	VFMADD231PS Y5, Y1, Y13
	ADDQ        $32, SI
	ADDQ        $32, DX
	DECQ        CX
	JNZ         dotloop

dottail:
	TESTQ       AX, AX
	JZ          dotreduce
	MOVQ        mask+64(FP), BX
	VMOVUPS     (BX), Y14
	VMASKMOVPS  (SI), Y14, Y0
	ADDQ        R8, SI
	VMASKMOVPS  (SI), Y14, Y1
	VMOVUPS     (DX), Y2
	VMOVUPS     (DX)(R9*1), Y3
	VMOVUPS     (DX)(R9*2), Y4
	VMOVUPS     (DX)(R10*1), Y5
	VFMADD231PS Y2, Y0, Y6
	VFMADD231PS Y3, Y0, Y7
	VFMADD231PS Y4, Y0, Y8
	VFMADD231PS Y5, Y0, Y9
	VFMADD231PS Y2, Y1, Y10
	VFMADD231PS Y3, Y1, Y11
	VFMADD231PS Y4, Y1, Y12
	VFMADD231PS Y5, Y1, Y13

dotreduce:
	// Row 0: Y6..Y9 -> X6 = [c0 c1 c2 c3]; row 1: Y10..Y13 -> X10.
	VHADDPS      Y7, Y6, Y6
	VHADDPS      Y9, Y8, Y8
	VHADDPS      Y8, Y6, Y6
	VEXTRACTF128 $1, Y6, X7
	VADDPS       X7, X6, X6
	VHADDPS      Y11, Y10, Y10
	VHADDPS      Y13, Y12, Y12
	VHADDPS      Y12, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPS       X11, X10, X10

	VBROADCASTSS alpha+56(FP), X0
	VBROADCASTSS beta+60(FP), X1
	VMULPS       X0, X6, X6
	VMULPS       X0, X10, X10
	MOVL         beta+60(FP), AX
	TESTL        $0x7fffffff, AX
	JZ           dotbeta0
	VFMADD231PS  (DI), X1, X6
	VFMADD231PS  (DI)(R11*1), X1, X10

dotbeta0:
	VMOVUPS X6, (DI)
	VMOVUPS X10, (DI)(R11*1)
	VZEROUPPER
	RET

// func pack6AVX2(dst, src unsafe.Pointer, lda uintptr, blocks int, ds uintptr)
//
// Transposes a 6×(8·blocks) block of a row-major matrix (rows lda bytes
// apart) into p-major order: for each p the six values of column p are stored
// as six consecutive floats at dst + p*ds. Each column is written as a 16-byte
// store (rows 0-3) plus an 8-byte store (rows 4-5), so nothing else is touched.
TEXT ·pack6AVX2(SB), NOSPLIT, $0-40
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  lda+16(FP), R8
	MOVQ  blocks+24(FP), CX
	MOVQ  ds+32(FP), R9
	LEAQ  (R8)(R8*2), R10 // 3*lda
	LEAQ  (SI)(R10*1), BX // row 3
	TESTQ CX, CX
	JZ    packdone

packloop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (BX), Y3
	VMOVUPS (BX)(R8*1), Y4
	VMOVUPS (BX)(R8*2), Y5

	// Pairs: Y8 = [r0_0 r1_0 r0_1 r1_1 | r0_4 r1_4 r0_5 r1_5], Y9 the same
	// for p 2,3 | 6,7; Y10, Y11 for rows 2-3; Y12, Y13 for rows 4-5.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13

	// Rows 0-3 of one column per 128-bit lane: Y0 = [p0 | p4], Y1 = [p1 | p5],
	// Y2 = [p2 | p6], Y3 = [p3 | p7].
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3

	VMOVUPS X0, (DI)
	VMOVLPS X12, 16(DI)
	ADDQ    R9, DI
	VMOVUPS X1, (DI)
	VMOVHPS X12, 16(DI)
	ADDQ    R9, DI
	VMOVUPS X2, (DI)
	VMOVLPS X13, 16(DI)
	ADDQ    R9, DI
	VMOVUPS X3, (DI)
	VMOVHPS X13, 16(DI)
	ADDQ    R9, DI

	VEXTRACTF128 $1, Y0, X0
	VEXTRACTF128 $1, Y1, X1
	VEXTRACTF128 $1, Y2, X2
	VEXTRACTF128 $1, Y3, X3
	VEXTRACTF128 $1, Y12, X12
	VEXTRACTF128 $1, Y13, X13
	VMOVUPS      X0, (DI)
	VMOVLPS      X12, 16(DI)
	ADDQ         R9, DI
	VMOVUPS      X1, (DI)
	VMOVHPS      X12, 16(DI)
	ADDQ         R9, DI
	VMOVUPS      X2, (DI)
	VMOVLPS      X13, 16(DI)
	ADDQ         R9, DI
	VMOVUPS      X3, (DI)
	VMOVHPS      X13, 16(DI)
	ADDQ         R9, DI

	ADDQ $32, SI
	ADDQ $32, BX
	DECQ CX
	JNZ  packloop

packdone:
	VZEROUPPER
	RET

// func packTransAVX2(dst, src unsafe.Pointer, lda uintptr, kb, npan, mr int)
//
// Packs npan full mr-row panels (mr = 6 or 12) of op(A) = Aᵀ: for p < kb and
// q < npan, the mr floats at src + p*lda + q*mr*4 (contiguous in the stored
// A) go to dst + q*kb*mr*4 + p*mr*4. Rows of A are read in order, and exactly
// mr floats are read and written per panel and p.
TEXT ·packTransAVX2(SB), NOSPLIT, $0-48
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  lda+16(FP), R8
	MOVQ  kb+24(FP), CX
	MOVQ  npan+32(FP), R9
	MOVQ  mr+40(FP), R10
	MOVQ  R10, R12
	SHLQ  $2, R12     // mr*4: dst step per p
	MOVQ  CX, R11
	IMULQ R12, R11    // kb*mr*4: dst step per panel
	TESTQ CX, CX
	JZ    ptdone
	TESTQ R9, R9
	JZ    ptdone
	CMPQ  R10, $12
	JEQ   pt12

pt6p:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R9, DX

pt6q:
	VMOVUPS (AX), X0
	MOVQ    16(AX), R13
	VMOVUPS X0, (BX)
	MOVQ    R13, 16(BX)
	ADDQ    $24, AX
	ADDQ    R11, BX
	DECQ    DX
	JNZ     pt6q
	ADDQ    R8, SI
	ADDQ    R12, DI
	DECQ    CX
	JNZ     pt6p
	JMP     ptdone

pt12:
pt12p:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R9, DX

pt12q:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), X1
	VMOVUPS Y0, (BX)
	VMOVUPS X1, 32(BX)
	ADDQ    $48, AX
	ADDQ    R11, BX
	DECQ    DX
	JNZ     pt12q
	ADDQ    R8, SI
	ADDQ    R12, DI
	DECQ    CX
	JNZ     pt12p

ptdone:
	VZEROUPPER
	RET

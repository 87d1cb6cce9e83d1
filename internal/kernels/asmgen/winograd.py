# Generates ../winograd_amd64.s (run from internal/kernels/asmgen: python3 winograd.py).
# The assembly is unrolled per tile; this script keeps the unrolling readable.
L=[]
def e(s): L.append(s)
e('//go:build amd64 && !purego')
e('')
e('#include "textflag.h"')
e('')
e('// AVX2 tile transforms of the 3-D Winograd convolution F(2x2x2, 3x3x3); see')
e('// winograd.go for the matrices and the layouts. Each call transforms one tile')
e('// for 8*chunks channels, eight channels per instruction, with the same')
e('// operations in the same order as the portable Go versions. tmp is a')
e('// 2 KiB scratch area (64 vectors).')
e('')
e('// BT4: o0 = a-c, o1 = b+c, o2 = c-b, o3 = b-d  (one line of B^T d)')
e('#define BT4(a, b, c, d, o0, o1, o2, o3) \\')
e('\tVSUBPS c, a, o0; \\')
e('\tVADDPS c, b, o1; \\')
e('\tVSUBPS b, c, o2; \\')
e('\tVSUBPS d, b, o3')
e('')
e('// AT4: o0 = (a+b)+c, o1 = (b-c)-d  (one line of A^T m)')
e('#define AT4(a, b, c, d, o0, o1) \\')
e('\tVADDPS b, a, o0; \\')
e('\tVADDPS c, o0, o0; \\')
e('\tVSUBPS c, b, o1; \\')
e('\tVSUBPS d, o1, o1')
e('')
e('// AG2: q1 = a+b, q2 = a-b, q3 = 0-b (Y15 = 0)  (one line of A g; q0 = a)')
e('#define AG2(a, b, q1, q2, q3) \\')
e('\tVADDPS b, a, q1; \\')
e('\tVSUBPS b, a, q2; \\')
e('\tVSUBPS b, Y15, q3')
e('')
# ---------------- winoIn (and winoInBF16AVX2: the same transform, each output
# point rounded to bfloat16 and stored as 8 bf16 values, 16 bytes per chunk)
def gen_in(name, bf16):
    lbl = 'inbf' if bf16 else 'in'
    e('// func %s(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, sx, sy, sz uintptr, chunks int, tmp unsafe.Pointer)' % name)
    if bf16:
        e('// The rounding is PyTorch\'s float -> bfloat16: bits + 0x7FFF + (bits>>16 & 1),')
        e('// the high half kept, NaN -> 0x7FC0 (bf16FromF32); ds is in bytes (4 per')
        e('// bf16 pair). VPMOVDW with a Y source needs AVX-512F and VL (the bf16 CPUs).')
    e('TEXT ·%s(SB), NOSPLIT, $0-64' % name)
    e('\tMOVQ dst+0(FP), DI')
    e('\tMOVQ ds+8(FP), R8')
    e('\tMOVQ src+16(FP), SI')
    e('\tMOVQ sx+24(FP), R9')
    e('\tMOVQ sy+32(FP), R10')
    e('\tMOVQ sz+40(FP), R11')
    e('\tMOVQ chunks+48(FP), CX')
    e('\tMOVQ tmp+56(FP), R12')
    e('\tLEAQ (R9)(R9*2), R13')
    e('\tMOVQ R8, AX')
    e('\tSHLQ $4, AX')
    e('\tLEAQ (AX)(AX*1), BX')
    e('\tLEAQ (BX)(AX*1), DX')
    if bf16:
        e('\tVPBROADCASTD winoBF16One<>(SB), Y8')
        e('\tVPBROADCASTD winoBF16Bias<>(SB), Y9')
        e('\tVPBROADCASTD winoBF16NaN<>(SB), Y10')
    e('%schunk:' % lbl)
    e('\t// along x: 16 lines (z, y)')
    e('\tMOVQ SI, R15')
    for z in range(4):
        e('\tMOVQ R15, R14')
        for y in range(4):
            off=(z*4+y)*128
            e('\tVMOVUPS (R14), Y0')
            e('\tVMOVUPS (R14)(R9*1), Y1')
            e('\tVMOVUPS (R14)(R9*2), Y2')
            e('\tVMOVUPS (R14)(R13*1), Y3')
            e('\tBT4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)')
            for k in range(4):
                e('\tVMOVUPS Y%d, %d(R12)'%(4+k, off+32*k))
            if y<3: e('\tADDQ R10, R14')
        if z<3: e('\tADDQ R11, R15')
    e('\t// along y: 16 lines (z, x), in place')
    for z in range(4):
        for x in range(4):
            off=z*512+x*32
            for k in range(4): e('\tVMOVUPS %d(R12), Y%d'%(off+128*k, k))
            e('\tBT4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)')
            for k in range(4): e('\tVMOVUPS Y%d, %d(R12)'%(4+k, off+128*k))
    e('\t// along z: 16 lines (y, x), into dst')
    e('\tMOVQ DI, R14')
    dsts=['(R14)','(R14)(AX*1)','(R14)(BX*1)','(R14)(DX*1)']
    for i in range(16):
        off=i*32
        for k in range(4): e('\tVMOVUPS %d(R12), Y%d'%(off+512*k, k))
        e('\tBT4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)')
        for k in range(4):
            if bf16:
                e('\tROUNDBF16Y(Y%d, Y11, Y12)' % (4+k))
                e('\tVPMOVDW Y11, %s' % dsts[k])
            else:
                e('\tVMOVUPS Y%d, %s' % (4+k, dsts[k]))
        if i<15: e('\tADDQ R8, R14')
    e('\tADDQ $32, SI')
    e('\tADDQ $%d, DI' % (16 if bf16 else 32))
    e('\tDECQ CX')
    e('\tJNZ %schunk' % lbl)
    e('\tVZEROUPPER')
    e('\tRET')
    e('')
gen_in('winoInAVX2', False)
# ---------------- winoOut
e('// func winoOutAVX2(dst unsafe.Pointer, sx, sy, sz uintptr, src unsafe.Pointer, ss uintptr, chunks int, tmp, bias unsafe.Pointer, acc int)')
e('TEXT ·winoOutAVX2(SB), NOSPLIT, $0-80')
e('\tMOVQ dst+0(FP), DI')
e('\tMOVQ sx+8(FP), R9')
e('\tMOVQ sy+16(FP), R10')
e('\tMOVQ sz+24(FP), R11')
e('\tMOVQ src+32(FP), SI')
e('\tMOVQ ss+40(FP), R8')
e('\tMOVQ chunks+48(FP), CX')
e('\tMOVQ tmp+56(FP), R12')
e('\tMOVQ bias+64(FP), R13')
e('\tMOVQ acc+72(FP), R15')
e('outchunk:')
e('\tVXORPS Y14, Y14, Y14')
e('\tTESTQ R13, R13')
e('\tJZ outnobias')
e('\tVMOVUPS (R13), Y14')
e('\tADDQ $32, R13')
e('outnobias:')
e('\t// along z: 16 lines (y, x) of 4 points into 2')
e('\tMOVQ R8, AX')
e('\tSHLQ $4, AX')
e('\tLEAQ (AX)(AX*1), BX')
e('\tLEAQ (BX)(AX*1), DX')
e('\tMOVQ SI, R14')
for i in range(16):
    e('\tVMOVUPS (R14), Y0')
    e('\tVMOVUPS (R14)(AX*1), Y1')
    e('\tVMOVUPS (R14)(BX*1), Y2')
    e('\tVMOVUPS (R14)(DX*1), Y3')
    e('\tAT4(Y0, Y1, Y2, Y3, Y4, Y5)')
    e('\tVMOVUPS Y4, %d(R12)'%(i*32))
    e('\tVMOVUPS Y5, %d(R12)'%(512+i*32))
    if i<15: e('\tADDQ R8, R14')
e('\t// along y: 8 lines (zo, x), in place')
for zo in range(2):
    for x in range(4):
        off=zo*512+x*32
        for k in range(4): e('\tVMOVUPS %d(R12), Y%d'%(off+128*k, k))
        e('\tAT4(Y0, Y1, Y2, Y3, Y4, Y5)')
        e('\tVMOVUPS Y4, %d(R12)'%off)
        e('\tVMOVUPS Y5, %d(R12)'%(off+128))
e('\t// along x: 4 lines (zo, yo), plus bias, into dst')
e('\tMOVQ DI, AX')
e('\tLEAQ (DI)(R10*1), BX')
e('\tLEAQ (DI)(R11*1), DX')
e('\tLEAQ (DX)(R10*1), R14')
groups=[(0,'AX'),(128,'BX'),(512,'DX'),(640,'R14')]
for off,reg in groups:
    for k in range(4): e('\tVMOVUPS %d(R12), Y%d'%(off+32*k, k))
    e('\tAT4(Y0, Y1, Y2, Y3, Y%d, Y%d)'%(4+2*groups.index((off,reg)), 5+2*groups.index((off,reg))))
e('\tTESTQ R15, R15')
e('\tJNZ outacc')
for gi,(off,reg) in enumerate(groups):
    a,b=4+2*gi,5+2*gi
    e('\tVADDPS Y14, Y%d, Y%d'%(a,a))
    e('\tVADDPS Y14, Y%d, Y%d'%(b,b))
    e('\tVMOVUPS Y%d, (%s)'%(a,reg))
    e('\tVMOVUPS Y%d, (%s)(R9*1)'%(b,reg))
e('\tJMP outnext')
e('outacc:')
for gi,(off,reg) in enumerate(groups):
    a,b=4+2*gi,5+2*gi
    e('\tVADDPS Y14, Y%d, Y%d'%(a,a))
    e('\tVADDPS Y14, Y%d, Y%d'%(b,b))
    e('\tVADDPS (%s), Y%d, Y%d'%(reg,a,a))
    e('\tVADDPS (%s)(R9*1), Y%d, Y%d'%(reg,b,b))
    e('\tVMOVUPS Y%d, (%s)'%(a,reg))
    e('\tVMOVUPS Y%d, (%s)(R9*1)'%(b,reg))
e('outnext:')
e('\tADDQ $32, SI')
e('\tADDQ $32, DI')
e('\tDECQ CX')
e('\tJNZ outchunk')
e('\tVZEROUPPER')
e('\tRET')
e('')
# ---------------- winoGrad
e('// func winoGradAVX2(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, sx, sy, sz uintptr, chunks int, tmp unsafe.Pointer)')
e('TEXT ·winoGradAVX2(SB), NOSPLIT, $0-64')
e('\tMOVQ dst+0(FP), DI')
e('\tMOVQ ds+8(FP), R8')
e('\tMOVQ src+16(FP), SI')
e('\tMOVQ sx+24(FP), R9')
e('\tMOVQ sy+32(FP), R10')
e('\tMOVQ sz+40(FP), R11')
e('\tMOVQ chunks+48(FP), CX')
e('\tMOVQ tmp+56(FP), R12')
e('\tVXORPS Y15, Y15, Y15')
e('\tMOVQ R8, AX')
e('\tSHLQ $4, AX')
e('\tLEAQ (AX)(AX*1), BX')
e('\tLEAQ (BX)(AX*1), DX')
e('gradchunk:')
e('\t// along x: 4 lines (z, y) of 2 points into 4')
e('\tMOVQ SI, R14')
e('\tLEAQ (SI)(R10*1), R15')
e('\tLEAQ (SI)(R11*1), R13')
for (z,y,reg) in [(0,0,'R14'),(0,1,'R15'),(1,0,'R13')]:
    off=z*512+y*128
    e('\tVMOVUPS (%s), Y0'%reg)
    e('\tVMOVUPS (%s)(R9*1), Y1'%reg)
    e('\tAG2(Y0, Y1, Y2, Y3, Y4)')
    e('\tVMOVUPS Y0, %d(R12)'%off)
    e('\tVMOVUPS Y2, %d(R12)'%(off+32))
    e('\tVMOVUPS Y3, %d(R12)'%(off+64))
    e('\tVMOVUPS Y4, %d(R12)'%(off+96))
e('\tADDQ R10, R13')
off=512+128
e('\tVMOVUPS (R13), Y0')
e('\tVMOVUPS (R13)(R9*1), Y1')
e('\tAG2(Y0, Y1, Y2, Y3, Y4)')
e('\tVMOVUPS Y0, %d(R12)'%off)
e('\tVMOVUPS Y2, %d(R12)'%(off+32))
e('\tVMOVUPS Y3, %d(R12)'%(off+64))
e('\tVMOVUPS Y4, %d(R12)'%(off+96))
e('\t// along y: 8 lines (z, x) of 2 points into 4, in place')
for z in range(2):
    for x in range(4):
        off=z*512+x*32
        e('\tVMOVUPS %d(R12), Y0'%off)
        e('\tVMOVUPS %d(R12), Y1'%(off+128))
        e('\tAG2(Y0, Y1, Y2, Y3, Y4)')
        e('\tVMOVUPS Y2, %d(R12)'%(off+128))
        e('\tVMOVUPS Y3, %d(R12)'%(off+256))
        e('\tVMOVUPS Y4, %d(R12)'%(off+384))
e('\t// along z: 16 lines (y, x) of 2 points into 4, into dst')
e('\tMOVQ DI, R14')
for i in range(16):
    off=i*32
    e('\tVMOVUPS %d(R12), Y0'%off)
    e('\tVMOVUPS %d(R12), Y1'%(off+512))
    e('\tAG2(Y0, Y1, Y2, Y3, Y4)')
    e('\tVMOVUPS Y0, (R14)')
    e('\tVMOVUPS Y2, (R14)(AX*1)')
    e('\tVMOVUPS Y3, (R14)(BX*1)')
    e('\tVMOVUPS Y4, (R14)(DX*1)')
    if i<15: e('\tADDQ R8, R14')
e('\tADDQ $32, SI')
e('\tADDQ $32, DI')
e('\tDECQ CX')
e('\tJNZ gradchunk')
e('\tVZEROUPPER')
e('\tRET')
e('// ROUNDBF16Y(y, r, t): r = the bfloat16 of each float32 lane of y in the low')
e('// half of its dword (t clobbered); Y8-Y10 hold 1, 0x7FFF and 0x7FC00000.')
e('#define ROUNDBF16Y(y, r, t) \\')
e('\tVPSRLD    $16, y, r; \\')
e('\tVPAND     Y8, r, r; \\')
e('\tVPADDD    Y9, r, r; \\')
e('\tVPADDD    y, r, r; \\')
e('\tVCMPPS    $3, y, y, t; \\')
e('\tVBLENDVPS t, Y10, r, r; \\')
e('\tVPSRLD    $16, r, r')
e('')
e('DATA winoBF16One<>+0(SB)/4, $1')
e('GLOBL winoBF16One<>(SB), RODATA|NOPTR, $4')
e('DATA winoBF16Bias<>+0(SB)/4, $0x7fff')
e('GLOBL winoBF16Bias<>(SB), RODATA|NOPTR, $4')
e('DATA winoBF16NaN<>+0(SB)/4, $0x7fc00000')
e('GLOBL winoBF16NaN<>(SB), RODATA|NOPTR, $4')
e('')
gen_in('winoInBF16AVX2', True)
open('../winograd_amd64.s','w').write('\n'.join(L)+'\n')

# ---------------- kernel transforms (appended to the same file)
M=[]
def f(s): M.append(s)
f('')
f('// GROW: w0, w1, w2 -> o0 = w0, o1 = 0.5*((w0+w2)+w1), o2 = 0.5*((w0+w2)-w1), o3 = w2 (Y15 = 0.5, Y3 scratch)')
f('#define GROW(w0, w1, w2, o1, o2) \\')
f('\tVADDPS w2, w0, Y3; \\')
f('\tVADDPS w1, Y3, o1; \\')
f('\tVSUBPS w1, Y3, o2; \\')
f('\tVMULPS Y15, o1, o1; \\')
f('\tVMULPS Y15, o2, o2')
f('')
f('// GTROW: u0..u3 -> s = 0.5*(u1+u2), o0 = u0+s, o1 = 0.5*(u1-u2), o2 = s+u3 (Y15 = 0.5)')
f('#define GTROW(u0, u1, u2, u3, s, o1) \\')
f('\tVADDPS u2, u1, s; \\')
f('\tVMULPS Y15, s, s; \\')
f('\tVSUBPS u2, u1, o1; \\')
f('\tVMULPS Y15, o1, o1; \\')
f('\tVADDPS s, u0, u0; \\')
f('\tVADDPS u3, s, s')
f('')
f('DATA winoHalf<>+0(SB)/4, $0.5')
f('GLOBL winoHalf<>(SB), RODATA|NOPTR, $4')
f('')
f('// func winoKernAVX2(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, ss uintptr, chunks int, tmp unsafe.Pointer)')
f('// dst[xi] = (G x G x G w)[xi] for the 27 kernel taps w[k] at src + k*ss.')
f('TEXT ·winoKernAVX2(SB), NOSPLIT, $0-48')
f('\tMOVQ dst+0(FP), DI')
f('\tMOVQ ds+8(FP), R8')
f('\tMOVQ src+16(FP), SI')
f('\tMOVQ ss+24(FP), R9')
f('\tMOVQ chunks+32(FP), CX')
f('\tMOVQ tmp+40(FP), R12')
f('\tVBROADCASTSS winoHalf<>(SB), Y15')
f('\tMOVQ R8, AX')
f('\tSHLQ $4, AX')
f('\tLEAQ (AX)(AX*1), BX')
f('\tLEAQ (BX)(AX*1), DX')
f('kernchunk:')
f('\t// along x: 9 lines (kz, ky) of 3 taps into 4, at tmp[(3kz+ky)*4 + c]')
f('\tMOVQ SI, R14')
for k in range(9):
    off=k*128
    f('\tVMOVUPS (R14), Y0')
    f('\tVMOVUPS (R14)(R9*1), Y1')
    f('\tVMOVUPS (R14)(R9*2), Y2')
    f('\tGROW(Y0, Y1, Y2, Y4, Y5)')
    f('\tVMOVUPS Y0, %d(R12)'%off)
    f('\tVMOVUPS Y4, %d(R12)'%(off+32))
    f('\tVMOVUPS Y5, %d(R12)'%(off+64))
    f('\tVMOVUPS Y2, %d(R12)'%(off+96))
    if k<8:
        f('\tLEAQ (R14)(R9*2), R14')
        f('\tADDQ R9, R14')
f('\t// along y: (kz, c) lines of 3 into 4, at tmp[36 + kz*16 + b*4 + c]')
for kz in range(3):
    for c in range(4):
        src=[(kz*12+ky*4+c)*32 for ky in range(3)]
        dst=[(36+kz*16+b*4+c)*32 for b in range(4)]
        for i in range(3): f('\tVMOVUPS %d(R12), Y%d'%(src[i],i))
        f('\tGROW(Y0, Y1, Y2, Y4, Y5)')
        f('\tVMOVUPS Y0, %d(R12)'%dst[0])
        f('\tVMOVUPS Y4, %d(R12)'%dst[1])
        f('\tVMOVUPS Y5, %d(R12)'%dst[2])
        f('\tVMOVUPS Y2, %d(R12)'%dst[3])
f('\t// along z: 16 lines (b, c) of 3 into 4, into dst')
f('\tMOVQ DI, R14')
for i in range(16):
    for kz in range(3): f('\tVMOVUPS %d(R12), Y%d'%((36+kz*16+i)*32,kz))
    f('\tGROW(Y0, Y1, Y2, Y4, Y5)')
    f('\tVMOVUPS Y0, (R14)')
    f('\tVMOVUPS Y4, (R14)(AX*1)')
    f('\tVMOVUPS Y5, (R14)(BX*1)')
    f('\tVMOVUPS Y2, (R14)(DX*1)')
    if i<15: f('\tADDQ R8, R14')
f('\tADDQ $32, SI')
f('\tADDQ $32, DI')
f('\tDECQ CX')
f('\tJNZ kernchunk')
f('\tVZEROUPPER')
f('\tRET')
f('')
f('// func winoKernAdjAVX2(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, ss uintptr, chunks int, tmp unsafe.Pointer)')
f('// dst[k] += (G^T x G^T x G^T u)[k] for the 64 points u[xi] at src + xi*ss, taps k at dst + k*ds.')
f('TEXT ·winoKernAdjAVX2(SB), NOSPLIT, $0-48')
f('\tMOVQ dst+0(FP), DI')
f('\tMOVQ ds+8(FP), R8')
f('\tMOVQ src+16(FP), SI')
f('\tMOVQ ss+24(FP), R9')
f('\tMOVQ chunks+32(FP), CX')
f('\tMOVQ tmp+40(FP), R12')
f('\tVBROADCASTSS winoHalf<>(SB), Y15')
f('\tMOVQ R9, AX')
f('\tSHLQ $4, AX')
f('\tLEAQ (AX)(AX*1), BX')
f('\tLEAQ (BX)(AX*1), DX')
f('adjchunk:')
f('\t// along z: 16 lines (b, c) of 4 into 3, at tmp[kz*16 + i]')
f('\tMOVQ SI, R14')
for i in range(16):
    f('\tVMOVUPS (R14), Y0')
    f('\tVMOVUPS (R14)(AX*1), Y1')
    f('\tVMOVUPS (R14)(BX*1), Y2')
    f('\tVMOVUPS (R14)(DX*1), Y3')
    f('\tGTROW(Y0, Y1, Y2, Y3, Y4, Y5)')
    f('\tVMOVUPS Y0, %d(R12)'%(i*32))
    f('\tVMOVUPS Y5, %d(R12)'%((16+i)*32))
    f('\tVMOVUPS Y4, %d(R12)'%((32+i)*32))
    if i<15: f('\tADDQ R9, R14')
f('\t// along y: (kz, c) lines of 4 into 3, at tmp[48 + (3kz+ky)*4 + c]')
for kz in range(3):
    for c in range(4):
        src=[(kz*16+b*4+c)*32 for b in range(4)]
        dst=[(48+(3*kz+ky)*4+c)*32 for ky in range(3)]
        for i in range(4): f('\tVMOVUPS %d(R12), Y%d'%(src[i],i))
        f('\tGTROW(Y0, Y1, Y2, Y3, Y4, Y5)')
        f('\tVMOVUPS Y0, %d(R12)'%dst[0])
        f('\tVMOVUPS Y5, %d(R12)'%dst[1])
        f('\tVMOVUPS Y4, %d(R12)'%dst[2])
f('\t// along x: 9 lines (kz, ky) of 4 into 3, added to dst')
f('\tMOVQ DI, R14')
for k in range(9):
    for i in range(4): f('\tVMOVUPS %d(R12), Y%d'%((48+4*k+i)*32,i))
    f('\tGTROW(Y0, Y1, Y2, Y3, Y4, Y5)')
    f('\tVADDPS (R14), Y0, Y0')
    f('\tVMOVUPS Y0, (R14)')
    f('\tVADDPS (R14)(R8*1), Y5, Y5')
    f('\tVMOVUPS Y5, (R14)(R8*1)')
    f('\tVADDPS (R14)(R8*2), Y4, Y4')
    f('\tVMOVUPS Y4, (R14)(R8*2)')
    if k<8:
        f('\tLEAQ (R14)(R8*2), R14')
        f('\tADDQ R8, R14')
f('\tADDQ $32, SI')
f('\tADDQ $32, DI')
f('\tDECQ CX')
f('\tJNZ adjchunk')
f('\tVZEROUPPER')
f('\tRET')
open('../winograd_amd64.s','a').write('\n'.join(M)+'\n')

# ---------------- AVX-512 input transforms (appended to the same file)
# Register-resident: for each z the 16 lines of the (y, x) slab are loaded
# into Z16-Z31 (or Y16-Y31), transformed along x and then y in registers
# (one free register serves as the temporary, renamed as BT4 goes), and
# stored to tmp for z = 0..2; slab z = 3 stays in registers for the z pass.
# That is 64 loads + 48 stores + 48 loads + 64 stores per chunk instead of
# 192 loads + 192 stores. The additions are the AVX2 version's and the Go
# version's, in the same order (o0 = a-c, o1 = b+c, o2 = c-b, o3 = b-d per
# line, x then y then z), so all three agree bit for bit.
N=[]
def n(s): N.append(s)

def epilogue(label, src_step, dst_step):
    # next chunk: advance src and dst, loop, return
    n('\tADDQ $%d, SI' % src_step)
    n('\tADDQ $%d, DI' % dst_step)
    n('\tDECQ CX')
    n('\tJNZ %sloop' % label)
    n('\tVZEROUPPER')
    n('\tRET')
    n('')

def prologue_in():
    # the arguments of the transforms with winoIn's signature
    for reg, arg in [('DI', 'dst+0'), ('R8', 'ds+8'), ('SI', 'src+16'), ('R9', 'sx+24'),
                     ('R10', 'sy+32'), ('R11', 'sz+40'), ('CX', 'chunks+48')]:
        n('\tMOVQ %s(FP), %s' % (arg, reg))

def gen_in512(name, R, bf16):
    # R: 'Z' (16 channels per chunk, 64 bytes) or 'Y' (8 channels, AVX-512VL)
    vb = 64 if R == 'Z' else 32
    lbl = name
    n('// func %s(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, sx, sy, sz uintptr, chunks int, tmp unsafe.Pointer)' % name)
    n('// %d channels per chunk%s; tmp: 48 vectors (%d bytes).' % (vb//4, ', stored as bfloat16 (ROUNDBF16Y\'s rounding)' if bf16 else '', 48*vb))
    n('TEXT ·%s(SB), NOSPLIT, $0-64' % name)
    prologue_in()
    n('\tMOVQ tmp+56(FP), R12')
    n('\tLEAQ (R9)(R9*2), R13')
    n('\tMOVQ R8, AX')
    n('\tSHLQ $4, AX')
    n('\tLEAQ (AX)(AX*1), BX')
    n('\tLEAQ (BX)(AX*1), DX')
    if bf16:
        n('\tVPBROADCASTD winoBF16One<>(SB), %s8' % R)
        n('\tVPBROADCASTD winoBF16Bias<>(SB), %s9' % R)
        n('\tVPBROADCASTD winoBF16NaN<>(SB), %s10' % R)
    n('%sloop:' % lbl)
    n('\tMOVQ SI, R15')
    # logical slab value (y, x) -> register number
    slab_final = None
    for z in range(4):
        regs = {}
        free = [0]  # temp register numbers available
        nxt = iter(range(16, 32))
        n('\t// z = %d: load the (y, x) slab' % z)
        n('\tMOVQ R15, R14')
        for y in range(4):
            for x, addr in enumerate(['(R14)', '(R14)(R9*1)', '(R14)(R9*2)', '(R14)(R13*1)']):
                r = next(nxt)
                regs[(y, x)] = r
                n('\tVMOVUPS %s, %s%d' % (addr, R, r))
            if y < 3: n('\tADDQ R10, R14')
        def bt4(keys):
            a, b, c, d = [regs[k] for k in keys]
            t = free.pop()
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, c, R, a, R, a))   # a = a - c
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, d, R, b, R, d))   # d = b - d
            n('\tVADDPS %s%d, %s%d, %s%d' % (R, c, R, b, R, t))   # t = b + c
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, b, R, c, R, c))   # c = c - b
            regs[keys[1]] = t
            free.append(b)
        n('\t// along x, then along y, in registers')
        for y in range(4):
            bt4([(y, 0), (y, 1), (y, 2), (y, 3)])
        for x in range(4):
            bt4([(0, x), (1, x), (2, x), (3, x)])
        if z < 3:
            for y in range(4):
                for x in range(4):
                    n('\tVMOVUPS %s%d, %d(R12)' % (R, regs[(y, x)], (z*16 + y*4 + x)*vb))
            n('\tADDQ R11, R15')
        else:
            slab_final = regs
            tempreg = free[0]
    n('\t// along z: 16 lines (y, x), into dst')
    n('\tMOVQ DI, R14')
    dsts = ['(R14)', '(R14)(AX*1)', '(R14)(BX*1)', '(R14)(DX*1)']
    used = set(slab_final.values())
    pool = [r for r in range(0, 8) if r != tempreg] + [tempreg]
    for i in range(16):
        y, x = i // 4, i % 4
        # lines z = 0..2 from tmp into X1..X3; z = 3 is in a register
        a, b, c = 1, 2, 3
        d = slab_final[(y, x)]
        for k, r in enumerate((a, b, c)):
            n('\tVMOVUPS %d(R12), %s%d' % ((k*16 + i)*vb, R, r))
        t = 4
        n('\tVSUBPS %s%d, %s%d, %s%d' % (R, c, R, a, R, a))
        n('\tVSUBPS %s%d, %s%d, %s%d' % (R, d, R, b, R, d))
        n('\tVADDPS %s%d, %s%d, %s%d' % (R, c, R, b, R, t))
        n('\tVSUBPS %s%d, %s%d, %s%d' % (R, b, R, c, R, c))
        outs = [a, t, c, d]
        for k in range(4):
            if bf16:
                n('\tVPSRLD $16, %s%d, %s11' % (R, outs[k], R))
                n('\tVPANDD %s8, %s11, %s11' % (R, R, R))
                n('\tVPADDD %s9, %s11, %s11' % (R, R, R))
                n('\tVPADDD %s%d, %s11, %s11' % (R, outs[k], R, R))
                n('\tVCMPPS $3, %s%d, %s%d, K1' % (R, outs[k], R, outs[k]))
                n('\tVMOVDQA32 %s10, K1, %s11' % (R, R))
                n('\tVPSRLD $16, %s11, %s11' % (R, R))
                n('\tVPMOVDW %s11, %s' % (R, dsts[k]))
            else:
                n('\tVMOVUPS %s%d, %s' % (R, outs[k], dsts[k]))
        if i < 15: n('\tADDQ R8, R14')
    epilogue(lbl, vb, (vb//2 if bf16 else vb))


def gen_out512(name, R):
    # The output transform, register-resident: for each output plane zo the
    # 16 lines along z are reduced straight from the points (o0 = (m0+m1)+m2,
    # o1 = (m1-m2)-m3) into registers, then y and x as in the AVX2 version;
    # no scratch. Same operations in the same order.
    vb = 64 if R == 'Z' else 32
    n('// func %s(dst unsafe.Pointer, sx, sy, sz uintptr, src unsafe.Pointer, ss uintptr, chunks int, tmp, bias unsafe.Pointer, acc int)' % name)
    n('// %d channels per chunk; tmp is not used.' % (vb//4))
    n('TEXT ·%s(SB), NOSPLIT, $0-80' % name)
    n('\tMOVQ dst+0(FP), DI')
    n('\tMOVQ sx+8(FP), R9')
    n('\tMOVQ sy+16(FP), R10')
    n('\tMOVQ sz+24(FP), R11')
    n('\tMOVQ src+32(FP), SI')
    n('\tMOVQ ss+40(FP), R8')
    n('\tMOVQ chunks+48(FP), CX')
    n('\tMOVQ bias+64(FP), R13')
    n('\tMOVQ acc+72(FP), R15')
    n('\tMOVQ R8, AX')
    n('\tSHLQ $4, AX')
    n('\tLEAQ (AX)(AX*1), BX')
    n('\tLEAQ (BX)(AX*1), DX')
    n('%sloop:' % name)
    n('\tVXORPS %s15, %s15, %s15' % (R, R, R))
    n('\tTESTQ R13, R13')
    n('\tJZ %snobias' % name)
    n('\tVMOVUPS (R13), %s15' % R)
    n('\tADDQ $%d, R13' % vb)
    n('%snobias:' % name)
    free = list(range(0, 15)) + list(range(16, 32))
    def alloc():
        return free.pop(0)
    def release(*rs):
        for r in rs: free.append(r)
    pts = ['(R14)', '(R14)(AX*1)', '(R14)(BX*1)', '(R14)(DX*1)']
    for zo in range(2):
        n('\t// output plane z = %d: along z from the points' % zo)
        n('\tMOVQ SI, R14')
        L = {}
        for i in range(16):
            if zo == 0:
                a, b, c = alloc(), alloc(), alloc()
                n('\tVMOVUPS %s, %s%d' % (pts[0], R, a))
                n('\tVMOVUPS %s, %s%d' % (pts[1], R, b))
                n('\tVMOVUPS %s, %s%d' % (pts[2], R, c))
                n('\tVADDPS %s%d, %s%d, %s%d' % (R, b, R, a, R, a))
                n('\tVADDPS %s%d, %s%d, %s%d' % (R, c, R, a, R, a))
                release(b, c)
                L[i] = a
            else:
                b, c, d = alloc(), alloc(), alloc()
                n('\tVMOVUPS %s, %s%d' % (pts[1], R, b))
                n('\tVMOVUPS %s, %s%d' % (pts[2], R, c))
                n('\tVMOVUPS %s, %s%d' % (pts[3], R, d))
                n('\tVSUBPS %s%d, %s%d, %s%d' % (R, c, R, b, R, b))
                n('\tVSUBPS %s%d, %s%d, %s%d' % (R, d, R, b, R, b))
                release(c, d)
                L[i] = b
            if i < 15: n('\tADDQ R8, R14')
        n('\t// along y: 4 lines (x) of 4 into 2')
        S = {}
        for x in range(4):
            a, b, c, d = L[x], L[4+x], L[8+x], L[12+x]
            o0 = alloc()
            n('\tVADDPS %s%d, %s%d, %s%d' % (R, b, R, a, R, o0))
            n('\tVADDPS %s%d, %s%d, %s%d' % (R, c, R, o0, R, o0))
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, c, R, b, R, b))
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, d, R, b, R, b))
            S[(0, x)], S[(1, x)] = o0, b
            release(a, c, d)
        n('\t// along x: 2 lines (yo) of 4 into 2, plus bias, into dst')
        n('\tMOVQ DI, R14')
        if zo == 1: n('\tADDQ R11, R14')
        for yo in range(2):
            if yo == 1: n('\tADDQ R10, R14')
            a, b, c, d = [S[(yo, x)] for x in range(4)]
            o0 = alloc()
            n('\tVADDPS %s%d, %s%d, %s%d' % (R, b, R, a, R, o0))
            n('\tVADDPS %s%d, %s%d, %s%d' % (R, c, R, o0, R, o0))
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, c, R, b, R, b))
            n('\tVSUBPS %s%d, %s%d, %s%d' % (R, d, R, b, R, b))
            n('\tVADDPS %s15, %s%d, %s%d' % (R, R, o0, R, o0))
            n('\tVADDPS %s15, %s%d, %s%d' % (R, R, b, R, b))
            n('\tTESTQ R15, R15')
            n('\tJZ %sset%d%d' % (name, zo, yo))
            n('\tVADDPS (R14), %s%d, %s%d' % (R, o0, R, o0))
            n('\tVADDPS (R14)(R9*1), %s%d, %s%d' % (R, b, R, b))
            n('%sset%d%d:' % (name, zo, yo))
            n('\tVMOVUPS %s%d, (R14)' % (R, o0))
            n('\tVMOVUPS %s%d, (R14)(R9*1)' % (R, b))
            release(a, b, c, d, o0)
    epilogue(name, vb, vb)


def gen_grad512(name, R):
    # The output-gradient transform, register-resident: the 8 inputs, then
    # along x (4 lines of 2 into 4, kept in 16 registers), then per x along
    # y and along z straight into dst. AG2's operations in the same order.
    vb = 64 if R == 'Z' else 32
    n('// func %s(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, sx, sy, sz uintptr, chunks int, tmp unsafe.Pointer)' % name)
    n('// %d channels per chunk; tmp is not used.' % (vb//4))
    n('TEXT ·%s(SB), NOSPLIT, $0-64' % name)
    prologue_in()
    n('\tVXORPS %s15, %s15, %s15' % (R, R, R))
    n('\tMOVQ R8, AX')
    n('\tSHLQ $4, AX')
    n('\tLEAQ (AX)(AX*1), BX')
    n('\tLEAQ (BX)(AX*1), DX')
    n('%sloop:' % name)
    free = list(range(0, 15)) + list(range(16, 32))
    def alloc(): return free.pop(0)
    def release(*rs):
        for r in rs: free.append(r)
    def ag2(a, b):
        # returns registers of (q0, q1, q2, q3) = (a, a+b, a-b, 0-b); b is consumed
        q1, q2 = alloc(), alloc()
        n('\tVADDPS %s%d, %s%d, %s%d' % (R, b, R, a, R, q1))
        n('\tVSUBPS %s%d, %s%d, %s%d' % (R, b, R, a, R, q2))
        n('\tVSUBPS %s%d, %s15, %s%d' % (R, b, R, R, b))
        return a, q1, q2, b
    n('\t// along x: 4 lines (z, y) of 2 into 4')
    X = {}
    for z in range(2):
        for y in range(2):
            a, b = alloc(), alloc()
            n('\tMOVQ SI, R14')
            if y: n('\tADDQ R10, R14')
            if z: n('\tADDQ R11, R14')
            n('\tVMOVUPS (R14), %s%d' % (R, a))
            n('\tVMOVUPS (R14)(R9*1), %s%d' % (R, b))
            for x, r in enumerate(ag2(a, b)):
                X[(z, y, x)] = r
    n('\t// per x: along y (2 into 4) for z = 0, 1, then along z into dst')
    for x in range(4):
        Y = {}
        for z in range(2):
            for y, r in enumerate(ag2(X[(z, 0, x)], X[(z, 1, x)])):
                Y[(z, y)] = r
        for y in range(4):
            q = ag2(Y[(0, y)], Y[(1, y)])
            n('\tMOVQ DI, R14')
            off = (4*y + x)
            if off:
                n('\tIMUL3Q $%d, R8, R13' % off)
                n('\tADDQ R13, R14')
            n('\tVMOVUPS %s%d, (R14)' % (R, q[0]))
            n('\tVMOVUPS %s%d, (R14)(AX*1)' % (R, q[1]))
            n('\tVMOVUPS %s%d, (R14)(BX*1)' % (R, q[2]))
            n('\tVMOVUPS %s%d, (R14)(DX*1)' % (R, q[3]))
            release(*q)
    epilogue(name, vb, vb)

gen_grad512('winoGradAVX512Z', 'Z')
gen_grad512('winoGradAVX512Y', 'Y')
gen_out512('winoOutAVX512Z', 'Z')
gen_out512('winoOutAVX512Y', 'Y')
gen_in512('winoInAVX512Z', 'Z', False)
gen_in512('winoInAVX512Y', 'Y', False)
gen_in512('winoInBF16AVX512Z', 'Z', True)
gen_in512('winoInBF16AVX512Y', 'Y', True)
open('../winograd_amd64.s','a').write('\n'.join(N)+'\n')

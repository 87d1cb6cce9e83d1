# Generates ../maxpool_amd64.s (run from internal/kernels/asmgen: python3 maxpool.py).
L=[]
def e(s): L.append(s)
e('//go:build amd64 && !purego')
e('')
e('#include "textflag.h"')
e('')
e('// AVX2 and AVX-512F 2x2x2 max pools over one output row; see maxpool.go.')
e('// Eight (AVX2) or sixteen (AVX-512F) channels per instruction. A window element replaces the running maximum where it is')
e('// greater, or NaN while the maximum is not; with arg, the index of the')
e('// element taken is kept alongside.')
e('')
e('DATA poolIota<>+0(SB)/4, $0')
for i in range(1,16): e('DATA poolIota<>+%d(SB)/4, $%d'%(4*i,i))
e('GLOBL poolIota<>(SB), RODATA|NOPTR, $64')
e('')
def gen(w):
    # w = 8: AVX2 on YMM, comparison masks in vector registers; w = 16:
    # AVX-512F on ZMM, masks in K registers (channels a multiple of 16).
    name = 'maxPool2AVX2' if w == 8 else 'maxPool2AVX512'
    V = 'Y' if w == 8 else 'Z'
    lab = '' if w == 8 else '512'
    e('// func %s(out, arg, x unsafe.Pointer, ow, chunks int, c4, sy4, sz4 uintptr, base int, didx unsafe.Pointer)' % name)
    e('// x points at the row\'s first window origin; base is its index; didx holds')
    e('// the 8 window elements\' index offsets (int32).%s' % ('' if w == 8 else ' Chunks of 16 channels.'))
    e('TEXT ·%s(SB), NOSPLIT, $8-80' % name)
    e('\tMOVQ out+0(FP), DI')
    e('\tMOVQ arg+8(FP), SI')
    e('\tMOVQ x+16(FP), DX')
    e('\tMOVQ ow+24(FP), CX')
    e('\tMOVQ c4+40(FP), R8')
    e('\tMOVQ sy4+48(FP), R9')
    e('\tMOVQ sz4+56(FP), R10')
    e('\tLEAQ (R9)(R8*1), R11')
    e('\tLEAQ (R10)(R8*1), R12')
    e('\tLEAQ (R10)(R9*1), R13')
    e('\tLEAQ (R13)(R8*1), R14')
    e('\tMOVQ base+64(FP), AX')
    e('\tMOVQ AX, vidx-8(SP)')
    e('\tMOVQ didx+72(FP), AX')
    for i in range(1,8): e('\tVPBROADCASTD %d(AX), %s%d'%(4*i,V,7+i))
    if w == 8:
        e('\tVMOVDQU poolIota<>(SB), Y15')
    else:
        e('\tVMOVDQU32 poolIota<>(SB), Z15')
    offs=['(AX)','(AX)(R8*1)','(AX)(R9*1)','(AX)(R11*1)','(AX)(R10*1)','(AX)(R12*1)','(AX)(R13*1)','(AX)(R14*1)']
    for mode in ['arg','noarg']:
        e('\tTESTQ SI, SI')
        if mode=='arg':
            e('\tJZ vox%snoarg' % lab)
        e('vox%s%s:'%(lab, mode))
        e('\tMOVQ DX, AX')
        e('\tMOVQ chunks+32(FP), BX')
        e('\tMOVQ vidx-8(SP), R15')
        e('chunk%s%s:'%(lab, mode))
        e('\tVMOVUPS (AX), %s0' % V)
        if mode=='arg':
            e('\tMOVQ R15, X5')
            e('\tVPBROADCASTD X5, %s5' % V)
            e('\tVPADDD %s15, %s5, %s5' % (V, V, V))
            if w == 8:
                e('\tVMOVDQA Y5, Y4')
            else:
                e('\tVMOVDQA32 Z5, Z4')
        for k in range(1,8):
            e('\tVMOVUPS %s, %s1'%(offs[k], V))
            if w == 8:
                e('\tVCMPPS $0x1E, Y0, Y1, Y2')
                e('\tVCMPPS $3, Y1, Y1, Y3')
                e('\tVCMPPS $7, Y0, Y0, Y6')
                e('\tVANDPS Y6, Y3, Y3')
                e('\tVORPS Y3, Y2, Y2')
                e('\tVBLENDVPS Y2, Y1, Y0, Y0')
                if mode=='arg':
                    e('\tVPADDD Y%d, Y5, Y3'%(7+k))
                    e('\tVBLENDVPS Y2, Y3, Y4, Y4')
            else:
                # K2 = (x > max) | (x is NaN & max is not) = max ordered
                # & !(x <= max) (NLE_UQ, under the write mask K4 = max
                # ordered); max = x where K2. A tie (+0 vs -0 included)
                # keeps max.
                e('\tVCMPPS $7, Z0, Z0, K4')
                e('\tVCMPPS $6, Z0, Z1, K4, K2')
                e('\tVMOVAPS Z1, K2, Z0')
                if mode=='arg':
                    e('\tVPADDD Z%d, Z5, Z3'%(7+k))
                    e('\tVMOVDQA32 Z3, K2, Z4')
        e('\tVMOVUPS %s0, (DI)' % V)
        e('\tADDQ $%d, DI' % (4*w))
        if mode=='arg':
            if w == 8:
                e('\tVMOVDQU Y4, (SI)')
            else:
                e('\tVMOVDQU32 Z4, (SI)')
            e('\tADDQ $%d, SI' % (4*w))
            e('\tADDQ $%d, R15' % w)
        e('\tADDQ $%d, AX' % (4*w))
        e('\tDECQ BX')
        e('\tJNZ chunk%s%s'%(lab, mode))
        e('\tLEAQ (DX)(R8*2), DX')
        e('\tMOVQ R8, R15')
        e('\tSHRQ $1, R15')
        e('\tADDQ R15, vidx-8(SP)')
        e('\tDECQ CX')
        e('\tJNZ vox%s%s'%(lab, mode))
        e('\tVZEROUPPER')
        e('\tRET')

gen(8)
e('')
gen(16)
open('../maxpool_amd64.s','w').write('\n'.join(L)+'\n')

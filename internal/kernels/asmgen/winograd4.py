# Generates ../winograd4_amd64.s and ../winograd4_lines.go (run from
# internal/kernels/asmgen: python3 winograd4.py): the tile transforms of the
# 3-D Winograd convolution F(4x4x4, 3x3x3).
#
# Each one-dimensional transform (one line of a tile) is written once below
# as a short program of additions, subtractions and multiplications by
# constants; the script checks every program against its matrix in exact
# rational arithmetic, then emits the same program as Go (the portable
# transforms) and as AVX2 / AVX-512 assembly, so that both do the same
# operations in the same order and agree bit for bit. No fused
# multiply-adds: the Go versions stay exact without FMA emulation.
#
# Interpolation points 0, 1, -1, 2, -1/2 and infinity. Against the usual
# 0, +-1, +-2 they keep the transforms' entries near 1 in size; in float32
# the 3-D transform's largest error relative to the output's largest value
# falls from about 1.6e-5 to 4e-6 (numpy model, 32 channels; the Go test
# TestWino4Accuracy measures the real one).
from fractions import Fraction as Fr
import struct

PTS = [Fr(0), Fr(1), Fr(-1), Fr(2), Fr(-1, 2)]  # and infinity
M, R = 4, 3
N = M + R - 1


def polycoef(roots):
    c = [Fr(1)]
    for q in roots:
        c = [Fr(0)] + c
        for t in range(len(c) - 1):
            c[t] -= q * c[t + 1]
    return c


def matrices():
    AT = [[Fr(0)] * N for _ in range(M)]
    for i in range(M):
        for j, p in enumerate(PTS):
            AT[i][j] = p ** i
        AT[i][N - 1] = Fr(1) if i == M - 1 else Fr(0)
    G = [[Fr(0)] * R for _ in range(N)]
    for j, p in enumerate(PTS):
        den = Fr(1)
        for k, q in enumerate(PTS):
            if k != j:
                den *= p - q
        for i in range(R):
            G[j][i] = p ** i / den
    G[N - 1][R - 1] = Fr(1)
    BT = [[Fr(0)] * N for _ in range(N)]
    for j in range(N - 1):
        c = polycoef([q for k, q in enumerate(PTS) if k != j])
        for i, v in enumerate(c):
            BT[j][i] = v
    for i, v in enumerate(polycoef(PTS)):
        BT[N - 1][i] = v
    return AT, G, BT


AT, G, BT = matrices()
A = [[AT[i][j] for i in range(M)] for j in range(N)]   # N x M
GT = [[G[j][i] for j in range(N)] for i in range(R)]   # R x N

CONST = {
    'Half': Fr(1, 2), 'ThreeHalves': Fr(3, 2), 'Four': Fr(4), 'Quarter': Fr(1, 4),
    'Eight': Fr(8), 'Eighth': Fr(1, 8), 'Third': Fr(1, 3), 'MinusThird': Fr(-1, 3),
    'Fifteenth': Fr(1, 15), 'MinusFourFifteenths': Fr(-4, 15),
}

# Programs: (dst, op, a, b); op is '+', '-' or '*' (b a constant name);
# ('oK', '=', 'iJ') outputs an input unchanged.
PROGS = {
    # B^T d: the input transform
    'BT': (6, 6, '''
        u = i1 - i3
        v = i4 - i2
        t = u + u
        o4 = v + t
        h = u * Half
        o3 = v - h
        a = i0 - i2
        b = a + v
        k = u + h
        o0 = b + k
        e = i5 - i3
        f = e + u
        g = v * ThreeHalves
        o5 = f - g
        p = u + v
        q = i2 - i3
        r = q * ThreeHalves
        o2 = p + r
        w = v - u
        s = i2 + i3
        x = s * ThreeHalves
        o1 = w - x'''),
    # A^T m: the output transform
    'AT': (6, 4, '''
        p = i1 + i2
        q = i1 - i2
        s = i3 + i4
        a = i0 + p
        o0 = a + s
        t = i3 + i3
        h = i4 * Half
        d = t - h
        o1 = q + d
        f = i3 * Four
        g = i4 * Quarter
        e = f + g
        o2 = p + e
        j = i3 * Eight
        k = i4 * Eighth
        l = j - k
        m = q + l
        o3 = m + i5'''),
    # A g: the output-gradient transform (A^T's transpose)
    'A': (4, 6, '''
        o0 = i0
        e = i0 + i2
        d = i1 + i3
        o1 = e + d
        o2 = e - d
        t = i1 + i1
        f = i2 * Four
        g = i3 * Eight
        x = i0 + f
        y = t + g
        o3 = x + y
        h = i1 * Half
        q = i2 * Quarter
        r = i3 * Eighth
        a = i0 + q
        b = h + r
        o4 = a - b
        o5 = i3'''),
    # G w: the kernel transform
    'G': (3, 6, '''
        o0 = i0
        a = i0 + i2
        b = a + i1
        o1 = b * MinusThird
        c = a - i1
        o2 = c * Third
        e = i1 + i1
        f = i0 + e
        h = i2 * Four
        k = f + h
        o3 = k * Fifteenth
        m = i0 * Four
        n = m - e
        p = n + i2
        o4 = p * MinusFourFifteenths
        o5 = i2'''),
    # G^T u: the kernel transform's adjoint (the weight gradient)
    'GT': (6, 3, '''
        b = i1 * MinusThird
        c = i2 * Third
        f = i3 * Fifteenth
        g = i4 * MinusFourFifteenths
        s = b + c
        x = i0 + s
        y = x + f
        h = g * Four
        o0 = y + h
        d = b - c
        e = f + f
        k = d + e
        l = g + g
        o1 = k - l
        z = i5 + s
        m = f * Four
        n = z + m
        o2 = n + g'''),
}
MATS = {'BT': BT, 'AT': AT, 'A': A, 'G': G, 'GT': GT}


def parse(src):
    ops = []
    for line in src.strip().splitlines():
        d, rhs = [s.strip() for s in line.split('=')]
        t = rhs.split()
        if len(t) == 1:
            ops.append((d, '=', t[0], None))
        else:
            ops.append((d, t[1], t[0], t[2]))
    return ops


def check(name):
    nin, nout, src = PROGS[name]
    ops = parse(src)
    env = {}
    for j in range(nin):
        env['i%d' % j] = [Fr(int(k == j)) for k in range(nin)]
    for d, op, a, b in ops:
        assert d not in env, (name, d)
        if op == '=':
            env[d] = env[a]
        elif op == '*':
            env[d] = [x * CONST[b] for x in env[a]]
        else:
            s = 1 if op == '+' else -1
            env[d] = [x + s * y for x, y in zip(env[a], env[b])]
    mat = MATS[name]
    for i in range(nout):
        assert env['o%d' % i] == mat[i], (name, i, env['o%d' % i], mat[i])
    return ops


for k in PROGS:
    check(k)


def f32bits(fr):
    # float32 nearest to the constant (through the double, which for these
    # constants is never a float32 midpoint); Go and the assembly use these
    # same bits, so they agree whatever the rounding
    return struct.unpack('<I', struct.pack('<f', float(fr)))[0]


# ---------------------------------------------------------------- Go lines
g = []
g.append('// Code generated by asmgen/winograd4.py; DO NOT EDIT.')
g.append('')
g.append('package kernels')
g.append('')
g.append('import "math"')
g.append('')
g.append('// The constants of the F(4x4x4, 3x3x3) line transforms, as float32 bits')
g.append('// (the assembly\'s DATA holds the same).')
g.append('var (')
for k, v in CONST.items():
    g.append('\tw4%s = math.Float32frombits(0x%08x) // %s' % (k, f32bits(v), v))
g.append(')')
for name, (nin, nout, src) in PROGS.items():
    ops = parse(src)
    g.append('')
    g.append('// w4Line%s applies %s to one line: out = %s in (%d to %d values). Products' % (name, name, name, nin, nout))
    g.append('// are rounded before they are added (no fused multiply-add).')
    g.append('func w4Line%s(in, out []float32) {' % name)
    g.append('\t_, _ = in[%d], out[%d]' % (nin - 1, nout - 1))
    used = set()
    for d, op, a, b in ops:
        for s in (a, b):
            if s and s.startswith('i'):
                used.add(s)
    for j in range(nin):
        if 'i%d' % j in used:
            g.append('\ti%d := in[%d]' % (j, j))
    for d, op, a, b in ops:
        if d.startswith('o'):
            lhs = 'out[%s] =' % d[1:]
        else:
            lhs = '%s :=' % d
        if op == '=':
            g.append('\t%s %s' % (lhs, a))
        elif op == '*':
            g.append('\t%s float32(%s * w4%s)' % (lhs, a, b))
        else:
            g.append('\t%s %s %s %s' % (lhs, a, op, b))
    g.append('}')
open('../winograd4_lines.go', 'w').write('\n'.join(g) + '\n')
import subprocess
subprocess.run(['gofmt', '-w', '../winograd4_lines.go'], check=True)

# ---------------------------------------------------------------- assembly
L = []


def e(s):
    L.append(s)


e('//go:build amd64 && !purego')
e('')
e('// Code generated by asmgen/winograd4.py; DO NOT EDIT.')
e('')
e('#include "textflag.h"')
e('')
e('// Tile transforms of the 3-D Winograd convolution F(4x4x4, 3x3x3); see')
e('// winograd4.go for the layouts. Each call transforms one tile for')
e('// lanes*chunks channels (8 lanes on Y registers, 16 on Z), in three passes')
e('// (along x, y, z) through tmp (216 vectors), with the operations of the Go')
e('// line transforms (winograd4_lines.go) in the same order.')
e('')
for k, v in CONST.items():
    bits = f32bits(v)
    for q in range(16):
        e('DATA w4c%s<>+%d(SB)/4, $0x%08x' % (k, 4 * q, bits))
    e('GLOBL w4c%s<>(SB), RODATA|NOPTR, $64' % k)
e('')


class Line:
    """Emits one line program on vector registers: every input the program
    reads is loaded first by load(j, reg); each output goes to store(i, reg)
    as soon as it is computed.

    With ones (the number of a register holding 1.0 in every lane), some
    additions and subtractions run as fused multiply-adds by that 1.0:
    x*1 + y is exact before its one rounding, so VFMADD231PS 1, x, y gives
    the bits of VADDPS x, y (and VFMSUB / VFNMADD those of a subtraction,
    signed zeros included). The transforms are almost all additions; on
    AMD Zen 4 and 5 additions issue on two pipes and multiplies and FMAs on
    two others, so routing additions to the idle pair whenever it has
    fewer operations in flight (a running count over the whole kernel)
    balances the four. Only an addition with an operand that dies there
    can become an FMA (the FMA overwrites its addend)."""

    def __init__(self, name, rn, nregs, reserved=(), ones=None):
        self.nin, self.nout, src = PROGS[name]
        self.ops = parse(src)
        self.rn = rn
        self.ones = ones
        self.regs = [r for r in range(nregs) if r not in reserved and r != ones]
        self.nadd = 0  # VADDPS / VSUBPS emitted
        self.nmul = 0  # VMULPS and FMAs emitted

    def emit(self, load, store):
        ops = self.ops
        last = {}
        for idx, (d, op, a, b) in enumerate(ops):
            last[a] = idx
            if op in '+-':
                last[b] = idx
        free = list(self.regs)
        reg = {}
        for j in range(self.nin):
            s = 'i%d' % j
            if s in last:
                reg[s] = free.pop(0)
                load(j, self.rn % reg[s])
        for idx, (d, op, a, b) in enumerate(ops):
            if op == '=':
                store(int(d[1:]), self.rn % reg[a])
            ra = self.rn % reg[a]
            rb = self.rn % reg[b] if op in '+-' else None
            reg_of = {a: reg[a]}
            if op in '+-':
                reg_of[b] = reg[b]
            dying = set()
            for s in {a, b}:
                if s in reg and last[s] == idx:
                    free.append(reg.pop(s))
                    dying.add(s)
            free.sort()
            if op == '=':
                continue
            fused = None
            if op in '+-' and self.ones is not None and self.nmul < self.nadd:
                # the addend register: b's if it dies here, else a's
                for s in (b, a):
                    if s in dying:
                        fused = s
                        break
            if fused is not None:
                one = self.rn % self.ones
                rr = reg_of[fused]
                free.remove(rr)
                r = self.rn % rr
                other = ra if fused == b else rb
                if op == '+':
                    e('\tVFMADD231PS %s, %s, %s' % (one, other, r))
                elif fused == b:
                    e('\tVFMSUB231PS %s, %s, %s' % (one, ra, r))
                else:
                    e('\tVFNMADD231PS %s, %s, %s' % (one, rb, r))
                self.nmul += 1
                if d.startswith('o'):
                    store(int(d[1:]), r)
                if d in last:
                    reg[d] = rr
                else:
                    free.append(rr)
                    free.sort()
                continue
            r = self.rn % free[0]
            if op == '*':
                e('\tVMULPS w4c%s<>(SB), %s, %s' % (b, ra, r))
                self.nmul += 1
            elif op == '+':
                e('\tVADDPS %s, %s, %s' % (rb, ra, r))
                self.nadd += 1
            else:
                e('\tVSUBPS %s, %s, %s' % (rb, ra, r))
                self.nadd += 1
            if d.startswith('o'):
                store(int(d[1:]), r)
            if d in last:
                reg[d] = free.pop(0)
        assert not reg, reg


def expand(fname, prog, nin, zmm, bf16=False, rows=False, window=False):
    """dst[xi*ds + c] = (P (x) P (x) P src)[xi] for an nin^3 source tile at
    strides sx, sy, sz (bytes): the input (BT, nin 6), output-gradient (A,
    nin 4) and kernel (G, nin 3) transforms. With bf16, each point is
    rounded to bfloat16 as bf16FromF32 rounds (bits + 0x7FFF + (bits>>16 &
    1), high half kept, NaN -> 0x7FC0) and stored as channel pairs, 2 bytes
    per channel (EVEX forms: AVX-512F and VL, also on Y registers). With
    rows (nin 6 only), the source is given line by line: rows points to 36
    line bases (z*6 + y; a line's voxels sx bytes apart), sy and sz are
    unused; the tile's lines may come from anywhere (a zero line for the
    padding). With window (rows only), sy and sz carry lo and hi: only the
    voxels x in [lo, hi) of each line are loaded, through the masks K2..K7
    (zeroing, so the others read as 0 and are never touched); the line
    pointers point at voxel lo, the kernel steps back lo*sx bytes. EVEX
    forms, AVX-512F and VL also on Y registers."""
    rn, vb = ('Z%d', 64) if zmm else ('Y%d', 32)
    lbl = fname
    e('// func %s(dst unsafe.Pointer, ds uintptr, src unsafe.Pointer, sx, sy, sz uintptr, chunks int, tmp unsafe.Pointer)' % fname)
    e('TEXT ·%s(SB), NOSPLIT, $0-64' % fname)
    e('\tMOVQ dst+0(FP), DI')
    e('\tMOVQ ds+8(FP), R8')
    e('\tMOVQ src+16(FP), SI')
    e('\tMOVQ sx+24(FP), R9')
    e('\tMOVQ sy+32(FP), R10')
    e('\tMOVQ sz+40(FP), R11')
    e('\tMOVQ chunks+48(FP), CX')
    e('\tMOVQ tmp+56(FP), R12')
    if window:
        for j in range(6):
            e('\tXORL AX, AX')
            e('\tCMPQ R10, $%d' % j)
            e('\tJGT %s_m%d' % (fname, j))
            e('\tCMPQ R11, $%d' % j)
            e('\tJLE %s_m%d' % (fname, j))
            e('\tMOVL $0xffff, AX')
            e('%s_m%d:' % (fname, j))
            e('\tKMOVW AX, K%d' % (j + 2))
        e('\tIMULQ R9, R10')  # lo*sx: from voxel lo back to voxel 0
    if rows:
        e('\tXORQ R11, R11')  # the chunk's byte offset into every line
    if bf16:
        e('\tVPBROADCASTD w4BF16One<>(SB), %s' % (rn % 8))
        e('\tVPBROADCASTD w4BF16Bias<>(SB), %s' % (rn % 9))
        e('\tVPBROADCASTD w4BF16NaN<>(SB), %s' % (rn % 10))
        line = Line(prog, rn, 16, reserved=(8, 9, 10, 11), ones=7)
    else:
        line = Line(prog, rn, 16, ones=15)
    e('\tVBROADCASTSS w4cOne<>(SB), %s' % (rn % line.ones))
    e('%s_chunk:' % lbl)

    def ld_x(j, r):
        if window:
            e('\tVMOVUPS.Z (R13), K%d, %s' % (j + 2, r))
        else:
            e('\tVMOVUPS (R13), %s' % r)
        if j < nin - 1:
            e('\tADDQ R9, R13')
    if rows:
        # pass x: the 36 lines from their table, into tmp[l*6 + x]
        assert nin == 6
        e('\tMOVQ SI, R15')
        e('\tMOVQ R12, BX')
        e('\tMOVQ $36, AX')
        e('%s_xl:' % lbl)
        e('\tMOVQ (R15), R13')
        e('\tADDQ R11, R13')
        if window:
            e('\tSUBQ R10, R13')
        line.emit(ld_x, lambda i, r: e('\tVMOVUPS %s, %d(BX)' % (r, i * vb)))
        e('\tADDQ $8, R15')
        e('\tADDQ $%d, BX' % (6 * vb))
        e('\tDECQ AX')
        e('\tJNZ %s_xl' % lbl)
    else:
        # pass x: lines (z, y) < nin from src (elements sx apart), into
        # tmp[z*36 + y*6 + x]
        e('\tMOVQ SI, R14')
        e('\tMOVQ R12, BX')
        e('\tMOVQ $%d, DX' % nin)
        e('%s_xz:' % lbl)
        e('\tMOVQ R14, R15')
        e('\tMOVQ $%d, AX' % nin)
        e('%s_xy:' % lbl)
        e('\tMOVQ R15, R13')
        line.emit(ld_x, lambda i, r: e('\tVMOVUPS %s, %d(BX)' % (r, i * vb)))
        e('\tADDQ R10, R15')
        e('\tADDQ $%d, BX' % (6 * vb))
        e('\tDECQ AX')
        e('\tJNZ %s_xy' % lbl)
        e('\tADDQ R11, R14')
        if nin < 6:
            e('\tADDQ $%d, BX' % ((36 - 6 * nin) * vb))
        e('\tDECQ DX')
        e('\tJNZ %s_xz' % lbl)
    # pass y: lines (z < nin, x < 6) in place, elements 6 vectors apart
    e('\tMOVQ R12, BX')
    e('\tMOVQ $%d, DX' % nin)
    e('%s_yz:' % lbl)
    e('\tMOVQ $6, AX')
    e('%s_yx:' % lbl)
    line.emit(lambda j, r: e('\tVMOVUPS %d(BX), %s' % (j * 6 * vb, r)),
              lambda i, r: e('\tVMOVUPS %s, %d(BX)' % (r, i * 6 * vb)))
    e('\tADDQ $%d, BX' % vb)
    e('\tDECQ AX')
    e('\tJNZ %s_yx' % lbl)
    e('\tADDQ $%d, BX' % (30 * vb))
    e('\tDECQ DX')
    e('\tJNZ %s_yz' % lbl)
    # pass z: lines l = y*6 + x < 36 (elements 36 vectors apart), into
    # dst[(z*36 + l)*ds]
    e('\tIMUL3Q $36, R8, R13')
    e('\tMOVQ R12, BX')
    e('\tMOVQ DI, R15')
    e('\tMOVQ $36, AX')
    e('%s_z:' % lbl)

    def st_z(i, r):
        if i == 0:
            addr = '(R15)'
        elif i in (1, 2, 4):
            addr = '(R15)(R13*%d)' % i
        else:
            e('\tIMUL3Q $%d, R13, DX' % i)
            addr = '(R15)(DX*1)'
        if not bf16:
            e('\tVMOVUPS %s, %s' % (r, addr))
            return
        t = rn % 11
        e('\tVPSRLD $16, %s, %s' % (r, t))
        e('\tVPANDD %s, %s, %s' % (rn % 8, t, t))
        e('\tVPADDD %s, %s, %s' % (rn % 9, t, t))
        e('\tVPADDD %s, %s, %s' % (r, t, t))
        e('\tVCMPPS $3, %s, %s, K1' % (r, r))
        e('\tVMOVDQA32 %s, K1, %s' % (rn % 10, t))
        e('\tVPSRLD $16, %s, %s' % (t, t))
        e('\tVPMOVDW %s, %s' % (t, addr))
    line.emit(lambda j, r: e('\tVMOVUPS %d(BX), %s' % (j * 36 * vb, r)), st_z)
    e('\tADDQ $%d, BX' % vb)
    e('\tADDQ R8, R15')
    e('\tDECQ AX')
    e('\tJNZ %s_z' % lbl)
    if rows:
        e('\tADDQ $%d, R11' % vb)
    else:
        e('\tADDQ $%d, SI' % vb)
    e('\tADDQ $%d, DI' % (vb // 2 if bf16 else vb))
    e('\tDECQ CX')
    e('\tJNZ %s_chunk' % lbl)
    e('\tVZEROUPPER')
    e('\tRET')
    e('')


def reduce(fname, prog, nout, zmm):
    """dst[z*sz + y*sy + x*sx + c] (+)= (P (x) P (x) P src)[z,y,x] + bias[c]
    for 216 points src[xi*ss + c]: the output transform (AT, nout 4) and the
    kernel transform's adjoint (GT, nout 3). bias is never nil (the Go side
    passes zeros), acc != 0 adds to dst."""
    rn, vb = ('Z%d', 64) if zmm else ('Y%d', 32)
    lbl = fname
    e('// func %s(dst unsafe.Pointer, sx, sy, sz uintptr, src unsafe.Pointer, ss uintptr, chunks int, tmp, bias unsafe.Pointer, acc int)' % fname)
    e('TEXT ·%s(SB), NOSPLIT, $0-80' % fname)
    e('\tMOVQ dst+0(FP), DI')
    e('\tMOVQ sx+8(FP), R9')
    e('\tMOVQ sy+16(FP), R10')
    e('\tMOVQ sz+24(FP), R11')
    e('\tMOVQ src+32(FP), SI')
    e('\tMOVQ chunks+48(FP), CX')
    e('\tMOVQ tmp+56(FP), R12')
    e('\tMOVQ bias+64(FP), R13')
    line = Line(prog, rn, 16, reserved=(15,), ones=14)
    e('\tVBROADCASTSS w4cOne<>(SB), %s' % (rn % line.ones))
    bias = rn % 15
    e('%s_chunk:' % lbl)
    # pass x: 36 lines l = z*6 + y from src (elements ss apart), into
    # tmp[l*6 + x], x < nout
    e('\tMOVQ ss+40(FP), R8')
    e('\tIMUL3Q $6, R8, R14')
    e('\tMOVQ SI, R15')
    e('\tMOVQ R12, BX')
    e('\tMOVQ $36, AX')
    e('%s_x:' % lbl)
    e('\tMOVQ R15, DX')

    def ld_x(j, r):
        e('\tVMOVUPS (DX), %s' % r)
        if j < 5:
            e('\tADDQ R8, DX')
    line.emit(ld_x, lambda i, r: e('\tVMOVUPS %s, %d(BX)' % (r, i * vb)))
    e('\tADDQ R14, R15')
    e('\tADDQ $%d, BX' % (6 * vb))
    e('\tDECQ AX')
    e('\tJNZ %s_x' % lbl)
    # pass y: lines (z < 6, x < nout) in place, elements 6 vectors apart
    e('\tMOVQ R12, BX')
    e('\tMOVQ $6, R15')
    e('%s_yz:' % lbl)
    e('\tMOVQ $%d, AX' % nout)
    e('%s_yx:' % lbl)
    line.emit(lambda j, r: e('\tVMOVUPS %d(BX), %s' % (j * 6 * vb, r)),
              lambda i, r: e('\tVMOVUPS %s, %d(BX)' % (r, i * 6 * vb)))
    e('\tADDQ $%d, BX' % vb)
    e('\tDECQ AX')
    e('\tJNZ %s_yx' % lbl)
    e('\tADDQ $%d, BX' % ((36 - nout) * vb))
    e('\tDECQ R15')
    e('\tJNZ %s_yz' % lbl)
    # pass z: lines (y, x) < nout (elements 36 vectors apart), into dst
    e('\tVMOVUPS (R13), %s' % bias)
    e('\tLEAQ (R11)(R11*2), R8')
    for acc in (False, True):
        tag = '%s_z%s' % (lbl, 'a' if acc else 'n')
        if not acc:
            e('\tMOVQ acc+72(FP), AX')
            e('\tTESTQ AX, AX')
            e('\tJNZ %s_za' % lbl)
        e('%s:' % tag)
        e('\tMOVQ R12, BX')
        e('\tMOVQ DI, R15')
        e('\tMOVQ $%d, DX' % nout)
        e('%sy:' % tag)
        e('\tMOVQ R15, R14')
        e('\tMOVQ $%d, AX' % nout)
        e('%sx:' % tag)

        def st_z(i, r, acc=acc):
            addr = ['(R14)', '(R14)(R11*1)', '(R14)(R11*2)', '(R14)(R8*1)'][i]
            e('\tVADDPS %s, %s, %s' % (bias, r, r))
            if acc:
                e('\tVADDPS %s, %s, %s' % (addr, r, r))
            e('\tVMOVUPS %s, %s' % (r, addr))
        line.emit(lambda j, r: e('\tVMOVUPS %d(BX), %s' % (j * 36 * vb, r)), st_z)
        e('\tADDQ $%d, BX' % vb)
        e('\tADDQ R9, R14')
        e('\tDECQ AX')
        e('\tJNZ %sx' % tag)
        e('\tADDQ $%d, BX' % ((6 - nout) * vb))
        e('\tADDQ R10, R15')
        e('\tDECQ DX')
        e('\tJNZ %sy' % tag)
        if not acc:
            e('\tJMP %s_next' % lbl)
    e('%s_next:' % lbl)
    e('\tADDQ $%d, SI' % vb)
    e('\tADDQ $%d, DI' % vb)
    e('\tADDQ $%d, R13' % vb)
    e('\tDECQ CX')
    e('\tJNZ %s_chunk' % lbl)
    e('\tVZEROUPPER')
    e('\tRET')
    e('')


e('DATA w4cOne<>+0(SB)/4, $0x3f800000')
e('GLOBL w4cOne<>(SB), RODATA|NOPTR, $4')
e('DATA w4BF16One<>+0(SB)/4, $1')
e('GLOBL w4BF16One<>(SB), RODATA|NOPTR, $4')
e('DATA w4BF16Bias<>+0(SB)/4, $0x7fff')
e('GLOBL w4BF16Bias<>(SB), RODATA|NOPTR, $4')
e('DATA w4BF16NaN<>+0(SB)/4, $0x7fc00000')
e('GLOBL w4BF16NaN<>(SB), RODATA|NOPTR, $4')
e('')
for zmm, suf in ((False, 'AVX2'), (True, 'AVX512')):
    expand('wino4In' + suf, 'BT', 6, zmm)
    expand('wino4InBF16' + ('VL' if not zmm else 'AVX512'), 'BT', 6, zmm, bf16=True)
    expand('wino4InRows' + suf, 'BT', 6, zmm, rows=True)
    expand('wino4InRowsBF16' + ('VL' if not zmm else 'AVX512'), 'BT', 6, zmm, bf16=True, rows=True)
    expand('wino4InRowsX' + ('VL' if not zmm else 'AVX512'), 'BT', 6, zmm, rows=True, window=True)
    expand('wino4InRowsXBF16' + ('VL' if not zmm else 'AVX512'), 'BT', 6, zmm, bf16=True, rows=True, window=True)
    expand('wino4Grad' + suf, 'A', 4, zmm)
    expand('wino4Kern' + suf, 'G', 3, zmm)
    reduce('wino4Out' + suf, 'AT', 4, zmm)
    reduce('wino4KernAdj' + suf, 'GT', 3, zmm)
open('../winograd4_amd64.s', 'w').write('\n'.join(L) + '\n')

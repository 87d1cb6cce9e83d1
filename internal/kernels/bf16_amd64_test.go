//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func skipNoBF16(t *testing.T) {
	t.Helper()
	if !hasBF16CPU {
		t.Skip("this CPU has no AVX-512-BF16: the VDPBF16PS kernel cannot run here (the Go emulation is tested elsewhere)")
	}
}

// TestDPBF16Encoding checks the hand encoder's bytes, as the generated
// assembly holds them, against the GNU assembler's (binutils 2.40,
// `vdpbf16ps %zmm<src2>, %zmm<src1>, %zmm<dst>`), and that every
// hand-encoded instruction in kernel_bf16_amd64.s decodes to the registers
// its comment names.
func TestDPBF16Encoding(t *testing.T) {
	gnu := map[[3]int]string{ // {dst, src1, src2} (Intel order) → bytes
		{0, 1, 2}:    "62 f2 76 48 52 c2",
		{24, 17, 31}: "62 02 76 40 52 c7",
		{16, 0, 1}:   "62 e2 7e 48 52 c1",
		{31, 0, 4}:   "62 62 7e 48 52 fc",
		{26, 0, 3}:   "62 62 7e 48 52 d3",
	}
	gnuY := map[[3]int]string{ // the 256-bit form (vdpbf16ps %ymm...)
		{16, 0, 1}: "62 e2 7e 28 52 c1",
		{31, 0, 4}: "62 62 7e 28 52 fc",
		{26, 0, 3}: "62 62 7e 28 52 d3",
	}
	src, err := os.ReadFile("kernel_bf16_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`((?:BYTE \$0x[0-9A-F]{2}; ){5}BYTE \$0x[0-9A-F]{2}) // VDPBF16PS ([YZ])(\d+), [YZ](\d+), [YZ](\d+)`)
	seen := 0
	for _, m := range line.FindAllStringSubmatch(string(src), -1) {
		var bs []byte
		for _, f := range strings.Split(m[1], "; ") {
			v, _ := strconv.ParseUint(strings.TrimPrefix(f, "BYTE $0x"), 16, 8)
			bs = append(bs, byte(v))
		}
		var regs [3]int
		for i := range regs {
			regs[i], _ = strconv.Atoi(m[3+i])
		}
		// Decode the EVEX fields back into registers.
		p0, p1, p2, modrm := bs[1], bs[2], bs[3], bs[5]
		ll := byte(0x40) // L'L = 10: ZMM
		known := gnu
		if m[2] == "Y" {
			ll, known = 0x20, gnuY // L'L = 01: YMM
		}
		if bs[0] != 0x62 || bs[4] != 0x52 || p0&0x0F != 0x02 || p1&0x87 != 0x06 || p2&0xF7 != ll || modrm>>6 != 3 {
			t.Fatalf("%x: not VDPBF16PS %smm, %smm, %smm", bs, m[2], m[2], m[2])
		}
		dst := int(modrm>>3&7) | int(^p0>>7&1)<<3 | int(^p0>>4&1)<<4
		src1 := int(^p1>>3&15) | int(^p2>>3&1)<<4
		src2 := int(modrm&7) | int(^p0>>5&1)<<3 | int(^p0>>6&1)<<4
		if [3]int{dst, src1, src2} != regs {
			t.Fatalf("%x decodes to Z%d, Z%d, Z%d; the comment says %v", bs, dst, src1, src2, regs)
		}
		if want, ok := known[regs]; ok {
			seen++
			if got := fmt.Sprintf("% x", bs); got != want {
				t.Fatalf("VDPBF16PS %v: bytes %s, GNU as %s", regs, got, want)
			}
		}
	}
	if seen != len(gnu)+len(gnuY) {
		t.Fatalf("found %d of the %d instructions with known GNU encodings", seen, len(gnu)+len(gnuY))
	}
}

// TestDPBF16Instruction runs the hand-encoded VDPBF16PS (low and high
// registers) on tables of crafted lanes and on random ones, and holds it
// bit for bit to dpbf16, the Go emulation (NaNs need only both be NaN).
func TestDPBF16Instruction(t *testing.T) {
	skipNoBF16(t)
	h := func(v float32) uint16 { return uint16(math.Float32bits(v) >> 16) }
	pr := func(even, odd float32) uint32 { return uint32(h(even)) | uint32(h(odd))<<16 }
	type lane struct {
		acc  float32
		x, y uint32
	}
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	lanes := []lane{
		{1, pr(2, 3), pr(5, 7)},                         // 1 + 21 + 10
		{0x1p-24, pr(1, -1), pr(1, 1)},                  // odd first: 2^-24 − 1 + 1 = 2^-24 (even first gives 0)
		{1, pr(0x1p-24, 0x1p-24), pr(1, 1)},             // each fma rounds: the ties stay at 1
		{1, pr(1, 0x1p-24+0x1p-31), pr(0x1p-24, 1)},     // the odd product breaks the tie upwards
		{0x1p-130, pr(0, 0), pr(0, 0)},                  // subnormal accumulator: read as zero
		{-0x1p-130, pr(0, 0), pr(0, 0)},                 // ... keeping its sign
		{1, 0x0001, pr(1e30, 0)},                        // subnormal bf16 operand: zero
		{0, pr(0x1p-70, 0), pr(0x1p-60, 0)},             // subnormal product: flushed
		{0x1p-126, pr(0, -0x1p-126), pr(0, 0.5)},        // subnormal intermediate: flushed
		{0x1p-126, pr(1, -0x1p-126), pr(0x1p-126, 0.5)}, // ... before the even product is added
		{0x1p-126, pr(-0x1p-126, 0), pr(0.5, 0)},        // subnormal result: flushed
		{-0x1p-126, pr(0x1p-126, 0), pr(0.5, 0)},        // ... to −0?
		{3e38, pr(3e38, 0), pr(2, 0)},                   // overflow to Inf
		{0, pr(inf, 1), pr(0, 1)},                       // Inf·0: NaN
		{inf, pr(1, 1), pr(-inf, 1)},                    // Inf − Inf: NaN
		{nan, pr(1, 1), pr(1, 1)},                       // NaN in
		{0, pr(-1, 1), pr(1, 1)},                        // exact cancellation: +0
		{negZero, pr(0, negZero), pr(0, 1)},             // −0 + −0 + 0
		{1.5, pr(1.0078125, 1.0078125), pr(1.0078125, -1.0078125)},
	}
	r := rand.New(rand.NewPCG(41, 42))
	rbf := func() uint16 {
		// random exponent over a range wide enough to overflow and underflow
		v := float32(math.Ldexp(r.Float64()*2-1, r.IntN(140)-70))
		return bf16FromF32(v)
	}
	for i := 0; i < 4096; i++ {
		acc := float32(math.Ldexp(r.Float64()*2-1, r.IntN(150)-75))
		x := uint32(rbf()) | uint32(rbf())<<16
		y := uint32(rbf()) | uint32(rbf())<<16
		if i%4 == 0 { // cancellation: acc ≈ −(product of the odd pair)
			acc = -f32FromBF16(uint16(x>>16)) * f32FromBF16(uint16(y>>16))
		}
		lanes = append(lanes, lane{acc, x, y})
	}
	for len(lanes)%16 != 0 {
		lanes = append(lanes, lane{})
	}
	for _, f := range []struct {
		name string
		fn   func(acc, x, y unsafe.Pointer)
	}{{"Z0+=Z1·Z2", dpbf16Low}, {"Z24+=Z17·Z31", dpbf16High}} {
		for base := 0; base < len(lanes); base += 16 {
			var acc [16]float32
			var x, y [16]uint32
			for l := range acc {
				acc[l], x[l], y[l] = lanes[base+l].acc, lanes[base+l].x, lanes[base+l].y
			}
			f.fn(unsafe.Pointer(&acc), unsafe.Pointer(&x), unsafe.Pointer(&y))
			for l, got := range acc {
				in := lanes[base+l]
				want := dpbf16(in.acc, in.x, in.y)
				if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
					t.Fatalf("%s lane %d: acc %g (%#x) x %#08x y %#08x: VDPBF16PS gives %g (%#x), the emulation %g (%#x)",
						f.name, base+l, in.acc, math.Float32bits(in.acc), in.x, in.y, got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
		}
	}
}

// TestBF16ConvertAsm: the AVX-512F packing conversions round exactly as
// bf16FromF32 (PyTorch's method) on random bit patterns, which include NaNs
// of both signs and payloads, ±Inf, subnormals and exact ties.
func TestBF16ConvertAsm(t *testing.T) {
	if !bf16CvtAsm {
		t.Skip("this CPU has no AVX-512F: the assembly conversions cannot run here")
	}
	r := rand.New(rand.NewPCG(43, 44))
	special := []uint32{0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0xFF800001, 0x7F7FFFFF, 0x7F7F8000,
		0x3F808000, 0x3F818000, 0x00018000, 0x80008000, 0x80000000, 0, 0x00000001, 0x807FFFFF}
	const n = 16 * 40
	x := make([]float32, 2*n)
	for i := range x {
		u := r.Uint32()
		switch i % 4 {
		case 0:
			u = special[r.IntN(len(special))]
		case 1:
			u = u&^0xFFFF | 0x8000 // a tie
		}
		x[i] = math.Float32frombits(u)
	}
	r0, r1 := x[:n], x[n:]
	const stride = 48 // uint32s between runs of 16
	got := make([]uint32, n/16*stride)
	// one pair of rows (r1 follows r0 in x)
	bf16PairRowsK(unsafe.Pointer(&got[0]), unsafe.Pointer(&x[0]), n*4, 1, n, stride*4, 64)
	for i := 0; i < n; i++ {
		if g, w := got[(i/16)*stride+i%16], bf16Pair(r0[i], r1[i]); g != w {
			t.Fatalf("bf16PairRowsK: pair %d of (%#08x, %#08x) = %#08x, want %#08x", i, math.Float32bits(r0[i]), math.Float32bits(r1[i]), g, w)
		}
	}
	for i := 0; i < n; i++ {
		if i%16 == 0 && i/16*stride+16 < len(got) && got[i/16*stride+16] != 0 {
			t.Fatalf("bf16PairRowsK wrote between the runs")
		}
	}
	seq := make([]uint32, n+1)
	bf16PairSeq(unsafe.Pointer(&seq[0]), unsafe.Pointer(&x[0]), n, 256)
	for p := 0; p < n; p++ {
		if w := bf16Pair(x[2*p], x[2*p+1]); seq[p] != w {
			t.Fatalf("bf16PairSeq: pair %d of (%#08x, %#08x) = %#08x, want %#08x", p, math.Float32bits(x[2*p]), math.Float32bits(x[2*p+1]), seq[p], w)
		}
	}
	if seq[n] != 0 {
		t.Fatal("bf16PairSeq wrote past npairs")
	}
}

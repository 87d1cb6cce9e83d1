package kernels

import "fmt"

// MaxPool2Row computes one output row of a 2×2×2, stride-2 max pool over a
// channels-last volume: for ox < ow and channel j < c,
//
//	out[ox·c + j] = max over the window (kz, ky, kx) in z-, y-, x-order of
//	x[base + 2·ox·c + kz·sz + ky·sy + kx·c + j],
//
// where a value replaces the running maximum when it is greater, or when it
// is NaN and the maximum is not (the first NaN wins; ties keep the earlier
// element). When arg is not nil, arg[ox·c + j] receives the index into x
// of the element taken. The AVX2 version (channels a multiple of 8) agrees
// with the portable one exactly.
func MaxPool2Row(out []float32, arg []int32, x []float32, base, ow, c, sy, sz int) {
	last := base + 2*(ow-1)*c + sz + sy + c + c
	if ow <= 0 || c <= 0 || base < 0 || len(out) < ow*c || (arg != nil && len(arg) < ow*c) || len(x) < last || last > 1<<31-1 {
		panic(fmt.Sprintf("kernels.MaxPool2Row: %d voxels of %d channels from %d (strides %d, %d) in %d floats, out %d, arg %d",
			ow, c, base, sy, sz, len(x), len(out), len(arg)))
	}
	if poolAsm && c%8 == 0 {
		maxPool2Asm(out, arg, x, base, ow, c, sy, sz)
		return
	}
	for ox := 0; ox < ow; ox++ {
		dst := out[ox*c : (ox+1)*c]
		org := base + 2*ox*c
		first := true
		for kz := 0; kz < 2; kz++ {
			for ky := 0; ky < 2; ky++ {
				for kx := 0; kx < 2; kx++ {
					off := org + kz*sz + ky*sy + kx*c
					for j, v := range x[off : off+c] {
						if first || v > dst[j] || (v != v && dst[j] == dst[j]) {
							dst[j] = v
							if arg != nil {
								arg[ox*c+j] = int32(off + j)
							}
						}
					}
					first = false
				}
			}
		}
	}
}

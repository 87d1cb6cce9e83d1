package kernels

import "fmt"

// Row loops of the convolutions' bias: adding a per-channel bias to every
// row of a channels-last activation, and summing an output gradient's rows
// per channel (the bias gradient). Both are memory-bound passes; the AVX2
// versions (rows_amd64.s) do the same additions in the same order as the Go
// ones (per channel, rows in order), so they agree bit for bit.

// AddBias adds bias[j] to rows[r·c + j] for every row r, c = len(bias);
// len(rows) must be a multiple of c.
func AddBias(rows, bias []float32) {
	c := len(bias)
	if c == 0 || len(rows)%c != 0 {
		panic(fmt.Sprintf("kernels.AddBias: %d values are not rows of %d channels", len(rows), c))
	}
	n := len(rows) / c
	c8 := 0
	if rowsAsm {
		c8 = c &^ 7
		if c8 > 0 {
			addBiasAsm(rows, n, c8, c, bias)
		}
	}
	if c8 < c {
		for i := 0; i < n; i++ {
			r := rows[i*c+c8 : (i+1)*c]
			for j, b := range bias[c8:] {
				r[j] += b
			}
		}
	}
}

// ColSums adds Σ_r float64(g[r·c + j]) to acc[j] for the rows of g, c =
// len(acc), the rows in order for each channel; len(g) must be a multiple
// of c.
func ColSums(acc []float64, g []float32) {
	c := len(acc)
	if c == 0 || len(g)%c != 0 {
		panic(fmt.Sprintf("kernels.ColSums: %d values are not rows of %d channels", len(g), c))
	}
	n := len(g) / c
	c8 := 0
	if rowsAsm {
		c8 = c &^ 7
		if c8 > 0 {
			colSumsAsm(acc, g, n, c8, c)
		}
	}
	switch {
	case c == 1: // one channel (the U-Net's head): one loop, the same order
		a := acc[0]
		for _, v := range g {
			a += float64(v)
		}
		acc[0] = a
	case c8 < c:
		for i := 0; i < n; i++ {
			for j, v := range g[i*c+c8 : (i+1)*c] {
				acc[c8+j] += float64(v)
			}
		}
	}
}

// AddTo adds src to dst elementwise (dst[i] += src[i]); the slices must
// have the same length. The gradient accumulations of the concatenation,
// reshapes and per-worker partials.
func AddTo(dst, src []float32) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("kernels.AddTo: lengths %d and %d", len(dst), len(src)))
	}
	n8 := 0
	if rowsAsm {
		n8 = len(dst) &^ 7
		if n8 > 0 {
			addToAsm(dst, src, n8)
		}
	}
	for i := n8; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

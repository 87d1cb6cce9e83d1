package kernels

import (
	"fmt"
	"math"
)

// AdamStep is Adam's update (without weight decay) for one parameter
// tensor: m ← m·b1 + ob1·g, v ← v·b2 + (ob2·g)·g, p ← p + step·(m /
// (√v / bc2s + eps)), each product and quotient rounded to float32 before
// it is added (no fused multiply-add), the square root correctly rounded.
// The AVX2 version (adam_amd64.s) does the same operations in the same
// order on eight values at a time, so both agree bit for bit with the Go
// loop (optim.Adam's, which calls this).
func AdamStep(p, g, m, v []float32, b1, b2, ob1, ob2, bc2s, eps, step float32) {
	n := len(p)
	if len(g) != n || len(m) != n || len(v) != n {
		panic(fmt.Sprintf("kernels.AdamStep: lengths %d, %d, %d, %d", n, len(g), len(m), len(v)))
	}
	n8 := 0
	if adamAsm {
		n8 = n &^ 7
		if n8 > 0 {
			adamAVX2(p, g, m, v, n8, &[7]float32{b1, b2, ob1, ob2, bc2s, eps, step})
		}
	}
	for i := n8; i < n; i++ {
		gi := g[i]
		m[i] = float32(m[i]*b1) + float32(ob1*gi)
		v[i] = float32(v[i]*b2) + float32(float32(ob2*gi)*gi)
		den := float32(float32(math.Sqrt(float64(v[i])))/bc2s) + eps
		p[i] += float32(step * float32(m[i]/den))
	}
}

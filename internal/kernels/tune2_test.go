package kernels

import (
	"fmt"
	"testing"
)

func BenchmarkTune(b *testing.B) {
	type sh struct {
		tA, tB  bool
		m, n, k int
	}
	for _, s := range []sh{{true, false, 216, 8, 4096}, {true, false, 432, 16, 4096}, {true, false, 432, 32, 4096}, {true, false, 216, 8, 65536}} {
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		a := make([]float32, s.m*s.k)
		bm := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for i := range a {
			a[i] = 1
		}
		for _, v := range []bool{false, true} {
			b.Run(fmt.Sprintf("tA=%v,M=%d,N=%d,K=%d/directT=%v", s.tA, s.m, s.n, s.k, v), func(b *testing.B) {
				defer func(d bool) { directTransA = d }(directTransA)
				directTransA = v
				loop(b, 2*float64(s.m*s.n*s.k), func() {
					sgemmBlocked(kernelSet, 1, s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				})
			})
		}
	}
}

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
	for _, s := range []sh{{false, false, 480, 8, 216}, {false, false, 65536, 8, 216}, {false, false, 65536, 8, 27}, {true, false, 216, 8, 4800}, {false, false, 480, 16, 432}, {false, false, 65536, 16, 432}} {
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
		for _, v := range []string{"dot", "nodot"} {
			kp := kernelSet
			if v == "nodot" {
				kp.dot = nil
			}
			b.Run(fmt.Sprintf("tA=%v,M=%d,N=%d,K=%d/%s", s.tA, s.m, s.n, s.k, v), func(b *testing.B) {
				loop(b, 2*float64(s.m*s.n*s.k), func() {
					sgemmBlocked(kp, 1, s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				})
			})
		}
	}
}

package autodiff

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkWinoInputTiles times the input transform of every tile of a
// 64³ volume (one worker), the Winograd path's main non-GEMM cost.
func BenchmarkWinoInputTiles(b *testing.B) {
	for _, c := range []int{8, 16, 32} {
		rng := rand.New(rand.NewPCG(1, 2))
		x := randVar(rng, -1, 1, 1, 64, 64, 64, c)
		g := newConvGeom("bench", x.Value.Shape, [3]int{3, 3, 3}, c, Same3D(1))
		t := g.winoPlan(c, c)
		s := newWinoScratch(&t, c, c, true)
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			for it := 0; it < b.N; it++ {
				for blk := 0; blk < t.blocks; blk++ {
					i0 := blk * t.block
					nb := min(t.block, t.total-i0)
					for j := 0; j < nb; j++ {
						n, z, y, xx := t.at(i0 + j)
						g.winoInputTile(s, x.Value.Data, c, n, z, y, xx, s.v[j*c:], nil, t.vs)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*t.total), "ns/tile")
		})
	}
}

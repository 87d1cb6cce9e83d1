package autodiff

import "testing"

func BenchmarkIm2colFirstLayer(b *testing.B) {
	g := newConvGeom("b", []int{2, 32, 32, 32, 1}, [3]int{3, 3, 3}, 8, Same3D(1))
	src := make([]float32, 2*32*32*32)
	T, _ := g.tiles()
	col := make([]float32, T*27)
	for i := 0; i < b.N; i++ {
		for r0 := 0; r0 < g.rows(); r0 += T {
			g.im2col(src, r0, min(g.rows(), r0+T), col)
		}
	}
	b.ReportMetric(float64(g.rows()*27)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gfloat/s")
}

package autodiff

import "testing"

func BenchmarkIm2colFirstLayer(b *testing.B) {
	g := newConvGeom("b", []int{2, 32, 32, 32, 1}, [3]int{3, 3, 3}, 8, Same3D(1))
	src := make([]float32, 2*32*32*32)
	T, _ := g.tiles()
	col := make([]float32, T*27)
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		for r0 := 0; r0 < g.rows(); r0 += T {
			g.colOrSrc(src, r0, min(g.rows(), r0+T), col)
		}
	}
	b.ReportMetric(float64(g.rows()*27)*float64(b.N)/(cpuSeconds()-cpu0)/1e9, "Gfloat/cpu-s")
}

func BenchmarkIm2colSecondLayer(b *testing.B) {
	g := newConvGeom("b", []int{2, 32, 32, 32, 8}, [3]int{3, 3, 3}, 8, Same3D(1))
	src := make([]float32, 2*32*32*32*8)
	T, _ := g.tiles()
	col := make([]float32, T*g.kcols())
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		for r0 := 0; r0 < g.rows(); r0 += T {
			g.colOrSrc(src, r0, min(g.rows(), r0+T), col)
		}
	}
	b.ReportMetric(float64(g.rows()*g.kcols())*float64(b.N)/(cpuSeconds()-cpu0)/1e9, "Gfloat/cpu-s")
}

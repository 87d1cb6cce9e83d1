package dataset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// boxMean returns the mean of x over the (2r+1)³ box around each voxel of a
// size³ array (clamped at the borders), by separable running sums.
func boxMean(x []float32, size, r int) []float64 {
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(v)
	}
	stride := [3]int{1, size, size * size}
	tmp := make([]float64, len(x))
	for a := 0; a < 3; a++ {
		for i := range cur {
			c := i / stride[a] % size
			lo, hi := max(c-r, 0), min(c+r, size-1)
			s := 0.0
			for k := lo; k <= hi; k++ {
				s += cur[i+(k-c)*stride[a]]
			}
			tmp[i] = s / float64(hi-lo+1)
		}
		cur, tmp = tmp, cur
	}
	return cur
}

// voxelFeatures returns a few local features per voxel of a prepared image:
// intensity, box means at three scales, local contrast, the fraction of head
// voxels nearby and the radial position, with some products. These are what
// a small receptive field sees; no shape or tumour prior is built in.
func voxelFeatures(x []float32, size int) [][]float64 {
	m1, m2, m4 := boxMean(x, size, 1), boxMean(x, size, 2), boxMean(x, size, 4)
	head := make([]float32, len(x))
	for i, v := range x {
		if v != 0 {
			head[i] = 1
		}
	}
	h4 := boxMean(head, size, 4)
	f := make([][]float64, len(x))
	c := float64(size-1) / 2
	for i, v := range x {
		px, py, pz := float64(i%size)-c, float64(i/size%size)-c, float64(i/(size*size))-c
		rho := math.Sqrt(px*px+py*py+pz*pz) / c
		xv := float64(v)
		f[i] = []float64{xv, m1[i], m2[i], m4[i], m1[i] - m4[i], h4[i], rho, rho * rho,
			m2[i] * m2[i], m2[i] * rho, m2[i] * h4[i], xv * xv}
	}
	return f
}

// A model that sees only local neighbourhoods learns the synthetic lesions
// far better than the best intensity window: logistic regression on
// voxelFeatures, trained on 6 cases, beats the per-case oracle FLAIR window
// on 4 other cases by a wide margin. (The U-Net sees far more context; this
// only shows the lesions are locally distinctive while not thresholdable.)
func TestSynthBrainLearnable(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a classifier")
	}
	const size = 40
	opts := Options{Layout: LayoutBraTS2017, Size: size}.Defaults()
	type cs struct {
		f    [][]float64
		img  []float32
		mask []uint8
	}
	load := func(i int) cs {
		c := SynthBrain(11, i, 48)
		img, g, err := PreprocessVolume(c.Images["flair"], opts)
		if err != nil {
			t.Fatal(err)
		}
		mask, _ := PrepareLabel(c.Label, nil, g)
		return cs{voxelFeatures(img, size), img, mask}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var X [][]float64
	var Y []float64
	for i := 0; i < 6; i++ {
		c := load(i)
		for k := range c.mask {
			if c.mask[k] == 1 || r.Float64() < 0.08 {
				X = append(X, c.f[k])
				Y = append(Y, float64(c.mask[k]))
			}
		}
	}
	nf := len(X[0])
	mu, sd := make([]float64, nf), make([]float64, nf)
	for _, x := range X {
		for j, v := range x {
			mu[j] += v
			sd[j] += v * v
		}
	}
	for j := range mu {
		mu[j] /= float64(len(X))
		sd[j] = math.Sqrt(max(sd[j]/float64(len(X))-mu[j]*mu[j], 1e-12))
	}
	norm := func(x []float64) []float64 {
		z := make([]float64, nf)
		for j := range x {
			z[j] = (x[j] - mu[j]) / sd[j]
		}
		return z
	}
	for i := range X {
		X[i] = norm(X[i])
	}
	// Full-batch Adam on the logistic loss.
	w := make([]float64, nf+1)
	m, v := make([]float64, nf+1), make([]float64, nf+1)
	for it := 1; it <= 300; it++ {
		grad := make([]float64, nf+1)
		for i, x := range X {
			z := w[nf]
			for j, xv := range x {
				z += w[j] * xv
			}
			e := 1/(1+math.Exp(-z)) - Y[i]
			for j, xv := range x {
				grad[j] += e * xv
			}
			grad[nf] += e
		}
		for j := range w {
			g := grad[j] / float64(len(X))
			m[j] = 0.9*m[j] + 0.1*g
			v[j] = 0.999*v[j] + 0.001*g*g
			mh, vh := m[j]/(1-math.Pow(0.9, float64(it))), v[j]/(1-math.Pow(0.999, float64(it)))
			w[j] -= 0.1 * mh / (math.Sqrt(vh) + 1e-8)
		}
	}
	var learned, window float64
	for i := 6; i < 10; i++ {
		c := load(i)
		p := make([]float32, len(c.f))
		for k, x := range c.f {
			z := w[nf]
			for j, xv := range norm(x) {
				z += w[j] * xv
			}
			p[k] = float32(z)
		}
		dl, _, _ := bestIntervalDice(p, c.mask)
		dw, _, _ := bestIntervalDice(c.img, c.mask)
		t.Logf("held-out case %d: local-feature classifier Dice %.3f, best FLAIR window Dice %.3f", i, dl, dw)
		learned += dl / 4
		window += dw / 4
	}
	t.Logf("mean Dice: classifier %.3f, intensity window %.3f", learned, window)
	if learned < window+0.15 || learned < 0.6 {
		t.Errorf("lesions not learnable from local context: classifier %.3f vs window %.3f", learned, window)
	}
}

package metric

import (
	"math"
	"runtime"
	"slices"
	"sync"
)

// Distances holds the two directed surface-distance sets of a pair of masks,
// in mm: PredToTruth[i] is the distance from the i-th surface voxel of the
// prediction to the nearest surface voxel of the truth, TruthToPred the
// converse. The order of the voxels is NIfTI order (x fastest). If either
// mask is empty both sets are nil (the distance to an empty set is undefined;
// Compute then applies the empty-mask conventions).
type Distances struct {
	PredToTruth, TruthToPred []float64
}

// SurfaceDistances returns the directed surface distances between pred and
// truth (dims and spacing as in Compute).
//
// The surface ∂M of a mask M is the set of its foreground voxels with at
// least one 6-connected neighbour that is background or outside the image:
// M XOR erode(M) with a 3-D cross and border value 0, as MONAI's
// get_mask_edges (scipy.ndimage.binary_erosion defaults). Distances are
// Euclidean between voxel centres, with the anisotropic spacing:
// d(a,b) = sqrt(Σ_i (spacing_i·(a_i−b_i))²). d(a, ∂B) = min_{b∈∂B} d(a,b) is
// read from an exact Euclidean distance transform of ∂B (see sqEDT), so the
// cost is O(N) in the voxels of the bounding box of pred ∪ truth, not
// O(|∂A|·|∂B|).
func SurfaceDistances(pred, truth []uint8, dims [3]int, spacing [3]float64) (Distances, error) {
	if err := checkGeometry(len(pred), len(truth), dims, spacing); err != nil {
		return Distances{}, err
	}
	lo, hi, okP := boundingBox(pred, dims)
	lo2, hi2, okT := boundingBox(truth, dims)
	if !okP || !okT {
		return Distances{}, nil
	}
	// Work in the bounding box of the union: every surface voxel lies in
	// it, and voxels outside it are background, so the surfaces and the
	// distances between them are the same as in the whole image.
	var box [3]int
	for i := range 3 {
		lo[i] = min(lo[i], lo2[i])
		hi[i] = max(hi[i], hi2[i])
		box[i] = hi[i] - lo[i] + 1
	}
	sp := surface(pred, dims, lo, box)
	st := surface(truth, dims, lo, box)
	dist := make([]float64, box[0]*box[1]*box[2])
	var d Distances
	sqEDT(st, box, spacing, dist)
	d.PredToTruth = gather(dist, sp)
	sqEDT(sp, box, spacing, dist)
	d.TruthToPred = gather(dist, st)
	return d, nil
}

// boundingBox returns the inclusive index box of the nonzero voxels of m,
// and false if there are none.
func boundingBox(m []uint8, dims [3]int) (lo, hi [3]int, ok bool) {
	lo = dims
	hi = [3]int{-1, -1, -1}
	nx, ny := dims[0], dims[1]
	for z := range dims[2] {
		for y := range ny {
			row := m[nx*(y+ny*z) : nx*(y+ny*z)+nx]
			first := -1
			for x, v := range row {
				if v != 0 {
					first = x
					break
				}
			}
			if first < 0 {
				continue
			}
			last := first
			for x := nx - 1; x > first; x-- {
				if row[x] != 0 {
					last = x
					break
				}
			}
			lo = [3]int{min(lo[0], first), min(lo[1], y), min(lo[2], z)}
			hi = [3]int{max(hi[0], last), max(hi[1], y), max(hi[2], z)}
		}
	}
	return lo, hi, hi[0] >= 0
}

// surface returns the surface voxels of m within the box at lo of size box,
// as a box-sized mask: foreground voxels with a 6-neighbour that is
// background or outside the box (the box holds all foreground, so outside
// the box means background or outside the image).
func surface(m []uint8, dims, lo, box [3]int) []bool {
	s := make([]bool, box[0]*box[1]*box[2])
	nx, ny := dims[0], dims[1]
	at := func(x, y, z int) bool { // box coordinates
		if x < 0 || y < 0 || z < 0 || x >= box[0] || y >= box[1] || z >= box[2] {
			return false
		}
		return m[(x+lo[0])+nx*((y+lo[1])+ny*(z+lo[2]))] != 0
	}
	i := 0
	for z := range box[2] {
		for y := range box[1] {
			for x := range box[0] {
				if at(x, y, z) && (!at(x-1, y, z) || !at(x+1, y, z) || !at(x, y-1, z) ||
					!at(x, y+1, z) || !at(x, y, z-1) || !at(x, y, z+1)) {
					s[i] = true
				}
				i++
			}
		}
	}
	return s
}

// gather returns sqrt(sq[i]) for every i where sel[i], in index order.
func gather(sq []float64, sel []bool) []float64 {
	var out []float64
	for i, ok := range sel {
		if ok {
			out = append(out, math.Sqrt(sq[i]))
		}
	}
	return out
}

// sqEDT writes into dist the squared Euclidean distance (mm²) from every
// voxel of a box of size dims to the nearest voxel where feature is true
// (+Inf if there is none), with voxel size spacing.
//
// It is the exact separable algorithm of Felzenszwalb and Huttenlocher
// ("Distance Transforms of Sampled Functions", Theory of Computing 8, 2012):
// the squared distance D(x,y,z) = min over features (x',y',z') of
// w_z²(z−z')² + [w_y²(y−y')² + [w_x²(x−x')² + f(x',y',z')]] is computed by three
// passes of the 1-D lower envelope of parabolas (lowerEnvelope), along x, y
// and z, each O(n) per line. Lines of a pass are independent and are spread
// over GOMAXPROCS goroutines.
func sqEDT(feature []bool, dims [3]int, spacing [3]float64, dist []float64) {
	for i, f := range feature {
		if f {
			dist[i] = 0
		} else {
			dist[i] = math.Inf(1)
		}
	}
	nx, ny, nz := dims[0], dims[1], dims[2]
	strides := [3]int{1, nx, nx * ny}
	for axis := range 3 {
		n := dims[axis]
		if n == 1 {
			continue
		}
		w2 := spacing[axis] * spacing[axis]
		stride := strides[axis]
		// Enumerate the start of every line along axis.
		var starts func(k int) int
		var nlines int
		switch axis {
		case 0:
			nlines = ny * nz
			starts = func(k int) int { return k * nx }
		case 1:
			nlines = nx * nz
			starts = func(k int) int { return k%nx + (k/nx)*nx*ny }
		default:
			nlines = nx * ny
			starts = func(k int) int { return k }
		}
		parallel(nlines, func(from, to int) {
			e := newEnvelope(n)
			for k := from; k < to; k++ {
				s := starts(k)
				for i := range n {
					e.f[i] = dist[s+i*stride]
				}
				e.lowerEnvelope(w2)
				for i := range n {
					dist[s+i*stride] = e.out[i]
				}
			}
		})
	}
}

// envelope is the scratch space of one 1-D distance transform.
type envelope struct {
	f, out, z []float64
	v         []int
}

func newEnvelope(n int) *envelope {
	return &envelope{f: make([]float64, n), out: make([]float64, n), z: make([]float64, n+1), v: make([]int, n)}
}

// lowerEnvelope sets out[p] = min_q w2·(p−q)² + f[q] for p, q in [0, n), by
// building the lower envelope of the parabolas rooted at the finite f[q]
// (Felzenszwalb–Huttenlocher, Algorithm 1). Infinite f[q] contribute no
// parabola; if all are infinite, out is all +Inf.
func (e *envelope) lowerEnvelope(w2 float64) {
	f, v, z := e.f, e.v, e.z
	n := len(f)
	k := -1
	for q := range n {
		if math.IsInf(f[q], 1) {
			continue
		}
		fq := f[q] + w2*float64(q*q)
		var s float64
		for k >= 0 {
			r := v[k]
			// Abscissa where the parabola at q overtakes the one at r.
			s = (fq - (f[r] + w2*float64(r*r))) / (2 * w2 * float64(q-r))
			if s > z[k] {
				break
			}
			k--
		}
		k++
		v[k] = q
		if k == 0 {
			z[0] = math.Inf(-1)
		} else {
			z[k] = s
		}
		z[k+1] = math.Inf(1)
	}
	if k < 0 {
		for p := range e.out {
			e.out[p] = math.Inf(1)
		}
		return
	}
	j := 0
	for p := range n {
		for z[j+1] < float64(p) {
			j++
		}
		d := p - v[j]
		e.out[p] = w2*float64(d*d) + f[v[j]]
	}
}

// parallel runs body over [0, n) split into contiguous chunks, one per
// available CPU.
func parallel(n int, body func(from, to int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n < 64 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for from := 0; from < n; from += chunk {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			body(from, to)
		}(from, min(from+chunk, n))
	}
	wg.Wait()
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of values with
// NumPy's default "linear" method (numpy.percentile, torch.quantile): with
// the values sorted ascending as a[0..n−1], the virtual index is
// h = (n−1)·p/100 and the result interpolates linearly between a[⌊h⌋] and
// a[⌊h⌋+1]. It returns NaN for no values. values is not modified.
func Percentile(values []float64, p float64) float64 {
	n := len(values)
	if n == 0 || math.IsNaN(p) || p < 0 || p > 100 {
		return math.NaN()
	}
	a := slices.Clone(values)
	slices.Sort(a)
	h := float64(n-1) * (p / 100)
	lo := int(math.Floor(h))
	hi := min(lo+1, n-1)
	t := h - float64(lo)
	// NumPy's _lerp: a + (b−a)·t, computed from the upper end when t ≥ 0.5.
	diff := a[hi] - a[lo]
	if t >= 0.5 {
		return a[hi] - diff*(1-t)
	}
	return a[lo] + diff*t
}

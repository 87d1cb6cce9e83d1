package metric

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// vol makes an empty mask of dims with the listed voxels set.
func vol(dims [3]int, voxels ...[3]int) []uint8 {
	m := make([]uint8, dims[0]*dims[1]*dims[2])
	for _, v := range voxels {
		m[v[0]+dims[0]*(v[1]+dims[1]*v[2])] = 1
	}
	return m
}

// box makes a mask of dims with the inclusive box [lo, hi] set.
func box(dims, lo, hi [3]int) []uint8 {
	m := make([]uint8, dims[0]*dims[1]*dims[2])
	for z := lo[2]; z <= hi[2]; z++ {
		for y := lo[1]; y <= hi[1]; y++ {
			for x := lo[0]; x <= hi[0]; x++ {
				m[x+dims[0]*(y+dims[1]*z)] = 1
			}
		}
	}
	return m
}

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b))
}

func TestConfusionCountsEachCell(t *testing.T) {
	pred := []uint8{1, 1, 0, 0, 7, 0, 0}
	truth := []uint8{1, 0, 1, 0, 255, 0, 3}
	tp, fp, fn, tn := Confusion(pred, truth)
	if tp != 2 || fp != 1 || fn != 2 || tn != 2 {
		t.Fatalf("got tp=%d fp=%d fn=%d tn=%d, want 2 1 2 2", tp, fp, fn, tn)
	}
}

func TestFromCountsFormulas(t *testing.T) {
	r := FromCounts(6, 2, 4, 88)
	want := map[string]float64{
		"dice": 12.0 / 18, "iou": 6.0 / 12, "precision": 6.0 / 8,
		"sensitivity": 6.0 / 10, "specificity": 88.0 / 90,
	}
	for name, w := range want {
		if got, _ := r.Get(name); got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

func TestEmptyMaskConventions(t *testing.T) {
	dims := [3]int{4, 5, 6}
	sp := [3]float64{1, 2, 0.5}
	diag := math.Sqrt(4*4 + 10*10 + 3*3)
	empty := vol(dims)
	one := vol(dims, [3]int{1, 2, 3})

	r, err := Compute(empty, empty, dims, sp)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dice != 1 || r.IoU != 1 || r.HD != 0 || r.HD95 != 0 || r.ASSD != 0 {
		t.Errorf("both empty: %+v, want Dice=IoU=1, distances 0", r)
	}
	if !math.IsNaN(r.Precision) || !math.IsNaN(r.Sensitivity) || r.Specificity != 1 {
		t.Errorf("both empty: precision %v sensitivity %v specificity %v, want NaN NaN 1", r.Precision, r.Sensitivity, r.Specificity)
	}

	r, _ = Compute(empty, one, dims, sp) // missed the lesion
	if r.Dice != 0 || r.IoU != 0 || r.HD != diag || r.HD95 != diag || r.ASSD != diag {
		t.Errorf("empty prediction: %+v, want Dice=IoU=0, distances %v", r, diag)
	}
	if !math.IsNaN(r.Precision) || r.Sensitivity != 0 {
		t.Errorf("empty prediction: precision %v sensitivity %v, want NaN 0", r.Precision, r.Sensitivity)
	}

	r, _ = Compute(one, empty, dims, sp) // false alarm
	if r.Dice != 0 || r.HD != diag || r.Precision != 0 || !math.IsNaN(r.Sensitivity) {
		t.Errorf("empty truth: %+v, want Dice 0, HD %v, precision 0, sensitivity NaN", r, diag)
	}

	full := box(dims, [3]int{}, [3]int{3, 4, 5})
	r, _ = Compute(full, full, dims, sp)
	if r.Dice != 1 || !math.IsNaN(r.Specificity) || r.HD != 0 {
		t.Errorf("all foreground: %+v, want Dice 1, specificity NaN, HD 0", r)
	}
	if got := Diagonal([3]int{240, 240, 155}, [3]float64{1, 1, 1}); math.Abs(got-373.1287) > 1e-4 {
		t.Errorf("BraTS diagonal = %v, want 373.1287", got)
	}
}

func TestSingleVoxelsDistanceIsTheirSeparation(t *testing.T) {
	dims := [3]int{8, 8, 8}
	pred := vol(dims, [3]int{1, 1, 2})
	truth := vol(dims, [3]int{4, 5, 2})
	for _, c := range []struct {
		sp   [3]float64
		want float64
	}{
		{[3]float64{1, 1, 1}, 5},
		{[3]float64{2, 1, 7}, math.Sqrt(36 + 16)},
		{[3]float64{0.5, 0.25, 3}, math.Sqrt(1.5*1.5 + 1)},
	} {
		r, err := Compute(pred, truth, dims, c.sp)
		if err != nil {
			t.Fatal(err)
		}
		if !near(r.HD, c.want, 1e-15) || !near(r.HD95, c.want, 1e-15) || !near(r.ASSD, c.want, 1e-15) {
			t.Errorf("spacing %v: HD %v HD95 %v ASSD %v, want all %v", c.sp, r.HD, r.HD95, r.ASSD, c.want)
		}
		if r.Dice != 0 || r.TP != 0 || r.FP != 1 || r.FN != 1 {
			t.Errorf("spacing %v: %+v", c.sp, r)
		}
	}
}

// A 3³ cube centred in a 7³ cube: every surface voxel of the small cube is
// two voxels (along its nearest axis) from the big cube's shell; a shell
// voxel's distance to the small cube is its distance to the box [2,4]³.
func TestNestedCubesKnownDistances(t *testing.T) {
	dims := [3]int{9, 8, 7}
	inner := box(dims, [3]int{2, 2, 2}, [3]int{4, 4, 4})
	outer := box(dims, [3]int{0, 0, 0}, [3]int{6, 6, 6})
	sp := [3]float64{1.5, 1, 2.5}
	d, err := SurfaceDistances(inner, outer, dims, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.PredToTruth) != 26 || len(d.TruthToPred) != 7*7*7-5*5*5 {
		t.Fatalf("surface sizes %d, %d; want 26, 218", len(d.PredToTruth), len(d.TruthToPred))
	}
	i := 0
	var all []float64
	for z := 2; z <= 4; z++ {
		for y := 2; y <= 4; y++ {
			for x := 2; x <= 4; x++ {
				if x == 3 && y == 3 && z == 3 {
					continue
				}
				c := [3]int{x, y, z}
				want := math.Inf(1)
				for a := range 3 {
					want = math.Min(want, sp[a]*float64(min(c[a], 6-c[a])))
				}
				if !near(d.PredToTruth[i], want, 1e-15) {
					t.Errorf("inner %v: %v, want %v", c, d.PredToTruth[i], want)
				}
				all = append(all, want)
				i++
			}
		}
	}
	i = 0
	for z := 0; z <= 6; z++ {
		for y := 0; y <= 6; y++ {
			for x := 0; x <= 6; x++ {
				c := [3]int{x, y, z}
				if x > 0 && x < 6 && y > 0 && y < 6 && z > 0 && z < 6 {
					continue
				}
				var s float64
				for a := range 3 {
					e := sp[a] * float64(max(0, 2-c[a], c[a]-4))
					s += e * e
				}
				if want := math.Sqrt(s); !near(d.TruthToPred[i], want, 1e-15) {
					t.Errorf("outer %v: %v, want %v", c, d.TruthToPred[i], want)
				}
				all = append(all, math.Sqrt(s))
				i++
			}
		}
	}
	r, _ := Compute(inner, outer, dims, sp)
	hd := math.Sqrt(2 * 2 * (1.5*1.5 + 1 + 2.5*2.5))
	if !near(r.HD, hd, 1e-15) {
		t.Errorf("HD %v, want %v", r.HD, hd)
	}
	var sum float64
	for _, v := range all {
		sum += v
	}
	if !near(r.ASSD, sum/float64(len(all)), 1e-14) {
		t.Errorf("ASSD %v, want %v", r.ASSD, sum/float64(len(all)))
	}
	hd95 := math.Max(Percentile(d.PredToTruth, 95), Percentile(d.TruthToPred, 95))
	if r.HD95 != hd95 || !(r.HD95 < r.HD) {
		t.Errorf("HD95 %v, want %v (< HD %v)", r.HD95, hd95, r.HD)
	}
}

// bruteSurface returns the surface voxels of m (foreground with a
// 6-neighbour that is background or outside the image), straight from the
// definition.
func bruteSurface(m []uint8, dims [3]int) [][3]int {
	at := func(x, y, z int) bool {
		return x >= 0 && y >= 0 && z >= 0 && x < dims[0] && y < dims[1] && z < dims[2] &&
			m[x+dims[0]*(y+dims[1]*z)] != 0
	}
	var s [][3]int
	for z := range dims[2] {
		for y := range dims[1] {
			for x := range dims[0] {
				if at(x, y, z) && (!at(x-1, y, z) || !at(x+1, y, z) || !at(x, y-1, z) ||
					!at(x, y+1, z) || !at(x, y, z-1) || !at(x, y, z+1)) {
					s = append(s, [3]int{x, y, z})
				}
			}
		}
	}
	return s
}

// bruteDirected is the O(|A|·|B|) reference: for each a, min over b of the
// distance, with squared terms summed in the order x, y, z as sqEDT does.
func bruteDirected(a, b [][3]int, sp [3]float64) []float64 {
	w := [3]float64{sp[0] * sp[0], sp[1] * sp[1], sp[2] * sp[2]}
	out := make([]float64, len(a))
	for i, p := range a {
		best := math.Inf(1)
		for _, q := range b {
			dx, dy, dz := p[0]-q[0], p[1]-q[1], p[2]-q[2]
			d := w[0]*float64(dx*dx) + w[1]*float64(dy*dy) + w[2]*float64(dz*dz)
			best = math.Min(best, d)
		}
		out[i] = math.Sqrt(best)
	}
	return out
}

func TestSurfaceDistancesMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		dims := [3]int{1 + rng.IntN(12), 1 + rng.IntN(10), 1 + rng.IntN(8)}
		n := dims[0] * dims[1] * dims[2]
		var sp [3]float64
		integer := trial%2 == 0
		for i := range sp {
			if integer {
				sp[i] = float64(1 + rng.IntN(3))
			} else {
				sp[i] = 0.2 + 3*rng.Float64()
			}
		}
		pa, pb := rng.Float64(), rng.Float64()
		a, b := make([]uint8, n), make([]uint8, n)
		for i := range n {
			if rng.Float64() < pa {
				a[i] = 1
			}
			if rng.Float64() < pb {
				b[i] = uint8(1 + rng.IntN(4))
			}
		}
		d, err := SurfaceDistances(a, b, dims, sp)
		if err != nil {
			t.Fatal(err)
		}
		sa, sb := bruteSurface(a, dims), bruteSurface(b, dims)
		if len(sa) == 0 || len(sb) == 0 {
			if d.PredToTruth != nil || d.TruthToPred != nil {
				t.Fatalf("trial %d: an empty mask must give nil distances", trial)
			}
			continue
		}
		for dir, c := range []struct{ got, want []float64 }{
			{d.PredToTruth, bruteDirected(sa, sb, sp)},
			{d.TruthToPred, bruteDirected(sb, sa, sp)},
		} {
			if len(c.got) != len(c.want) {
				t.Fatalf("trial %d dir %d: %d distances, want %d", trial, dir, len(c.got), len(c.want))
			}
			for i := range c.got {
				// Integer spacings make every squared distance an exact
				// integer: the EDT must agree bit for bit.
				if integer && c.got[i] != c.want[i] || !near(c.got[i], c.want[i], 1e-13) {
					t.Fatalf("trial %d dims %v spacing %v dir %d voxel %d: %v, want %v",
						trial, dims, sp, dir, i, c.got[i], c.want[i])
				}
			}
		}
	}
}

func TestPercentileIsNumpyLinear(t *testing.T) {
	// Values from numpy.percentile(a, q).
	for _, c := range []struct {
		a    []float64
		q    float64
		want float64
	}{
		{[]float64{4, 1, 3, 2}, 95, 3.85},
		{[]float64{0, 10}, 95, 9.5},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 95, 9.55},
		{[]float64{7}, 95, 7},
		{[]float64{1, 2, 3}, 50, 2},
		{[]float64{1, 2, 3}, 100, 3},
		{[]float64{1, 2, 3}, 0, 1},
	} {
		if got := Percentile(c.a, c.q); !near(got, c.want, 1e-15) {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.a, c.q, got, c.want)
		}
	}
	if !math.IsNaN(Percentile(nil, 95)) {
		t.Error("percentile of nothing must be NaN")
	}
}

func TestAggregateSkipsAndCountsNaN(t *testing.T) {
	s := Aggregate([]float64{4, math.NaN(), 1, 3, 2})
	std := math.Sqrt(5.0 / 3)
	if s.N != 4 || s.NaNs != 1 || s.Mean != 2.5 || s.Median != 2.5 ||
		!near(s.Std, std, 1e-15) || !near(s.SEM, std/2, 1e-15) {
		t.Errorf("got %+v", s)
	}
	s = Aggregate([]float64{3, 1, 2})
	if s.Median != 2 || s.Mean != 2 || s.Std != 1 {
		t.Errorf("odd n: %+v", s)
	}
	s = Aggregate([]float64{5})
	if s.N != 1 || s.Mean != 5 || s.Median != 5 || !math.IsNaN(s.Std) || !math.IsNaN(s.SEM) {
		t.Errorf("n=1: %+v", s)
	}
	s = Aggregate([]float64{math.NaN()})
	if s.N != 0 || s.NaNs != 1 || !math.IsNaN(s.Mean) {
		t.Errorf("all NaN: %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `{"mean":null,"std":null,"sem":null,"median":null,"n":0,"nans":1}` {
		t.Errorf("JSON %s, %v", b, err)
	}
}

func TestResultJSONHasSpecKeysAndNullForNaN(t *testing.T) {
	r := FromCounts(0, 0, 3, 5)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range Names {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing in %s", k, b)
		}
	}
	if m["precision"] != nil || m["dice"] != 0.0 || m["fn"] != 3.0 {
		t.Errorf("got %s", b)
	}
}

func TestFromProbabilitiesThresholdInclusive(t *testing.T) {
	got := FromProbabilities([]float32{0, 0.49999, 0.5, 0.9, float32(math.NaN())}, 0.5)
	want := []uint8{0, 0, 1, 1, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestComputeRejectsBadGeometry(t *testing.T) {
	m := make([]uint8, 8)
	for _, c := range []struct {
		dims [3]int
		sp   [3]float64
		want string
	}{
		{[3]int{2, 2, 3}, [3]float64{1, 1, 1}, "need 12 voxels"},
		{[3]int{2, 2, 2}, [3]float64{1, 0, 1}, "spacing"},
		{[3]int{2, 2, 2}, [3]float64{1, math.NaN(), 1}, "spacing"},
		{[3]int{-2, -2, 2}, [3]float64{1, 1, 1}, "dims"},
	} {
		if _, err := Compute(m, m, c.dims, c.sp); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("dims %v spacing %v: err %v, want %q", c.dims, c.sp, err, c.want)
		}
	}
}

// sphere marks the voxels within radius r (in voxels) of centre c.
func sphere(dims [3]int, c [3]float64, r float64) []uint8 {
	m := make([]uint8, dims[0]*dims[1]*dims[2])
	i := 0
	for z := range dims[2] {
		for y := range dims[1] {
			for x := range dims[0] {
				dx, dy, dz := float64(x)-c[0], float64(y)-c[1], float64(z)-c[2]
				if dx*dx+dy*dy+dz*dz <= r*r {
					m[i] = 1
				}
				i++
			}
		}
	}
	return m
}

// BenchmarkComputeBraTS times a BraTS-sized case: two large overlapping
// spheres in a 240×240×155 image.
func BenchmarkComputeBraTS(b *testing.B) {
	dims := [3]int{240, 240, 155}
	pred := sphere(dims, [3]float64{120, 120, 77}, 70)
	truth := sphere(dims, [3]float64{126, 118, 75}, 66)
	for b.Loop() {
		if _, err := Compute(pred, truth, dims, [3]float64{1, 1, 1}); err != nil {
			b.Fatal(err)
		}
	}
}

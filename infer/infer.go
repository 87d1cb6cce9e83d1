// Package infer runs a trained model.UNet3D over a whole case by sliding
// window: the case is covered by overlapping windows of the network's patch
// size, each window's logits are weighted by a Gaussian that favours the
// window's centre, and the weighted logits are averaged voxel by voxel.
//
// Convention (the one bench/peer/torch_sliding_window.py implements; the
// tests check fess against it to 1e-4):
//
//   - Windows have Px×Py×Pz voxels (Options.Patch, x, y, z). Along an axis
//     of n voxels the window starts are round(linspace(0, n−P, k)) with
//     k = ceil((n−P) / (P·(1−overlap))) + 1, or the single start 0 when
//     n ≤ P (Starts). linspace is evaluated as numpy evaluates it (i·step
//     with step = (n−P)/(k−1), the last value exactly n−P) and rounded half
//     to even, as numpy and Python's round do.
//   - An axis shorter than its patch is zero-padded at its end to the patch
//     and the result cropped back to the case.
//   - Window weights are w(x,y,z) = g_x(x)·g_y(y)·g_z(z) with
//     g(t) = exp(−(t − (P−1)/2)² / (2σ²)), σ = P/8, scaled so that w has
//     maximum 1 and clamped below at its smallest positive value (a no-op in
//     practice: with σ = P/8 the smallest weight is at least e^−24).
//   - The stitched logits are Σ w·logits / Σ w over the windows covering a
//     voxel.
//   - With Options.TTA a window's logits are the mean over the 8 mirrorings
//     of the window (flip any subset of x, y, z, predict, flip back),
//     summed in the order of the 3-bit mask (bit 0 x, bit 1 y, bit 2 z).
//   - Probabilities are the sigmoid of each channel's stitched logit
//     (independent regions), or the softmax over the channels when the
//     model's Config.Softmax is set (exclusive classes).
//
// Layout: a case is C channel-major blocks of X·Y·Z float32 values, each
// block x fastest (index x + X·(y + Y·z)), C = the model's InChannels; the
// results are K blocks (K = OutChannels) in the same layout.
//
// Memory: windows are streamed. Besides the input and the returned slice,
// inference holds one batch of windows (input, mirrored copy, logits) and
// the network's activations for it on a no-grad arena tape that is reset
// after every forward. The weighted logit sums are accumulated in float32
// directly in the returned K·X·Y·Z slice; the weight sums Σ w are not
// stored per voxel: the windows form the Cartesian product of the per-axis
// starts and w is separable, so Σ w at (x,y,z) is the product of three 1-D
// float64 sums, one per axis.
//
// Results are deterministic for a given tensor.Threads() value; this
// package starts no goroutines of its own.
package infer

import (
	"math"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/kernels"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/tensor"
)

// DefaultOverlap is the overlap used when Options.Overlap is 0.
const DefaultOverlap = 0.5

// MaxStarts bounds the number of window starts along one axis, and
// MaxWindows the number of windows of a case (overlaps very close to 1 ask
// for absurd numbers).
const (
	MaxStarts  = 1 << 20
	MaxWindows = 1 << 24
)

// MaxWindowVoxels bounds a window's voxels (512³), and MaxBatchValues a
// batch's windows × voxels × max(in, out channels, Filters), so that a
// mistaken patch or batch is an error rather than an allocation failure.
const (
	MaxWindowVoxels = 1 << 27
	MaxBatchValues  = 1 << 32
)

// NoOverlap, as Options.Overlap, asks for windows that do not overlap
// (overlap 0, which the zero value cannot express because it selects
// DefaultOverlap).
const NoOverlap = -1

// Options configures sliding-window inference. The zero value means:
// patch = the model's InputSize on every axis, overlap DefaultOverlap, no
// mirroring, one window per forward.
type Options struct {
	// Patch is the window size along x, y, z. A zero entry takes the
	// model's InputSize. Each entry must be a positive multiple of
	// 2^Levels.
	Patch [3]int
	// Overlap is the fraction in [0, 1) by which neighbouring windows
	// overlap; 0 selects DefaultOverlap, NoOverlap selects 0.
	Overlap float64
	// TTA averages each window's logits over its 8 mirrorings.
	TTA bool
	// Batch is the number of windows per forward (default 1). Batching
	// changes only speed and memory, not the result beyond float
	// rounding of the convolutions.
	Batch int
}

// resolve fills the defaults and validates the options against m.
func (o Options) resolve(m *model.UNet3D) (Options, error) {
	f := 1 << m.Cfg.Levels
	for a := range o.Patch {
		if o.Patch[a] == 0 {
			o.Patch[a] = m.Cfg.InputSize
		}
		if p := o.Patch[a]; p < f || p%f != 0 || p > 1<<16 {
			return o, errs.Usage("infer: patch %v: each size must be a positive multiple of 2^levels = %d (at most 65536)", o.Patch, f)
		}
	}
	switch {
	case o.Overlap == 0:
		o.Overlap = DefaultOverlap
	case o.Overlap == NoOverlap:
		o.Overlap = 0
	case !(o.Overlap > 0 && o.Overlap < 1): // also rejects NaN
		return o, errs.Usage("infer: overlap %g must be in [0, 1)", o.Overlap)
	}
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Batch < 1 || o.Batch > 1<<12 {
		return o, errs.Usage("infer: batch %d must be between 1 and 4096 windows", o.Batch)
	}
	pv := o.Patch[0] * o.Patch[1] * o.Patch[2]
	if ch := max(m.Cfg.InChannels, m.Cfg.OutChannels, m.Cfg.Filters); pv > MaxWindowVoxels || o.Batch*pv*ch > MaxBatchValues {
		return o, errs.Usage("infer: patch %v × batch %d is too large (at most %d voxels a window, %d values a batch)",
			o.Patch, o.Batch, MaxWindowVoxels, MaxBatchValues)
	}
	return o, nil
}

// Starts returns the window starts along an axis of n voxels for windows
// of p voxels overlapping by the fraction overlap: round(linspace(0, n−p,
// k)) with k = ceil((n−p) / (p·(1−overlap))) + 1, rounded half to even as
// numpy does; [0] when n ≤ p. An overlap close to 1 can repeat starts,
// as numpy's would. It returns nil for p < 1, n < 1, an overlap outside
// [0, 1) or more than MaxStarts starts.
func Starts(n, p int, overlap float64) []int {
	if p < 1 || n < 1 || !(overlap >= 0 && overlap < 1) {
		return nil
	}
	if n <= p {
		return []int{0}
	}
	stop := float64(n - p)
	kf := math.Ceil(stop/(float64(p)*(1-overlap))) + 1
	if kf > MaxStarts {
		return nil
	}
	k := int(kf)
	out := make([]int, k)
	// numpy.linspace(0, stop, k): step = stop/(k−1), y[i] = i·step, and the
	// last value set to stop exactly.
	step := stop / float64(k-1)
	for i := 0; i < k-1; i++ {
		out[i] = int(math.RoundToEven(float64(i) * step))
	}
	out[k-1] = n - p
	return out
}

// Gaussian returns the 1-D window profile g(t) = exp(−(t − (p−1)/2)² /
// (2σ²)), σ = p/8, t = 0..p−1, divided by its maximum, so that the 3-D
// weight g⊗g⊗g has maximum 1 (for an even p the maximum, at the two
// middle samples, is slightly below 1 before the division). It returns nil
// for p < 1.
func Gaussian(p int) []float64 {
	if p < 1 {
		return nil
	}
	g := make([]float64, p)
	sigma := float64(p) / 8
	c := float64(p-1) / 2
	var mx float64
	for t := range g {
		d := float64(t) - c
		g[t] = math.Exp(-(d * d) / (2 * sigma * sigma))
		mx = math.Max(mx, g[t])
	}
	for t := range g {
		g[t] /= mx
	}
	return g
}

// Logits returns the stitched logits of the case img (InChannels
// channel-major blocks of dims[0]·dims[1]·dims[2] values, x fastest): K =
// OutChannels blocks in the same layout.
func Logits(m *model.UNet3D, img []float32, dims [3]int, opt Options) ([]float32, error) {
	if m == nil {
		return nil, errs.Usage("infer: no model")
	}
	opt, err := opt.resolve(m)
	if err != nil {
		return nil, err
	}
	vox := 1
	for _, d := range dims {
		if d < 1 || d > 1<<20 {
			return nil, errs.Input("", "infer: case dimensions %v must be between 1 and 2^20", dims)
		}
		vox *= d
		if vox > 1<<36 {
			return nil, errs.Input("", "infer: case dimensions %v are too large", dims)
		}
	}
	C, K := m.Cfg.InChannels, m.Cfg.OutChannels
	if len(img) != C*vox {
		return nil, errs.Input("", "infer: case of %v voxels and %d channels needs %d values, got %d",
			dims, C, C*vox, len(img))
	}
	P := opt.Patch
	B := opt.Batch
	if err := m.ValidateInput([]int{B, P[2], P[1], P[0], C}); err != nil {
		return nil, errs.Usage("infer: %v", err)
	}

	// Per-axis starts over the padded extent, 1-D weights and their sums.
	var starts [3][]int
	var g [3][]float64
	var norm [3][]float64
	for a := 0; a < 3; a++ {
		n := max(dims[a], P[a])
		starts[a] = Starts(n, P[a], opt.Overlap)
		if starts[a] == nil {
			return nil, errs.Usage("infer: overlap %g needs more than %d windows along an axis of %d voxels", opt.Overlap, MaxStarts, n)
		}
		g[a] = Gaussian(P[a])
		norm[a] = make([]float64, dims[a])
		for _, s := range starts[a] {
			for t := 0; t < P[a] && s+t < dims[a]; t++ {
				norm[a][s+t] += g[a][t]
			}
		}
	}
	pw := P[0] * P[1] * P[2]
	w := windowWeights(g, P)

	if nw := float64(len(starts[0])) * float64(len(starts[1])) * float64(len(starts[2])); nw > MaxWindows {
		return nil, errs.Usage("infer: overlap %g needs %.0f windows (more than %d)", opt.Overlap, nw, MaxWindows)
	}
	type win struct{ x, y, z int }
	var wins []win
	for _, sx := range starts[0] {
		for _, sy := range starts[1] {
			for _, sz := range starts[2] {
				wins = append(wins, win{sx, sy, sz})
			}
		}
	}

	out := make([]float32, K*vox)
	inBuf := make([]float32, B*pw*C)
	var flipBuf, accBuf []float32
	if opt.TTA {
		flipBuf = make([]float32, B*pw*C)
		accBuf = make([]float32, B*pw*K)
	}
	tp := autodiff.NewNoGradArena()
	X, Y, Z := dims[0], dims[1], dims[2]
	for lo := 0; lo < len(wins); lo += B {
		batch := wins[lo:min(lo+B, len(wins))]
		nb := len(batch)
		// Gather the windows into [nb, Pz, Py, Px, C], zeros beyond the case.
		in := inBuf[:nb*pw*C]
		clear(in)
		for b, wn := range batch {
			for z := 0; z < P[2] && wn.z+z < Z; z++ {
				for y := 0; y < P[1] && wn.y+y < Y; y++ {
					src := wn.x + X*(wn.y+y+Y*(wn.z+z))
					dst := ((b*P[2]+z)*P[1] + y) * P[0]
					nx := min(P[0], X-wn.x)
					for c := 0; c < C; c++ {
						s := img[c*vox+src : c*vox+src+nx]
						for x, v := range s {
							in[(dst+x)*C+c] = v
						}
					}
				}
			}
		}
		shape := []int{nb, P[2], P[1], P[0], C}
		var logits []float32
		if !opt.TTA {
			z, _ := m.ForwardLogits(tp, autodiff.Const(tensor.FromSlice(in, shape...)), false)
			logits = z.Value.Data
		} else {
			acc := accBuf[:nb*pw*K]
			clear(acc)
			for f := 0; f < 8; f++ {
				src := in
				if f != 0 {
					src = flipBuf[:nb*pw*C]
					flip(src, in, nb, P, C, f, false)
				}
				z, _ := m.ForwardLogits(tp, autodiff.Const(tensor.FromSlice(src, shape...)), false)
				flip(acc, z.Value.Data, nb, P, K, f, true)
				tp.Reset()
			}
			for i := range acc {
				acc[i] *= 0.125
			}
			logits = acc
		}
		// Stitch: out[k][voxel] += w·logit over the part inside the case.
		for b, wn := range batch {
			for z := 0; z < P[2] && wn.z+z < Z; z++ {
				for y := 0; y < P[1] && wn.y+y < Y; y++ {
					dst := wn.x + X*(wn.y+y+Y*(wn.z+z))
					row := ((b*P[2]+z)*P[1] + y) * P[0]
					wrow := w[(z*P[1]+y)*P[0]:]
					nx := min(P[0], X-wn.x)
					for k := 0; k < K; k++ {
						o := out[k*vox+dst : k*vox+dst+nx]
						for x := range o {
							o[x] += wrow[x] * logits[(row+x)*K+k]
						}
					}
				}
			}
		}
		tp.Reset()
	}
	for z := 0; z < Z; z++ {
		for y := 0; y < Y; y++ {
			nyz := norm[1][y] * norm[2][z]
			base := X * (y + Y*z)
			for x := 0; x < X; x++ {
				d := nyz * norm[0][x]
				for k := 0; k < K; k++ {
					i := k*vox + base + x
					out[i] = float32(float64(out[i]) / d)
				}
			}
		}
	}
	return out, nil
}

// windowWeights returns the float32 window weight g_x⊗g_y⊗g_z in a
// window's z, y, x order (x fastest), clamped below at its smallest
// positive value.
func windowWeights(g [3][]float64, P [3]int) []float32 {
	w64 := make([]float64, P[0]*P[1]*P[2])
	minPos := math.Inf(1)
	i := 0
	for z := 0; z < P[2]; z++ {
		for y := 0; y < P[1]; y++ {
			gyz := g[1][y] * g[2][z]
			for x := 0; x < P[0]; x++ {
				v := g[0][x] * gyz
				w64[i] = v
				if v > 0 && v < minPos {
					minPos = v
				}
				i++
			}
		}
	}
	w := make([]float32, len(w64))
	for i, v := range w64 {
		w[i] = float32(math.Max(v, minPos))
	}
	return w
}

// flip mirrors a batch [n, Pz, Py, Px, c] along x (mask bit 0), y (bit 1)
// and z (bit 2): dst = flip(src), or with add dst += flip(src). Mirroring
// is its own inverse, so the same call flips a prediction back.
func flip(dst, src []float32, n int, P [3]int, c, mask int, add bool) {
	fx, fy, fz := mask&1 != 0, mask&2 != 0, mask&4 != 0
	for b := 0; b < n; b++ {
		for z := 0; z < P[2]; z++ {
			sz := z
			if fz {
				sz = P[2] - 1 - z
			}
			for y := 0; y < P[1]; y++ {
				sy := y
				if fy {
					sy = P[1] - 1 - y
				}
				drow := ((b*P[2]+z)*P[1] + y) * P[0] * c
				srow := ((b*P[2]+sz)*P[1] + sy) * P[0] * c
				for x := 0; x < P[0]; x++ {
					sx := x
					if fx {
						sx = P[0] - 1 - x
					}
					d := dst[drow+x*c : drow+x*c+c]
					s := src[srow+sx*c : srow+sx*c+c]
					if add {
						for j := range d {
							d[j] += s[j]
						}
					} else {
						copy(d, s)
					}
				}
			}
		}
	}
}

// Probabilities returns Logits turned into probabilities: the sigmoid of
// each channel, or with m.Cfg.Softmax the softmax over the K channels of
// each voxel. Same layout as Logits.
func Probabilities(m *model.UNet3D, img []float32, dims [3]int, opt Options) ([]float32, error) {
	z, err := Logits(m, img, dims, opt)
	if err != nil {
		return nil, err
	}
	K := m.Cfg.OutChannels
	vox := len(z) / K
	if !m.Cfg.Softmax {
		// the training graph's sigmoid, bit for bit
		tensor.Parallel(len(z), 0, func(_, lo, hi int) { kernels.Sigmoid(z[lo:hi], z[lo:hi]) })
		return z, nil
	}
	e := make([]float64, K)
	for v := 0; v < vox; v++ {
		mx := math.Inf(-1)
		for k := 0; k < K; k++ {
			mx = math.Max(mx, float64(z[k*vox+v]))
		}
		var s float64
		for k := 0; k < K; k++ {
			e[k] = math.Exp(float64(z[k*vox+v]) - mx)
			s += e[k]
		}
		for k := 0; k < K; k++ {
			z[k*vox+v] = float32(e[k] / s)
		}
	}
	return z, nil
}

// KeepLargest returns a copy of the 0/1 mask (any non-zero value counts as
// foreground) of dims (x fastest) keeping only its largest 26-connected
// component; of equally large components it keeps the one whose first
// voxel comes first in scan order (x fastest, then y, then z). An empty
// mask gives an all-zero mask; a mask whose length is not
// dims[0]·dims[1]·dims[2] (or non-positive dims) gives nil.
func KeepLargest(mask []uint8, dims [3]int) []uint8 {
	X, Y, Z := dims[0], dims[1], dims[2]
	if X < 1 || Y < 1 || Z < 1 || X > 1<<20 || Y > 1<<20 || Z > 1<<20 {
		return nil
	}
	if uint64(X)*uint64(Y)*uint64(Z) != uint64(len(mask)) || len(mask) > math.MaxInt32 {
		return nil
	}
	out := make([]uint8, len(mask))
	label := make([]int32, len(mask)) // 0: unvisited; component ids from 1
	var queue []int32
	best, bestSize, next := int32(0), 0, int32(0)
	for start, v := range mask {
		if v == 0 || label[start] != 0 {
			continue
		}
		next++
		label[start] = next
		queue = append(queue[:0], int32(start))
		for h := 0; h < len(queue); h++ {
			i := int(queue[h])
			x, y, z := i%X, (i/X)%Y, i/(X*Y)
			for dz := -1; dz <= 1; dz++ {
				nz := z + dz
				if nz < 0 || nz >= Z {
					continue
				}
				for dy := -1; dy <= 1; dy++ {
					ny := y + dy
					if ny < 0 || ny >= Y {
						continue
					}
					for dx := -1; dx <= 1; dx++ {
						nx := x + dx
						if nx < 0 || nx >= X {
							continue
						}
						j := nx + X*(ny+Y*nz)
						if mask[j] != 0 && label[j] == 0 {
							label[j] = next
							queue = append(queue, int32(j))
						}
					}
				}
			}
		}
		if len(queue) > bestSize {
			best, bestSize = next, len(queue)
		}
	}
	for i, l := range label {
		if l == best && best != 0 {
			out[i] = 1
		}
	}
	return out
}

package train

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/infer"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/volume"
)

// InferOptions are the whole-case inference settings of fess test and
// fess predict.
type InferOptions struct {
	// TTA averages each window's logits over the 8 mirrorings.
	TTA bool
	// Overlap is the sliding window's overlap in [0, 1) (patch-trained
	// runs); 0 means the default 0.5, infer.NoOverlap none.
	Overlap float64
	// KeepLargest keeps only the largest 26-connected component of each
	// region (classes: of each class).
	KeepLargest bool
	// Native scores a cube-mode run in each case's native grid too
	// (patch-trained runs always are).
	Native bool
	// Checkpoint picks each run's weights: "best" (or ""; best, else
	// last, as LoadModel), "last", or "ema" (ema.safetensors, of a run
	// trained with --ema); see LoadModelCheckpoint.
	Checkpoint string
}

// ensemble is one run or several (cross-validation folds) that predict
// together: the same data options, task and network inputs and outputs.
type ensemble struct {
	runs   []string
	models []*model.UNet3D
	cfg    Config // the first run's
	task   dataset.Task
	opts   dataset.Options
}

func loadEnsemble(runs []string, which string) (*ensemble, error) {
	if len(runs) == 0 {
		return nil, errs.Usage("no run given")
	}
	e := &ensemble{runs: runs}
	for i, run := range runs {
		m, cfg, err := LoadModelCheckpoint(run, which)
		if err != nil {
			return nil, err
		}
		o, err := loadDataOptions(run)
		if err != nil {
			return nil, err
		}
		t, err := loadTask(run, o)
		if err != nil {
			return nil, err
		}
		if len(t.Channels) != m.Cfg.InChannels {
			return nil, errs.Input(run, "task.json names %d channels but the model takes %d", len(t.Channels), m.Cfg.InChannels)
		}
		if i == 0 {
			e.cfg, e.task, e.opts = cfg, t, o
		} else {
			o0, o1 := e.opts, o
			o0.Workers, o1.Workers, o0.Progress, o1.Progress = 0, 0, nil, nil
			o0.Folds, o1.Folds = 0, 0
			switch {
			case o0 != o1:
				return nil, errs.Input(run, "prepared with other options than %s; an ensemble needs one preparation", runs[0])
			case !slices.Equal(t.Channels, e.task.Channels) || !slices.Equal(t.RegionNames(), e.task.RegionNames()) || t.Softmax != e.task.Softmax:
				return nil, errs.Input(run, "predicts %s from %s, but %s predicts %s from %s", strings.Join(t.RegionNames(), ","),
					strings.Join(t.Channels, ","), runs[0], strings.Join(e.task.RegionNames(), ","), strings.Join(e.task.Channels, ","))
			case cfg.Patched() != e.cfg.Patched() || (!cfg.Patched() && m.Cfg.InputSize != e.models[0].Cfg.InputSize):
				return nil, errs.Input(run, "its input (%s) differs from %s's", inputDesc(cfg, m), runs[0])
			}
		}
		e.models = append(e.models, m)
	}
	return e, nil
}

func inputDesc(c Config, m *model.UNet3D) string {
	if c.Patched() {
		return fmt.Sprintf("patches %v", c.Patch)
	}
	return fmt.Sprintf("%d³ cube", m.Cfg.InputSize)
}

func prepDesc(p *dataset.Prepared) string {
	if p.Patched() {
		return "spacing mode"
	}
	return fmt.Sprintf("%d³", p.Size())
}

// probabilities returns the ensemble's mean probabilities of one prepared
// case (C channel-major blocks of dims), K' channel-major blocks (softmax:
// background first). A cube-mode run predicts the cube in one pass (with
// TTA: one window of the whole cube, mirrored); a patch-trained run slides
// its patch over the case.
func (e *ensemble) probabilities(img []float32, dims [3]int, opt InferOptions) ([]float32, error) {
	var sum []float32
	for _, m := range e.models {
		var p []float32
		var err error
		switch {
		case e.cfg.Patched():
			p, err = infer.Probabilities(m, img, dims, infer.Options{Patch: e.cfg.Patch, Overlap: opt.Overlap, TTA: opt.TTA})
		case opt.TTA:
			p, err = infer.Probabilities(m, img, dims, infer.Options{Patch: dims, TTA: true})
		default:
			s := m.Cfg.InputSize
			if dims != [3]int{s, s, s} {
				return nil, fmt.Errorf("case grid %v, the model takes %d³", dims, s)
			}
			p = channelMajor(Predict(m, img, s), s*s*s, m.Cfg.OutChannels)
		}
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = p
			continue
		}
		for i, v := range p {
			sum[i] += v
		}
	}
	if n := len(e.models); n > 1 {
		inv := 1 / float32(n)
		for i := range sum {
			sum[i] *= inv
		}
	}
	return sum, nil
}

// channelMajor turns channels-last outputs (vox·k) into k blocks of vox.
func channelMajor(p []float32, vox, k int) []float32 {
	if k == 1 {
		return p
	}
	out := make([]float32, len(p))
	for i := 0; i < vox; i++ {
		for c := 0; c < k; c++ {
			out[c*vox+i] = p[i*k+c]
		}
	}
	return out
}

// regionProbsCM splits channel-major outputs into one map per region (for
// softmax every class but the background).
func regionProbsCM(probs []float32, vox, k int, softmax bool) [][]float32 {
	first := 0
	if softmax {
		first = 1
	}
	out := make([][]float32, 0, k-first)
	for r := first; r < k; r++ {
		out = append(out, probs[r*vox:(r+1)*vox])
	}
	return out
}

// regionMasksCM thresholds channel-major outputs into one 0/1 mask per
// region: sigmoid regions at threshold, softmax classes by arg-max over all
// channels (background included).
func regionMasksCM(probs []float32, vox, k int, softmax bool, threshold float32) [][]uint8 {
	if !softmax {
		out := make([][]uint8, k)
		for r := range out {
			m := make([]uint8, vox)
			for i, v := range probs[r*vox : (r+1)*vox] {
				if v >= threshold {
					m[i] = 1
				}
			}
			out[r] = m
		}
		return out
	}
	out := make([][]uint8, k-1)
	for r := range out {
		out[r] = make([]uint8, vox)
	}
	for i := 0; i < vox; i++ {
		best := 0
		for c := 1; c < k; c++ {
			if probs[c*vox+i] > probs[best*vox+i] {
				best = c
			}
		}
		if best > 0 {
			out[best-1][i] = 1
		}
	}
	return out
}

// nativeTruth reads a test case's raw label file and splits it into the
// task's region masks on the native grid.
func nativeTruth(t dataset.Task, ci dataset.CaseInfo) ([][]uint8, error) {
	lab, err := volume.Read(ci.SourceLabel)
	if err != nil {
		return nil, err
	}
	g := ci.Geometry
	if [3]int(lab.Dims[:3]) != g.Dims {
		return nil, errs.Input(ci.SourceLabel, "dims %v differ from the case's native grid %v (the raw data changed since prepare?)", lab.Dims[:3], g.Dims)
	}
	masks, err := t.RegionMasks(lab.Data[:lab.NumVoxels()])
	if err != nil {
		return nil, errs.Input(ci.SourceLabel, "%v", err)
	}
	return masks, nil
}

// volumeMask returns a uint8 volume's voxels as a 0/1 mask.
func volumeMask(v *volume.Volume) []uint8 {
	m := make([]uint8, v.NumVoxels())
	for i, x := range v.Data[:len(m)] {
		if x != 0 {
			m[i] = 1
		}
	}
	return m
}

// RunsArg splits a --runs value (comma list) and checks that each is a run
// folder.
func RunsArg(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(r, "config.json")); err != nil {
			return nil, errs.Input(r, "not a run folder (no config.json)")
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errs.Usage("--runs names no run")
	}
	return out, nil
}

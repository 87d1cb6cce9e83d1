package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
)

var (
	spOnce sync.Once
	spDir  string
	spErr  error
)

// tinySpacingData prepares 8 synthetic brain cases in the spacing mode
// (8 mm voxels: cases of about 17×20×16 with their own dims) with 2
// cross-validation folds, once per test binary.
func tinySpacingData(t *testing.T) string {
	t.Helper()
	spOnce.Do(func() {
		base, err := os.MkdirTemp("", "fess-train-spacing")
		if err != nil {
			spErr = err
			return
		}
		raw := filepath.Join(base, "raw")
		spDir = filepath.Join(base, "prep")
		if spErr = dataset.WriteSynth("brain", raw, 8, 24, 7, 2, nil); spErr != nil {
			return
		}
		_, _, spErr = dataset.Prepare(raw, spDir, dataset.Options{Layout: "brats2017", SpacingMode: dataset.SpacingFixed,
			Spacing: [3]float64{8, 8, 8}, Target: "wt", Seed: 3, Split: [3]float64{0.6, 0.2, 0.2}, Workers: 2, Folds: 2})
	})
	if spErr != nil {
		t.Fatal(spErr)
	}
	return spDir
}

// patchConfig is tinyConfig training on 8³ patches.
func patchConfig(data, lossName string) Config {
	c := tinyConfig(data, lossName)
	c.Patch = [3]int{8, 8, 8}
	return c
}

func isUsage(err error) bool {
	var ue *errs.UsageError
	return errors.As(err, &ue)
}

// TestPatchDrawsDeterministic: a patch is a pure function of (seed, step,
// sample), samples and steps differ, labels stay 0/1, and cutting without
// augmentation copies the case's voxels (zero outside).
func TestPatchDrawsDeterministic(t *testing.T) {
	cfg := patchConfig(tinyData(t), "dice")
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c1, a, am := tr.drawPatch(7, 1)
	c2, b, bm := tr.drawPatch(7, 1)
	if c1 != c2 || !slices.Equal(am, bm) || len(a) != 8*8*8 {
		t.Fatal("same step and sample gave different patches")
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("patch differs at %d", i)
		}
	}
	_, c, _ := tr.drawPatch(7, 0)
	_, d, _ := tr.drawPatch(8, 1)
	if slices.Equal(a, c) || slices.Equal(a, d) {
		t.Fatal("another sample or step gave the same patch")
	}
	for step := int64(0); step < 30; step++ {
		_, _, m := tr.drawPatch(step, 0)
		for _, v := range m {
			if v > 1 {
				t.Fatalf("label %d", v)
			}
		}
	}
	x1, y1 := tr.patchBatch(3)
	x2, y2 := tr.patchBatch(3)
	if !slices.Equal(x1.Data, x2.Data) || !slices.Equal(y1.Data, y2.Data) || !slices.Equal(x1.Shape, []int{2, 8, 8, 8, 1}) {
		t.Fatalf("batch not reproducible or shape %v", x1.Shape)
	}
	// Without augmentation a patch larger than the case holds the whole
	// case, and zeros around it.
	off := false
	tr.Cfg.Augment = &off
	tr.Cfg.Patch = [3]int{20, 16, 24}
	for step := int64(0); step < 10; step++ {
		ci, img, mask := tr.drawPatch(step, 0)
		s := tr.train[ci]
		var sumCase, sumPatch float64
		var fgCase, fgPatch int
		for i, v := range s.Img {
			sumCase += float64(v)
			fgCase += int(s.Mask[i])
		}
		for i, v := range img {
			sumPatch += float64(v)
			fgPatch += int(mask[i])
		}
		if fgCase != fgPatch || math.Abs(sumCase-sumPatch) > 1e-3*math.Max(1, math.Abs(sumCase)) {
			t.Fatalf("step %d: padded patch holds %d fg / sum %v, the case %d / %v", step, fgPatch, sumPatch, fgCase, sumCase)
		}
	}
}

// TestPatchStartForeground: about a third of the patches are centred on
// a foreground voxel; the rest are uniform; starts stay in range.
func TestPatchStartForeground(t *testing.T) {
	dims, patch := [3]int{20, 30, 10}, [3]int{8, 8, 16}
	v := [3]int{15, 4, 6}
	fg := [][]int32{{}, {int32(v[0] + dims[0]*(v[1]+dims[1]*v[2]))}}
	const n = 6000
	hit := 0
	for i := 0; i < n; i++ {
		s := patchStart(sampleRNG(1, int64(i), 0), dims, patch, fg)
		for a := 0; a < 3; a++ {
			lo, hi := startRange(dims[a], patch[a])
			if s[a] < lo || s[a] > hi {
				t.Fatalf("start %v out of range on axis %d", s, a)
			}
		}
		// The voxel is the centre voxel (start = voxel − 4, − 4, − 8),
		// inside the start ranges [0,12], [0,22], [−6,0].
		if s == [3]int{v[0] - 4, v[1] - 4, v[2] - 8} {
			hit++
		}
	}
	// Foreground draws all land there (0.33); uniform ones with chance
	// 1/(13·23·7).
	p := ForegroundP + (1-ForegroundP)/(13*23*7)
	if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(hit)-n*p) > 5*sd {
		t.Fatalf("%d of %d patches centred on the foreground voxel, want about %.0f", hit, n, n*p)
	}
	// No foreground: always uniform, still in range.
	for i := 0; i < 100; i++ {
		patchStart(sampleRNG(2, int64(i), 3), dims, patch, [][]int32{{}})
	}
}

// TestPatchTrainingRuns trains two epochs on patches of the cube data:
// the config records the patch, augmentation and epoch length, the
// validation is by sliding window, and a re-run is bit-identical.
func TestPatchTrainingRuns(t *testing.T) {
	data := tinyData(t)
	cfg := patchConfig(data, "fess")
	cfg.Epochs = 2
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	tr := runTo(t, cfg, a, Options{})
	if tr.Cfg.ItersPerEpoch != 3 || !*tr.Cfg.Augment || tr.Model.Cfg.InputSize != 16 {
		t.Fatalf("resolved config %+v", tr.Cfg)
	}
	raw, _ := os.ReadFile(filepath.Join(a, "config.json"))
	for _, want := range []string{`"patch": [`, `"iters_per_epoch": 3`, `"augment": true`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Fatalf("config.json lacks %s:\n%s", want, raw)
		}
	}
	if bytes.Contains(raw, []byte(`"fold"`)) {
		t.Fatal("config.json records a fold")
	}
	logs, _ := os.ReadFile(filepath.Join(a, "log.jsonl"))
	if n := bytes.Count(logs, []byte(`"val_dice"`)); n != 2 {
		t.Fatalf("%d validated epochs:\n%s", n, logs)
	}
	if _, err := os.Stat(filepath.Join(a, BestCheckpoint)); err != nil {
		t.Fatal(err)
	}
	runTo(t, cfg, b, Options{})
	sameBits(t, paramsOf(t, filepath.Join(a, LastCheckpoint)), paramsOf(t, filepath.Join(b, LastCheckpoint)))
	// More iterations per epoch take more steps.
	cfg.Epochs, cfg.ItersPerEpoch = 1, 5
	if tr := runTo(t, cfg, filepath.Join(t.TempDir(), "c"), Options{}); tr.step != 5 {
		t.Fatalf("%d steps, want 5", tr.step)
	}
}

// TestValidatePatchMatchesCube: with the patch equal to the cube, the
// sliding window is one window, so validatePatch gives validate's Dice.
func TestValidatePatchMatchesCube(t *testing.T) {
	cfg := tinyConfig(tinyData(t), "dice")
	cfg.Epochs = 1
	tr := runTo(t, cfg, t.TempDir(), Options{})
	d1, l1 := tr.validate()
	tr.Cfg.Patch = [3]int{16, 16, 16}
	d2, l2, err := tr.validatePatch()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d1-d2) > 1e-3 || math.Abs(l1-l2) > 1e-4 {
		t.Fatalf("cube validation %v/%v, sliding window %v/%v", d1, l1, d2, l2)
	}
}

// TestCubeAugment: cube training with Augment draws augmented cubes from
// the same implementation, reproducibly, and still trains.
func TestCubeAugment(t *testing.T) {
	cfg := tinyConfig(tinyData(t), "dice")
	cfg.Epochs = 1
	on := true
	cfg.Augment = &on
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	x1, y1 := tr.batch(tr.train, []int{0, 1}, 4)
	x2, y2 := tr.batch(tr.train, []int{0, 1}, 4)
	if !slices.Equal(x1.Data, x2.Data) || !slices.Equal(y1.Data, y2.Data) {
		t.Fatal("augmented cube batch not reproducible")
	}
	off := false
	tr.Cfg.Augment = &off
	x3, _ := tr.batch(tr.train, []int{0, 1}, 4)
	if slices.Equal(x1.Data, x3.Data) {
		t.Fatal("augmentation changed nothing")
	}
	if !slices.Equal(x3.Data[:16*16*16], tr.train[0].Img) {
		t.Fatal("without augmentation the cube is not the case")
	}
	tr.Cfg.Augment = &on
	if logs, err := tr.Run(Options{}); err != nil || len(logs) != 1 || math.IsNaN(logs[0].Loss) {
		t.Fatalf("%v %+v", err, logs)
	}
	// Unset, cube training does not augment (as before the option).
	c := tinyConfig("d", "dice").Defaults()
	if c.Augmenting() || *c.Augment {
		t.Fatal("cube training augments by default")
	}
	if c := patchConfig("d", "dice").Defaults(); !c.Augmenting() {
		t.Fatal("patch training does not augment by default")
	}
}

// TestSpacingModeTraining trains on a spacing-mode data set (cases of
// their own dims) on fold 1 of its splits.json, and checks the usage
// errors: no --patch, a patch not a multiple of 2^levels, a fold out of
// range, and a fold on data without splits.json.
func TestSpacingModeTraining(t *testing.T) {
	data := tinySpacingData(t)
	p, err := dataset.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	folds, err := p.Folds()
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 1
	if _, err := New(cfg, t.TempDir(), Options{}); !isUsage(err) || !strings.Contains(err.Error(), "--patch") {
		t.Fatalf("spacing data without a patch: %v", err)
	}
	cfg.Patch = [3]int{8, 8, 12}
	k := 1
	cfg.Fold = &k
	tr := runTo(t, cfg, t.TempDir(), Options{})
	var ids, vids []string
	for _, s := range tr.train {
		ids = append(ids, s.ID)
	}
	for _, s := range tr.val {
		vids = append(vids, s.ID)
		if s.Dims == [3]int{} || len(s.Img) != s.Dims[0]*s.Dims[1]*s.Dims[2] {
			t.Fatalf("val case %s dims %v, %d values", s.ID, s.Dims, len(s.Img))
		}
	}
	if !slices.Equal(ids, folds[1].Train) || !slices.Equal(vids, folds[1].Val) {
		t.Fatalf("fold 1: trained on %v, validated on %v; want %+v", ids, vids, folds[1])
	}
	if tr.Model.Cfg.InputSize != 8 || *tr.Cfg.Fold != 1 {
		t.Fatalf("model input size %d, fold %v", tr.Model.Cfg.InputSize, tr.Cfg.Fold)
	}
	bad := cfg
	bad.Patch = [3]int{8, 6, 8}
	if _, err := New(bad, t.TempDir(), Options{}); !isUsage(err) {
		t.Fatalf("patch 8,6,8 with 2 levels: %v", err)
	}
	bad = cfg
	k2 := 2
	bad.Fold = &k2
	if _, err := New(bad, t.TempDir(), Options{}); !isUsage(err) {
		t.Fatalf("fold 2 of 2: %v", err)
	}
	bad = tinyConfig(tinyData(t), "dice")
	bad.Fold = &k
	if _, err := New(bad, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "splits.json") {
		t.Fatalf("fold without splits.json: %v", err)
	}
	bad = tinyConfig(tinyData(t), "dice")
	bad.ItersPerEpoch = 4
	if _, err := New(bad, t.TempDir(), Options{}); !isUsage(err) {
		t.Fatalf("iters-per-epoch in cube mode: %v", err)
	}
}

// TestOldConfigLoads: a config.json written before patch training loads
// with no patch, no fold and cube behaviour.
func TestOldConfigLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	old := `{"data":"d","loss":"fess","pairing":"previous-batch","model":{"Preset":"unet3d","Filters":2,"Levels":2,"Dropout":0,"InputSize":16,"InChannels":1,"BottleneckChannels":8,"Seed":5},
"epochs":3,"batch":2,"lr":0.001,"seed":5,"train_cases":0,"val_every":1,"clip_norm":1,"weight_decay":0,"decoupled_weight_decay":false,
"lambda":0.5,"contrastive_scale":0.0001,"temperature":0.5,"projection_dim":128,"queue_len":64,"threads":2}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Patched() || c.Fold != nil || c.Augment != nil || c.Defaults().Augmenting() {
		t.Fatalf("old config read as %+v", c)
	}
	b, _ := json.Marshal(c.Defaults())
	if bytes.Contains(b, []byte(`"patch"`)) || bytes.Contains(b, []byte(`"fold"`)) || bytes.Contains(b, []byte(`"iters_per_epoch"`)) {
		t.Fatalf("cube config marshals patch fields: %s", b)
	}
}

// TestKillResumePatchBitIdentical is TestKillResumeBitIdentical for patch
// training: on the cube data (16³ cases, 8³ patches) and on the spacing
// data (fold 0, 8×8×12 patches), a run killed with SIGKILL in its second
// epoch and resumed ends bit-identical to an uninterrupted run.
func TestKillResumePatchBitIdentical(t *testing.T) {
	mk := func(kind string) Config {
		if kind == "spacing" {
			c := tinyConfig(tinySpacingData(t), "fess")
			c.Patch = [3]int{8, 8, 12}
			k := 0
			c.Fold = &k
			c.ItersPerEpoch = 3
			return c
		}
		return patchConfig(tinyData(t), "fess")
	}
	if os.Getenv("FESS_KILL_PATCH_CHILD") != "" {
		opts := Options{killAtStep: 5} // 3 steps per epoch: step 5 is mid epoch 2
		tr, err := New(mk(os.Getenv("FESS_KILL_KIND")), os.Getenv("FESS_KILL_OUT"), opts)
		if err != nil {
			t.Fatal(err)
		}
		tr.Run(opts)
		t.Fatal("training was not killed")
	}
	for _, kind := range []string{"cube", "spacing"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			full, killed := filepath.Join(dir, "full"), filepath.Join(dir, "killed")
			runTo(t, mk(kind), full, Options{})
			runKilledChild(t, "TestKillResumePatchBitIdentical", "FESS_KILL_PATCH_CHILD=1", "FESS_KILL_OUT="+killed, "FESS_KILL_KIND="+kind)
			tr, err := New(mk(kind), killed, Options{Resume: true})
			if err != nil {
				t.Fatal(err)
			}
			if tr.epoch != 1 || tr.step != 3 {
				t.Fatalf("resumed at epoch %d step %d, want 1 and 3", tr.epoch, tr.step)
			}
			if _, err := tr.Run(Options{}); err != nil {
				t.Fatal(err)
			}
			sameBits(t, paramsOf(t, filepath.Join(full, LastCheckpoint)), paramsOf(t, filepath.Join(killed, LastCheckpoint)))
			a, _ := os.ReadFile(filepath.Join(full, "log.jsonl"))
			b, _ := os.ReadFile(filepath.Join(killed, "log.jsonl"))
			if n, m := bytes.Count(a, []byte("\n")), bytes.Count(b, []byte("\n")); n != 3 || m != 3 {
				t.Fatalf("log lines: uninterrupted %d, resumed %d; want 3", n, m)
			}
		})
	}
}

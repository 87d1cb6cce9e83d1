package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
)

// Checkpoint files of a run folder. Checkpoints are safetensors files: the
// model's weights and BatchNorm statistics under the names and layouts of
// the PyTorch module's state_dict (model/torch/fess_unet.py; see
// model.UNet3D.TorchTensors), so PyTorch can read them with
// safetensors.torch.load_file after dropping the "fess/" entries, and every
// other piece of training state (optimiser moments and step, dropout RNG
// counters, the objective's state, the loop counters) under "fess/" names,
// so that a resumed run stays bit-identical. The metadata holds the model
// config ("config", JSON), "fess_format": "checkpoint", "fess_version" and
// the data checksum "fess_sha256".
//
// Runs written before the switch hold last.ckpt and best.ckpt (the FESSST01
// state format of package tensor); they are still read, resumed and loaded,
// and `fess convert` turns them into safetensors.
const (
	LastCheckpoint = "last.safetensors"
	BestCheckpoint = "best.safetensors"
	LegacyLast     = "last.ckpt"
	LegacyBest     = "best.ckpt"
)

// Metadata entries of a checkpoint.
const (
	CheckpointFormat = "checkpoint" // value of FormatKey
	FormatKey        = "fess_format"
	ConfigKey        = "config" // the model Config as JSON (Go field names)
	VersionKey       = "fess_version"
)

// stateprefix marks the training state that is not part of the state_dict.
const stateprefix = "fess/"

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// pick returns the first of names that exists in run, else the first name.
func pick(run string, names ...string) (string, bool) {
	for _, n := range names {
		if p := filepath.Join(run, n); exists(p) {
			return p, true
		}
	}
	return filepath.Join(run, names[0]), false
}

// LastPath returns the run's last checkpoint: last.safetensors, or an older
// run's last.ckpt; if neither exists, the path of last.safetensors.
func LastPath(run string) string {
	p, _ := pick(run, LastCheckpoint, LegacyLast)
	return p
}

// BestPath returns the run's best checkpoint: best.safetensors, or an older
// run's best.ckpt; if neither exists, the path of best.safetensors.
func BestPath(run string) string {
	p, _ := pick(run, BestCheckpoint, LegacyBest)
	return p
}

// HasCheckpoint reports whether run holds a last checkpoint (of either
// format), i.e. whether it is a run that `fess train --resume` continues.
func HasCheckpoint(run string) bool {
	_, ok := pick(run, LastCheckpoint, LegacyLast)
	return ok
}

// checkpoint is a checkpoint file's content: the state_dict part (empty for
// a legacy file) and every other record (legacy: all records, the model's
// param/ and bn/ ones included).
type checkpoint struct {
	path   string
	legacy bool
	torch  []model.NamedTensor
	recs   []tensor.Record
	meta   map[string]string
}

// modelRecords returns the records of m's weights and BatchNorm statistics,
// the part of its state the state_dict holds (not its RNGs), by name. Other
// parameters with the same prefixes (a contrastive loss's projection head)
// are training state.
func modelRecords(m *model.UNet3D) map[string]tensor.Record {
	out := map[string]tensor.Record{}
	for _, r := range m.State().Records() {
		if strings.HasPrefix(r.Name, "param/") || strings.HasPrefix(r.Name, "bn/") {
			out[r.Name] = r
		}
	}
	return out
}

// writeCheckpoint writes m's weights as the state_dict and the records
// that are not the model's weights (recs may hold those too: they are
// skipped) under "fess/" names to path, atomically.
func writeCheckpoint(path string, m *model.UNet3D, recs []tensor.Record) error {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return err
	}
	torch := m.TorchTensors()
	// Every weight and statistic must be in the state_dict, or a resume
	// would silently lose it.
	var inTorch, inState int
	for _, t := range torch {
		inTorch += len(t.Data)
	}
	own := modelRecords(m)
	for _, r := range own {
		inState += r.Tensor.Len()
	}
	if inTorch != inState {
		return fmt.Errorf("save checkpoint: the state_dict holds %d values, the model %d", inTorch, inState)
	}
	ts := make([]safetensors.Tensor, 0, len(torch)+len(recs))
	for _, t := range torch {
		if t.Ints != nil {
			ts = append(ts, safetensors.I64(t.Name, t.Shape, t.Ints))
		} else {
			ts = append(ts, safetensors.F32(t.Name, t.Shape, t.Data))
		}
	}
	for _, r := range recs {
		if _, ok := own[r.Name]; ok {
			continue
		}
		if r.Tensor != nil {
			ts = append(ts, safetensors.F32(stateprefix+r.Name, r.Tensor.Shape, r.Tensor.Data))
		} else {
			ts = append(ts, safetensors.I64(stateprefix+r.Name, []int{len(r.Ints)}, r.Ints))
		}
	}
	meta := map[string]string{
		ConfigKey:  string(cfg),
		FormatKey:  CheckpointFormat,
		VersionKey: safetensors.FessVersion,
		"format":   "pt",
	}
	if err := safetensors.WriteFile(path, ts, meta); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads a checkpoint of either format (told apart by
// content, not by name) and refuses one holding a NaN or Inf value.
func readCheckpoint(path string) (*checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.WrapInput(path, err, "cannot read checkpoint")
	}
	ck := &checkpoint{path: path}
	if bytes.HasPrefix(data, []byte(tensor.Magic)) {
		ck.legacy = true
		if ck.recs, err = tensor.Decode(path, data); err != nil {
			return nil, err
		}
	} else {
		f, err := safetensors.Decode(data, path)
		if err != nil {
			return nil, err
		}
		if got := f.Metadata[FormatKey]; got != CheckpointFormat {
			return nil, errs.Input(path, "not a fess checkpoint (metadata %s is %q, want %q); weights exported for PyTorch load with --init-from", FormatKey, got, CheckpointFormat)
		}
		ck.meta = f.Metadata
		for _, t := range f.Tensors {
			name, state := strings.CutPrefix(t.Name, stateprefix)
			var fl []float32
			var in []int64
			switch t.DType {
			case "I64":
				in, err = t.Int64s()
			default:
				fl, err = t.Float32s()
			}
			if err != nil {
				return nil, errs.Input(path, "%v", err)
			}
			switch {
			case state && in != nil:
				ck.recs = append(ck.recs, tensor.Record{Name: name, Ints: in})
			case state:
				ck.recs = append(ck.recs, tensor.Record{Name: name, Tensor: tensor.FromSlice(fl, t.Shape...)})
			default:
				ck.torch = append(ck.torch, model.NamedTensor{Name: t.Name, Shape: t.Shape, Data: fl, Ints: in})
			}
		}
	}
	check := func(name string, v []float32) error {
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return errs.Input(path, "tensor %q holds a non-finite value (%v at index %d); the checkpoint is unusable", name, x, i)
			}
		}
		return nil
	}
	for _, t := range ck.torch {
		if err := check(t.Name, t.Data); err != nil {
			return nil, err
		}
	}
	for _, r := range ck.recs {
		if r.Tensor == nil {
			continue
		}
		name := r.Name
		if !ck.legacy {
			name = stateprefix + name
		}
		if err := check(name, r.Tensor.Data); err != nil {
			return nil, err
		}
	}
	return ck, nil
}

// loadModel copies the checkpoint's weights, BatchNorm statistics and
// dropout RNG states into m.
func (ck *checkpoint) loadModel(m *model.UNet3D) error {
	if ck.legacy {
		return m.State().Load(ck.recs, ck.path)
	}
	if js, ok := ck.meta[ConfigKey]; ok {
		var fc model.Config
		if err := json.Unmarshal([]byte(js), &fc); err != nil {
			return errs.Input(ck.path, "metadata %q is not a fess model config: %v", ConfigKey, err)
		}
		if fc.Preset != m.Cfg.Preset || fc.Softmax != m.Cfg.Softmax {
			return errs.Input(ck.path, "checkpoint is of a %s model (softmax %v), the run's config.json describes a %s one (softmax %v)",
				fc.Preset, fc.Softmax, m.Cfg.Preset, m.Cfg.Softmax)
		}
	}
	if err := m.LoadTorchTensors(ck.torch, ck.path); err != nil {
		return err
	}
	// The state_dict set the weights and statistics; State.Load wants them
	// too, so hand it the model's own (now loaded) tensors and the RNGs.
	recs := append([]tensor.Record(nil), ck.recs...)
	recs = append(recs, sortedRecords(modelRecords(m))...)
	return m.State().Load(recs, ck.path)
}

// allRecords returns every training-state record, the model's included
// (after loadModel, for a safetensors checkpoint).
func (ck *checkpoint) allRecords(m *model.UNet3D) []tensor.Record {
	if ck.legacy {
		return ck.recs
	}
	recs := append([]tensor.Record(nil), ck.recs...)
	recs = append(recs, sortedRecords(modelRecords(m))...)
	return recs
}

// save writes the full training state to path atomically.
func (t *Trainer) save(path string) error {
	recs := t.Model.State().Records()
	recs = append(recs, t.opt.Records()...)
	recs = append(recs, t.obj.records()...)
	recs = append(recs, tensor.Record{Name: "train/loop", Ints: []int64{
		int64(t.epoch), t.step, int64(math.Float64bits(t.bestDice)), int64(t.bestEpoch)}})
	if p := t.pos; p != nil {
		recs = append(recs, p.records()...)
	}
	recs = append(recs, t.emaRecords()...)
	return writeCheckpoint(path, t.Model, recs)
}

// restore loads a checkpoint written by save (or an older run's .ckpt).
func (t *Trainer) restore(path string) error {
	if !exists(path) {
		return errs.Input(path, "no checkpoint to resume from")
	}
	ck, err := readCheckpoint(path)
	if err != nil {
		return err
	}
	if err := ck.loadModel(t.Model); err != nil {
		return err
	}
	recs := ck.allRecords(t.Model)
	if err := t.opt.Load(recs, path); err != nil {
		return err
	}
	if err := t.obj.load(recs, path); err != nil {
		return err
	}
	if err := t.loadEMA(recs, path); err != nil {
		return err
	}
	found := false
	for _, r := range recs {
		if r.Name == "train/loop" && len(r.Ints) == 4 {
			t.epoch, t.step = int(r.Ints[0]), r.Ints[1]
			t.bestDice, t.bestEpoch = math.Float64frombits(uint64(r.Ints[2])), int(r.Ints[3])
			found = true
		}
	}
	if !found {
		return errs.Input(path, "checkpoint has no training-loop state (%strain/loop)", stateprefix)
	}
	if t.pos, err = loadEpochPos(recs, path); err != nil {
		return err
	}
	return trimLog(filepath.Join(t.Out, "log.jsonl"), t.epoch)
}

// LoadModel builds the model of a run folder and loads its best checkpoint
// (else its last one). A warning (best unusable, last used instead) goes to
// stderr; LoadModelWarn returns it instead.
func LoadModel(run string) (*model.UNet3D, Config, error) {
	m, cfg, warn, err := LoadModelWarn(run)
	if warn != "" {
		fmt.Fprintf(os.Stderr, "fess: warning: %s\n", warn)
	}
	return m, cfg, err
}

// Checkpoints lists the checkpoint choices of LoadModelCheckpoint.
var Checkpoints = []string{"best", "last", "ema"}

// LoadModelCheckpoint builds the model of a run folder from the chosen
// checkpoint: "best" or "" (LoadModel: best, else last, with a warning on
// stderr if best is unusable), "last" (the last checkpoint only) or "ema"
// (ema.safetensors, the EMA weights of a run trained with --ema). A run
// without EMA asked for "ema" is an input error saying so.
func LoadModelCheckpoint(run, which string) (*model.UNet3D, Config, error) {
	switch which {
	case "", "best":
		return LoadModel(run)
	case "last", "ema":
	default:
		return nil, Config{}, errs.Usage("--checkpoint %q: want one of %s", which, strings.Join(Checkpoints, ", "))
	}
	cfg, err := LoadConfig(filepath.Join(run, "config.json"))
	if err != nil {
		return nil, cfg, err
	}
	path, ok := pick(run, LastCheckpoint, LegacyLast)
	if which == "ema" {
		path, ok = filepath.Join(run, EMACheckpoint), exists(filepath.Join(run, EMACheckpoint))
		if !ok {
			if cfg.EMA == 0 {
				return nil, cfg, errs.Input(run, "--checkpoint ema: the run has no EMA weights (it was trained without --ema)")
			}
			return nil, cfg, errs.Input(run, "--checkpoint ema: no %s in the run folder (the run has --ema %g but no finished epoch yet?)", EMACheckpoint, cfg.EMA)
		}
	}
	if !ok {
		return nil, cfg, errs.Input(run, "no %s in the run folder", LastCheckpoint)
	}
	m, err := model.New(cfg.Model)
	if err != nil {
		return nil, cfg, err
	}
	ck, err := readCheckpoint(path)
	if err != nil {
		return nil, cfg, err
	}
	if err := ck.loadModel(m); err != nil {
		return nil, cfg, err
	}
	return m, cfg, nil
}

// LoadModelWarn is LoadModel returning the warning: best.safetensors (or
// an older run's best.ckpt) is preferred; if it is missing the last
// checkpoint is used, and if it cannot be loaded (corrupt, truncated,
// non-finite) the last one is used and warning says why. Both unusable is
// an input error naming both files.
func LoadModelWarn(run string) (m *model.UNet3D, cfg Config, warning string, err error) {
	cfg, err = LoadConfig(filepath.Join(run, "config.json"))
	if err != nil {
		return nil, cfg, "", err
	}
	build := func(path string) (*model.UNet3D, error) {
		m, err := model.New(cfg.Model)
		if err != nil {
			return nil, err
		}
		ck, err := readCheckpoint(path)
		if err != nil {
			return nil, err
		}
		if err := ck.loadModel(m); err != nil {
			return nil, err
		}
		return m, nil
	}
	best, hasBest := pick(run, BestCheckpoint, LegacyBest)
	last, hasLast := pick(run, LastCheckpoint, LegacyLast)
	if !hasBest && !hasLast {
		return nil, cfg, "", errs.Input(run, "no checkpoint (%s or %s) in the run folder", BestCheckpoint, LastCheckpoint)
	}
	if !hasBest {
		m, err = build(last)
		return m, cfg, "", err
	}
	m, berr := build(best)
	if berr == nil {
		return m, cfg, "", nil
	}
	if errs.ExitCode(berr) != 2 || !hasLast {
		return nil, cfg, "", berr
	}
	m, lerr := build(last)
	if lerr != nil {
		return nil, cfg, "", errs.Input(run, "no usable checkpoint: %v; and %v", berr, lerr)
	}
	return m, cfg, fmt.Sprintf("%v; using %s instead", berr, last), nil
}

// CheckpointTorchTensors reads a checkpoint of either format and returns
// its model weights as the PyTorch state_dict (the "fess/" training state
// left out) and the model config recorded with it; runConfig (a run's
// config.json) supplies the config for an older .ckpt, which records none,
// and may be "" for a safetensors checkpoint.
func CheckpointTorchTensors(path, runConfig string) ([]model.NamedTensor, model.Config, error) {
	m, _, err := loadCheckpointModel(path, runConfig)
	if err != nil {
		return nil, model.Config{}, err
	}
	return m.TorchTensors(), m.Cfg, nil
}

// loadCheckpointModel builds the model a checkpoint file holds (config
// from its metadata, else from runConfig) and loads it.
func loadCheckpointModel(path, runConfig string) (*model.UNet3D, *checkpoint, error) {
	ck, err := readCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	var mc model.Config
	if js, ok := ck.meta[ConfigKey]; ok {
		if err := json.Unmarshal([]byte(js), &mc); err != nil {
			return nil, nil, errs.Input(path, "metadata %q is not a fess model config: %v", ConfigKey, err)
		}
	} else {
		if runConfig == "" {
			return nil, nil, errs.Input(path, "checkpoint records no model config; give the run's config.json")
		}
		cfg, err := LoadConfig(runConfig)
		if err != nil {
			return nil, nil, err
		}
		mc = cfg.Model
	}
	m, err := model.New(mc)
	if err != nil {
		return nil, nil, err
	}
	if err := ck.loadModel(m); err != nil {
		return nil, nil, err
	}
	return m, ck, nil
}

// ConvertCheckpoint rewrites the checkpoint at in (an older run's .ckpt,
// or a safetensors checkpoint) as a safetensors checkpoint at out, keeping
// every record, so the result resumes and evaluates exactly as the input.
// runConfig is the run's config.json, which an older .ckpt needs for the
// model's architecture. The written file is read back and compared.
func ConvertCheckpoint(in, out, runConfig string) error {
	m, ck, err := loadCheckpointModel(in, runConfig)
	if err != nil {
		return err
	}
	recs := ck.allRecords(m)
	if !hasRecord(recs, "train/loop") {
		return errs.Input(in, "checkpoint has no training-loop state (train/loop)")
	}
	if err := writeCheckpoint(out, m, recs); err != nil {
		return err
	}
	m2, ck2, err := loadCheckpointModel(out, "")
	if err != nil {
		return fmt.Errorf("convert: reading back %s: %w", out, err)
	}
	if err := sameRecords(recs, ck2.allRecords(m2)); err != nil {
		return fmt.Errorf("convert: %s differs from %s: %v", out, in, err)
	}
	return nil
}

func hasRecord(recs []tensor.Record, name string) bool {
	for _, r := range recs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// sameRecords reports the first difference between two record sets
// (compared by name, bit for bit).
func sameRecords(a, b []tensor.Record) error {
	bm := make(map[string]tensor.Record, len(b))
	for _, r := range b {
		bm[r.Name] = r
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d records, then %d", len(a), len(b))
	}
	for _, r := range a {
		o, ok := bm[r.Name]
		if !ok {
			return fmt.Errorf("record %q lost", r.Name)
		}
		if (r.Tensor == nil) != (o.Tensor == nil) {
			return fmt.Errorf("record %q changed kind", r.Name)
		}
		if r.Tensor != nil {
			if !tensor.SameShape(r.Tensor.Shape, o.Tensor.Shape) {
				return fmt.Errorf("record %q: shape %v, then %v", r.Name, r.Tensor.Shape, o.Tensor.Shape)
			}
			for i, v := range r.Tensor.Data {
				if math.Float32bits(v) != math.Float32bits(o.Tensor.Data[i]) {
					return fmt.Errorf("record %q differs at %d", r.Name, i)
				}
			}
			continue
		}
		if len(r.Ints) != len(o.Ints) {
			return fmt.Errorf("record %q: %d ints, then %d", r.Name, len(r.Ints), len(o.Ints))
		}
		for i := range r.Ints {
			if r.Ints[i] != o.Ints[i] {
				return fmt.Errorf("record %q differs at %d", r.Name, i)
			}
		}
	}
	return nil
}

func sortedRecords(m map[string]tensor.Record) []tensor.Record {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]tensor.Record, len(names))
	for i, n := range names {
		out[i] = m[n]
	}
	return out
}

// epochPos is the position within an epoch that a checkpoint saved
// mid-epoch (on a signal) holds besides train/loop, whose epoch count is
// then the epochs completed before it: the steps taken in the epoch and
// the epoch's sums so far, so that a resumed run continues the epoch and
// logs the same means. Checkpoints written at the end of an epoch (and
// older ones) have none.
type epochPos struct {
	it, batches      int
	lossSum, diceSum float64
	seconds          float64
	parts            map[string]float64
}

const posRecord = "train/epoch_pos"
const posPartPrefix = "train/epoch_part/"

func (p *epochPos) records() []tensor.Record {
	recs := []tensor.Record{{Name: posRecord, Ints: []int64{int64(p.it), int64(p.batches),
		int64(math.Float64bits(p.lossSum)), int64(math.Float64bits(p.diceSum)), int64(math.Float64bits(p.seconds))}}}
	names := make([]string, 0, len(p.parts))
	for k := range p.parts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		recs = append(recs, tensor.Record{Name: posPartPrefix + k, Ints: []int64{int64(math.Float64bits(p.parts[k]))}})
	}
	return recs
}

// loadEpochPos reads an epochPos from recs (nil if they hold none).
func loadEpochPos(recs []tensor.Record, path string) (*epochPos, error) {
	var p *epochPos
	parts := map[string]float64{}
	for _, r := range recs {
		switch {
		case r.Name == posRecord:
			if len(r.Ints) != 5 || r.Ints[0] < 0 || r.Ints[1] < 0 {
				return nil, errs.Input(path, "malformed %s%s", stateprefix, posRecord)
			}
			f := func(i int) float64 { return math.Float64frombits(uint64(r.Ints[i])) }
			p = &epochPos{it: int(r.Ints[0]), batches: int(r.Ints[1]), lossSum: f(2), diceSum: f(3), seconds: f(4)}
		case strings.HasPrefix(r.Name, posPartPrefix) && len(r.Ints) == 1:
			parts[strings.TrimPrefix(r.Name, posPartPrefix)] = math.Float64frombits(uint64(r.Ints[0]))
		}
	}
	if p != nil {
		p.parts = parts
	}
	return p, nil
}

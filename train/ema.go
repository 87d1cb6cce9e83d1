package train

import (
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/optim"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/tensor"
)

// EMA of the weights (Config.EMA; docs/training.md).
//
// The average covers every tensor of the state_dict that is a float: the
// parameters and the BatchNorm running means and variances, all folded in
// with the same decay after every optimiser step (as timm's ModelEmaV2
// averages a module's whole state_dict), starting from the live model's
// values when the run starts. The averages live in a second UNet3D, which
// validation runs as it is and which is written as ema.safetensors. The
// objective's own parameters (a projection head) are not averaged.
//
// last.safetensors and best.safetensors hold the averages under
// fess/ema/param/… and fess/ema/bn/… (with fess/ema/steps), so a resumed
// run continues the same average bit for bit.

// EMACheckpoint is the EMA weights' file in a run folder: a fess checkpoint
// with the state_dict names of last/best (its fess/ entries are the EMA
// model's dropout RNGs only), written atomically next to each
// last.safetensors, so it is the average as of the last checkpoint.
const EMACheckpoint = "ema.safetensors"

const emaPrefix = "ema/"
const emaSteps = "ema/steps"

// emaTensors returns m's averaged tensors (weights, BatchNorm statistics)
// in name order.
func emaTensors(m *model.UNet3D) ([]string, []*tensor.Tensor) {
	recs := sortedRecords(modelRecords(m))
	names := make([]string, len(recs))
	ts := make([]*tensor.Tensor, len(recs))
	for i, r := range recs {
		names[i], ts[i] = r.Name, r.Tensor
	}
	return names, ts
}

// initEMA builds the EMA model, equal to the live one.
func (t *Trainer) initEMA() error {
	m, err := model.New(t.Model.Cfg)
	if err != nil {
		return err
	}
	_, avg := emaTensors(m)
	_, live := emaTensors(t.Model)
	a, err := optim.NewEMA(t.Cfg.EMA, avg, live)
	if err != nil {
		return errs.Usage("train: --ema %g: %v", t.Cfg.EMA, err)
	}
	t.ema, t.emaAvg = m, a
	return nil
}

// emaRecords are the EMA state's checkpoint records (shared tensors).
func (t *Trainer) emaRecords() []tensor.Record {
	if t.ema == nil {
		return nil
	}
	recs := []tensor.Record{{Name: emaSteps, Ints: []int64{t.emaAvg.Steps}}}
	names, ts := emaTensors(t.ema)
	for i, n := range names {
		recs = append(recs, tensor.Record{Name: emaPrefix + n, Tensor: ts[i]})
	}
	return recs
}

// loadEMA restores the EMA state from a checkpoint's records.
func (t *Trainer) loadEMA(recs []tensor.Record, path string) error {
	if t.ema == nil {
		return nil
	}
	var own []tensor.Record
	found := false
	for _, r := range recs {
		if r.Name == emaSteps && len(r.Ints) == 1 {
			t.emaAvg.Steps, found = r.Ints[0], true
		} else if n, ok := strings.CutPrefix(r.Name, emaPrefix); ok {
			own = append(own, tensor.Record{Name: n, Tensor: r.Tensor, Ints: r.Ints})
		}
	}
	if !found {
		return errs.Input(path, "checkpoint has no EMA state (%s%s): the run was trained without --ema", stateprefix, emaSteps)
	}
	// The EMA model's RNGs are never drawn from (it only runs in
	// inference mode): keep its own.
	for _, r := range t.ema.State().Records() {
		if strings.HasPrefix(r.Name, "rng/") {
			own = append(own, r)
		}
	}
	return t.ema.State().Load(own, path)
}

// saveLast writes last.safetensors and, with EMA, ema.safetensors.
func (t *Trainer) saveLast() error {
	if err := t.save(filepath.Join(t.Out, LastCheckpoint)); err != nil {
		return err
	}
	if t.ema == nil {
		return nil
	}
	return writeCheckpoint(filepath.Join(t.Out, EMACheckpoint), t.ema, t.ema.State().Records())
}

// checkScheduleExtend refuses to resume with more epochs (--extend) a run
// whose schedule is not constant: T, the epochs the poly or cosine decay
// spans, is the run's epoch count, so more epochs would change the rate of
// the epochs already trained (the learning rate would jump back up from
// where it had decayed). A constant schedule, warm-up or not, extends.
func checkScheduleExtend(path string, cfg Config) error {
	if !exists(path) {
		return nil
	}
	old, err := LoadConfig(path)
	if err != nil {
		return err
	}
	old = old.Defaults()
	if old.Epochs != cfg.Epochs && (old.LRSchedule != "constant" || cfg.LRSchedule != "constant") {
		sched := old.LRSchedule
		if sched == "constant" {
			sched = cfg.LRSchedule
		}
		return errs.Usage("train: --resume --epochs %d (run: %d) with lr_schedule %q: the schedule decays over the run's epochs, so extending would change the learning rate of the epochs already trained; start a new run from its weights instead (--init %s)",
			cfg.Epochs, old.Epochs, sched, filepath.Join(filepath.Dir(path), LastCheckpoint))
	}
	return nil
}

// initWeights loads Config.InitFrom into m: a PyTorch state_dict as
// safetensors (model.UNet3D.LoadTorchFile), or a fess checkpoint
// (last.safetensors, best.safetensors, ema.safetensors of a run), of which
// only the state_dict part is taken (weights and BatchNorm statistics;
// the fess/ training state is left out).
func initWeights(m *model.UNet3D, path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil || f.Metadata[FormatKey] != CheckpointFormat {
		return m.LoadTorchFile(path)
	}
	ck, err := readCheckpoint(path)
	if err != nil {
		return err
	}
	return m.LoadTorchTensors(ck.torch, path)
}

package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/fess-seg/fess/autodiff"
)

// Numerical safety. After every optimiser step Run checks the training
// loss (before the backward pass) and the weights (after the update: the
// float64 sum of every parameter, which is finite exactly when every
// parameter is, as float32 values cannot overflow a float64 sum), and at
// validation the validation loss and Dice. On a non-finite value it stops
// at once: nothing of the bad step or epoch is written (no checkpoint, no
// log line), so last and best keep the last good state, and Run returns an
// *ErrNonFinite naming the quantity.

// ErrNonFinite reports a NaN or Inf training loss, weight or validation
// loss; training stops and the last checkpoint keeps the last good state.
type ErrNonFinite struct {
	Quantity string // "training loss", "weights" or "validation loss"
	Epoch    int    // the epoch in progress (1-based)
	Step     int64  // the step (1-based, global) that produced it; at validation, the steps taken
	Value    float64
	Ckpt     string
}

func (e *ErrNonFinite) Error() string {
	q := e.Quantity
	if q == "" {
		q = "training loss"
	}
	return fmt.Sprintf("%s became %v at epoch %d step %d; stopped without saving it. The last good checkpoint is %s; try a lower --lr",
		q, e.Value, e.Epoch, e.Step, e.Ckpt)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// paramSum is the float64 sum of every value of params: NaN or ±Inf when
// any of them is not finite.
func paramSum(params []*autodiff.Var) float64 {
	var s float64
	for _, p := range params {
		for _, v := range p.Value.Data {
			s += float64(v)
		}
	}
	return s
}

// Stagnation: a run whose training loss has not moved for StagnantEpochs
// epochs gets a warning at the end.
const (
	StagnantEpochs = 10
	StagnantRel    = 1e-4
)

// stagnation returns a warning when the last StagnantEpochs epoch losses
// (of the whole run, one per epoch) lie within a relative StagnantRel of
// the first of them, else "".
func stagnation(losses []float64) string {
	if len(losses) < StagnantEpochs {
		return ""
	}
	w := losses[len(losses)-StagnantEpochs:]
	lo, hi := w[0], w[0]
	for _, v := range w {
		lo, hi = min(lo, v), max(hi, v)
	}
	ref := math.Max(math.Abs(w[0]), 1e-12)
	if (hi-lo)/ref >= StagnantRel {
		return ""
	}
	return fmt.Sprintf("the training loss has not moved for the last %d epochs (%.6g to %.6g, relative change < %g): the run is not learning; check --lr and the data",
		StagnantEpochs, lo, hi, StagnantRel)
}

// logLosses returns the training loss of every line of a log.jsonl.
func logLosses(path string) []float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []float64
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e struct {
			Loss *float64 `json:"loss"`
		}
		if json.Unmarshal(line, &e) == nil && e.Loss != nil {
			out = append(out, *e.Loss)
		}
	}
	return out
}

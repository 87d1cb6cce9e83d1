package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

// checkTrainFlags refuses explicitly given train flags whose value the
// defaults would otherwise replace or that cannot work (exit 2, naming the
// flag and the value); the rest is train.Config.Validate's.
func checkTrainFlags(given map[string]bool, epochs, batch int, lr, dropout, clip, lambda, temperature float64) error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case given["epochs"] && epochs < 1:
		return errs.Usage("train: --epochs %d: want ≥ 1", epochs)
	case given["batch"] && batch < 1:
		return errs.Usage("train: --batch %d: want ≥ 1", batch)
	case given["lr"] && !(lr > 0 && finite(lr)):
		return errs.Usage("train: --lr %g: want a finite learning rate > 0", lr)
	case given["dropout"] && !(dropout >= 0 && dropout < 1):
		return errs.Usage("train: --dropout %g: want a probability in [0, 1) (0: no dropout)", dropout)
	case given["clip-norm"] && !(clip >= 0 && finite(clip)):
		return errs.Usage("train: --clip-norm %g: want a finite norm ≥ 0 (0: no clipping)", clip)
	case given["lambda"] && !(lambda > 0 && lambda <= 1):
		return errs.Usage("train: --lambda %g: want 0 < λ ≤ 1 (the Dice weight)", lambda)
	case given["temperature"] && !(temperature > 0 && finite(temperature)):
		return errs.Usage("train: --temperature %g: want a finite temperature > 0", temperature)
	}
	return nil
}

// resumeFree lists the config fields a resumed run may change: the thread
// count (results stay bit-identical only for the same count, but that is
// the user's choice).
var resumeFree = []string{"threads"}

// checkResume refuses to resume the run whose config is at path with cfg
// when a recipe field differs, naming each field with its old and new
// value; with extend, a larger epochs is allowed. A missing config is
// left to train.New to report.
func checkResume(path string, cfg train.Config, extend bool) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	old, err := train.LoadConfig(path)
	if err != nil {
		return err
	}
	a, err := flatConfig(old.Defaults())
	if err != nil {
		return err
	}
	b, err := flatConfig(cfg.Defaults())
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if a[k] == b[k] || slices.Contains(resumeFree, k) {
			continue
		}
		if k == "epochs" && extend && cfg.Defaults().Epochs > old.Defaults().Epochs {
			continue
		}
		ov, nv := a[k], b[k]
		if ov == "" {
			ov = "(unset)"
		}
		if nv == "" {
			nv = "(unset)"
		}
		diffs = append(diffs, fmt.Sprintf("%s: %s → %s", k, ov, nv))
	}
	if len(diffs) == 0 {
		return nil
	}
	hint := ""
	for _, d := range diffs {
		if strings.HasPrefix(d, "epochs:") && !extend {
			hint = "; add --extend to train a finished or running run for more epochs"
		}
	}
	return errs.Usage("train: --resume: the flags change the run's recipe (config.json, left as it is): %s%s",
		strings.Join(diffs, "; "), hint)
}

// flatConfig returns c's JSON fields as dotted names (model.Filters) and
// their JSON values, with an explicit-zero dropout (< 0) read as 0.
func flatConfig(c train.Config) (map[string]string, error) {
	if c.Model.Dropout < 0 {
		c.Model.Dropout = 0
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if mm, ok := v.(map[string]any); ok {
			for k, x := range mm {
				walk(prefix+k+".", x)
			}
			return
		}
		js, _ := json.Marshal(v)
		out[strings.TrimSuffix(prefix, ".")] = string(js)
	}
	walk("", m)
	return out, nil
}

package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/internal/atomicio"
)

// SplitsName is the file name of the cross-validation folds inside a
// prepared directory.
const SplitsName = "splits.json"

// Fold is one cross-validation fold: the cases to train on and the cases
// to validate on. splits.json holds a JSON list of them, each
// {"train": [ids], "val": [ids]}, the shape of nnU-Net's splits_final.json.
type Fold struct {
	Train []string `json:"train"`
	Val   []string `json:"val"`
}

// makeFolds splits ids into k folds: the ids are shuffled by a PCG
// generator seeded by seed and cut into k consecutive runs (the first
// len(ids) mod k runs one longer), each the val set of one fold; a fold
// trains on every other id. Both lists keep the order of ids.
func makeFolds(ids []string, k int, seed int64) []Fold {
	n := len(ids)
	perm := rand.New(rand.NewPCG(uint64(seed), 0xf01d5)).Perm(n)
	fold := make([]int, n)
	start := 0
	for f := 0; f < k; f++ {
		size := n / k
		if f < n%k {
			size++
		}
		for _, i := range perm[start : start+size] {
			fold[i] = f
		}
		start += size
	}
	out := make([]Fold, k)
	for f := range out {
		out[f] = Fold{Train: []string{}, Val: []string{}}
		for i, id := range ids {
			if fold[i] == f {
				out[f].Val = append(out[f].Val, id)
			} else {
				out[f].Train = append(out[f].Train, id)
			}
		}
	}
	return out
}

// foldIDs returns the IDs of the cases outside the test split, in
// manifest order: the cases cross-validation folds are made of.
func foldIDs(cases []CaseInfo) []string {
	var ids []string
	for _, c := range cases {
		if c.Split != "test" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// writeFolds writes the folds of m's non-test cases to dir/splits.json,
// atomically.
func writeFolds(dir string, m *Manifest) error {
	folds := makeFolds(foldIDs(m.Cases), m.Options.Folds, m.Options.Seed)
	return atomicio.WriteJSON(filepath.Join(dir, SplitsName), folds)
}

// checkFoldCount reports --folds larger than the number of cases outside
// the test split.
func checkFoldCount(dir string, k int, split []string) error {
	n := 0
	for _, s := range split {
		if s != "test" {
			n++
		}
	}
	if k > n {
		return errs.Input(dir, "--folds %d but only %d cases are outside the test split; use fewer folds or a smaller test fraction", k, n)
	}
	return nil
}

// Folds reads and checks the cross-validation folds in splits.json (written
// by fess prepare --folds K, or by hand). Every fold must train on at least
// one case and validate on at least one; every ID must be a case of the
// manifest outside the test split, listed at most once per list and never
// in both lists of one fold. Faults are input errors naming splits.json.
func (p *Prepared) Folds() ([]Fold, error) {
	path := filepath.Join(p.Dir, SplitsName)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errs.Input(path, "no such file: prepare with --folds K to write the folds, or write them by hand")
		}
		return nil, errs.WrapInput(path, err, "cannot read")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var folds []Fold
	if err := dec.Decode(&folds); err != nil {
		return nil, errs.WrapInput(path, err, `invalid folds (want a JSON list of {"train": [ids], "val": [ids]})`)
	}
	if dec.More() {
		return nil, errs.Input(path, "invalid folds: data after the list")
	}
	if len(folds) == 0 {
		return nil, errs.Input(path, "lists no fold")
	}
	for f, fd := range folds {
		if len(fd.Train) == 0 {
			return nil, errs.Input(path, "fold %d has no train cases", f)
		}
		if len(fd.Val) == 0 {
			return nil, errs.Input(path, "fold %d has no val cases", f)
		}
		seen := map[string]string{}
		for _, l := range []struct {
			name string
			ids  []string
		}{{"train", fd.Train}, {"val", fd.Val}} {
			for _, id := range l.ids {
				c, ok := p.Case(id)
				if !ok {
					return nil, errs.Input(path, "fold %d %s: unknown case %q (not in %s)", f, l.name, id, ManifestName)
				}
				if c.Split == "test" {
					return nil, errs.Input(path, "fold %d %s: case %s is in the test split", f, l.name, id)
				}
				if prev, ok := seen[id]; ok {
					if prev == l.name {
						return nil, errs.Input(path, "fold %d lists case %s twice in %s", f, id, l.name)
					}
					return nil, errs.Input(path, "fold %d has case %s in both train and val", f, id)
				}
				seen[id] = l.name
			}
		}
		folds[f].Train, folds[f].Val = slices.Clone(fd.Train), slices.Clone(fd.Val)
	}
	return folds, nil
}

package train

import "path/filepath"

// SaveInitial writes the run's state before any training step as both its
// last and its best checkpoint (epoch 0), so that a run started from
// imported weights (Config.InitFrom) can be evaluated and used for
// prediction as it is, and continued with `fess train --resume`.
func (t *Trainer) SaveInitial() error {
	for _, f := range []string{LastCheckpoint, BestCheckpoint} {
		if err := t.save(filepath.Join(t.Out, f)); err != nil {
			return err
		}
	}
	return nil
}

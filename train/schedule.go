package train

import (
	"math"
)

// Learning-rate schedules (Config.LRSchedule, Config.WarmupEpochs;
// docs/training.md). The learning rate is set once per epoch, before its
// first step, as nnU-Net does for its poly schedule: it is a pure function
// of the configuration and the epoch, so a resumed run (also one resumed in
// the middle of an epoch) uses exactly the rates of an uninterrupted one and
// the checkpoint needs no schedule state.
//
// With base rate lr, E epochs, W warm-up epochs and the 0-based epoch index
// i = epoch − 1:
//
//	i < W:     lr·(i+1)/(W+1)                 linear warm-up (then lr at i = W)
//	otherwise  t = i − W, T = E − W:
//	  constant lr
//	  poly     lr·(1 − t/T)^0.9               (nnU-Net's PolyLRScheduler)
//	  cosine   lr·0.5·(1 + cos(π·t/T))        (PyTorch's CosineAnnealingLR, η_min 0, T_max T)
//
// The first epoch after warm-up runs at lr and the last at a small positive
// rate (poly: lr·(1/T)^0.9; cosine: lr·0.5·(1 + cos(π(T−1)/T))), never 0.

// Schedules lists the accepted learning-rate schedules.
var Schedules = []string{"constant", "poly", "cosine"}

// PolyExponent is the poly schedule's exponent (nnU-Net's 0.9).
const PolyExponent = 0.9

// EpochLR returns the learning rate of epoch (1-based) of the defaulted
// configuration c.
func (c Config) EpochLR(epoch int) float64 {
	i, w := epoch-1, c.WarmupEpochs
	if i < w {
		return c.LR * float64(i+1) / float64(w+1)
	}
	t, T := float64(i-w), float64(c.Epochs-w)
	switch c.LRSchedule {
	case "poly":
		return c.LR * math.Pow(1-t/T, PolyExponent)
	case "cosine":
		return c.LR * 0.5 * (1 + math.Cos(math.Pi*t/T))
	}
	return c.LR
}

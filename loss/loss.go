// Package loss holds the training losses of docs/method.md: the soft Dice loss,
// FESS (Dice plus a contrastive term on the U-Net's bottleneck features),
// the contrastive baselines SimCLR (NT-Xent) and InfoNCE (MoCo-style queue),
// and the usual segmentation losses BCE, Dice+BCE, focal and Tversky, with
// their softmax counterparts CrossEntropy and DiceCE.
//
// Every loss is built from autodiff ops on a *autodiff.Tape (nil: values
// only), takes probabilities p and a target y of the same shape (values in
// [0,1], channels-last [N,D,H,W,K]) unless stated otherwise, returns a
// scalar Var, and states its formula, reduction and empty-mask behaviour in
// its doc comment.
//
// K output channels come in two conventions. Sigmoid outputs: each channel
// an independent region with its own 0/1 target channel (K = 1: the
// paper's single foreground; K = 3: BraTS's WT/TC/ET regions). Softmax
// outputs: the channels are exclusive classes, channel 0 the background,
// and y is one-hot over all K. The overlap losses (Dice, DicePerSample,
// Tversky) average their per-channel values over the channels they are
// given, so a softmax model passes Foreground(p) and Foreground(y) to leave
// the background out (nnU-Net's default); the elementwise losses (BCE,
// Focal) average over voxels and channels; CrossEntropy and DiceCE are for
// softmax outputs. With K = 1 every loss computes exactly what it computed
// before channels were added. The PyTorch fixtures in testdata/ (gen_golden.py) pin the
// values and the input gradients of each.
//
// The contrastive baselines are not in the FESS reference's code; they are
// defined here (docs/method.md) and share λ, scale and T with FESS:
//
//	total = λ·Dice + (1−λ)·scale·L_contrastive,   λ = 0.5, scale = 1e-4, T = 0.5
package loss

import (
	"strings"

	"github.com/fess-seg/fess/errs"
)

// Kind names a training loss (the `fess train --loss` values).
type Kind string

// The training losses.
const (
	KindFESS    Kind = "fess"    // λ·Dice + (1−λ)·scale·ContrastiveFESS
	KindDice    Kind = "dice"    // Dice alone (the "Vanilla Dice" baseline)
	KindSimCLR  Kind = "simclr"  // λ·Dice + (1−λ)·scale·NTXent
	KindInfoNCE Kind = "infonce" // λ·Dice + (1−λ)·scale·InfoNCE
	KindBCE     Kind = "bce"     // binary cross-entropy (categorical cross-entropy for softmax outputs)
	KindDiceBCE Kind = "dicebce" // Dice + BCE (Dice + cross-entropy for softmax outputs)
	KindFocal   Kind = "focal"   // focal loss (Lin et al. 2017); sigmoid outputs only
	KindTversky Kind = "tversky" // Tversky loss (Salehi et al. 2017)
)

var kinds = []Kind{KindFESS, KindDice, KindSimCLR, KindInfoNCE, KindBCE, KindDiceBCE, KindFocal, KindTversky}

// Names returns the accepted loss names, FESS first.
func Names() []string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return s
}

// Parse returns the Kind named s (case-insensitive, surrounding spaces
// ignored); an unknown name is a usage error listing the accepted ones.
func Parse(s string) (Kind, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, k := range kinds {
		if string(k) == t {
			return k, nil
		}
	}
	return "", errs.Usage("unknown loss %q (want one of %s)", s, strings.Join(Names(), ", "))
}

// Contrastive reports whether the loss needs a second view or a second
// forward pass (fess, simclr, infonce).
func (k Kind) Contrastive() bool {
	return k == KindFESS || k == KindSimCLR || k == KindInfoNCE
}

// Pairing selects which bottleneck maps FESS's contrastive term compares
// (docs/method.md). The training loop builds prev and pres accordingly and passes
// them to ContrastiveFESS / FESS:
//
//   - PreviousBatch ("previous-batch", the default; the paper's flow
//     diagram): prev = the detached bottleneck of the previous training
//     step's batch, pres = this step's bottleneck with gradient. On the first
//     step of a run there is no previous batch: prev = a detached second
//     training-mode pass of the present batch (as SameBatch).
//   - SameBatch ("same-batch"): prev = a second, detached forward pass of
//     the same batch in training mode (dropout on, so the views differ),
//     pres = the gradient pass.
//   - SeedExact ("seed-exact"): both passes in inference mode on the same
//     batch, as the reference codes it. Then prev == pres, every similarity
//     s = 1 (0 for an all-zero channel), the term is the constant log(N·C)
//     and its gradient is zero (pairing_test.go shows it): FESS reduces to
//     λ·Dice. Kept for auditing the reference.
type Pairing string

// The pairings.
const (
	PreviousBatch Pairing = "previous-batch"
	SameBatch     Pairing = "same-batch"
	SeedExact     Pairing = "seed-exact"
)

var pairings = []Pairing{PreviousBatch, SameBatch, SeedExact}

// Pairings returns the accepted pairing names, the default first.
func Pairings() []string {
	s := make([]string, len(pairings))
	for i, p := range pairings {
		s[i] = string(p)
	}
	return s
}

// ParsePairing returns the Pairing named s; "" gives the default
// PreviousBatch, an unknown name is a usage error.
func ParsePairing(s string) (Pairing, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return PreviousBatch, nil
	}
	for _, p := range pairings {
		if string(p) == t {
			return p, nil
		}
	}
	return "", errs.Usage("unknown pairing %q (want one of %s)", s, strings.Join(Pairings(), ", "))
}

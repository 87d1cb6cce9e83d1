package loss

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/tensor"
)

func TestNamesAndParse(t *testing.T) {
	want := []string{"fess", "dice", "simclr", "infonce", "bce", "dicebce", "focal", "tversky"}
	if !slices.Equal(Names(), want) {
		t.Fatalf("Names() = %v, want %v", Names(), want)
	}
	for _, n := range want {
		k, err := Parse(" " + n + " ")
		if err != nil || string(k) != n {
			t.Errorf("Parse(%q) = %q, %v", n, k, err)
		}
	}
	if k, err := Parse("FESS"); err != nil || k != KindFESS {
		t.Errorf("Parse is not case-insensitive: %q, %v", k, err)
	}
	for _, bad := range []string{"", "dice+bce", "nce"} {
		_, err := Parse(bad)
		var ue *errs.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q): error %v, want a usage error", bad, err)
		}
	}
	for k, c := range map[Kind]bool{KindFESS: true, KindSimCLR: true, KindInfoNCE: true, KindDice: false, KindFocal: false} {
		if k.Contrastive() != c {
			t.Errorf("%s.Contrastive() = %v", k, !c)
		}
	}
}

func TestParsePairing(t *testing.T) {
	if !slices.Equal(Pairings(), []string{"previous-batch", "same-batch", "seed-exact"}) {
		t.Fatalf("Pairings() = %v", Pairings())
	}
	for in, want := range map[string]Pairing{"": PreviousBatch, "previous-batch": PreviousBatch, "same-batch": SameBatch, "Seed-Exact": SeedExact} {
		if p, err := ParsePairing(in); err != nil || p != want {
			t.Errorf("ParsePairing(%q) = %q, %v; want %q", in, p, err, want)
		}
	}
	var ue *errs.UsageError
	if _, err := ParsePairing("previous"); !errors.As(err, &ue) {
		t.Errorf("ParsePairing(previous): %v, want a usage error", err)
	}
}

func rows(vals ...float32) *tensor.Tensor { return tensor.FromSlice(vals, len(vals)/2, 2) }

// TestQueueRing checks the ring order, normalisation on push, and that
// Records/Load restore a queue that gives the same loss bit for bit.
func TestQueueRing(t *testing.T) {
	q := &Queue{Len: 3, D: 2} // a literal works as NewQueue(3, 2)
	q.Push(rows(3, 4, 0, 2))
	if q.Count() != 2 || !slices.Equal(q.Keys().Data, []float32{0.6, 0.8, 0, 1}) {
		t.Fatalf("after 2 pushes: count %d keys %v", q.Count(), q.Keys().Data)
	}
	q.Push(rows(1, 0, 0, -5)) // fills row 2, then overwrites row 0 (the oldest)
	if q.Count() != 3 || !slices.Equal(q.Keys().Data, []float32{0, -1, 0, 1, 1, 0}) {
		t.Fatalf("after wrap: count %d keys %v", q.Count(), q.Keys().Data)
	}
	q.Push(rows(0, 0)) // a zero key stays zero (x / max(‖x‖, 1e-12))
	if !slices.Equal(q.Keys().Data, []float32{0, -1, 0, 0, 1, 0}) {
		t.Fatalf("zero key: %v", q.Keys().Data)
	}

	r := NewQueue(3, 2)
	if err := r.Load(q.Records(), "ckpt"); err != nil {
		t.Fatal(err)
	}
	qv := autodiff.Const(rows(0.3, -0.2, 1, 1))
	kv := autodiff.Const(rows(0.5, 0.1, -1, 2))
	a, b := InfoNCE(nil, qv, kv, q, 0.5).Item(), InfoNCE(nil, qv, kv, r, 0.5).Item()
	if a != b {
		t.Errorf("restored queue gives %v, original %v", b, a)
	}
	q.Push(rows(7, 7))
	r.Push(rows(7, 7))
	if !slices.Equal(q.Keys().Data, r.Keys().Data) {
		t.Errorf("restored queue diverges after a push: %v vs %v", r.Keys().Data, q.Keys().Data)
	}
	if err := NewQueue(4, 2).Load(q.Records(), "ckpt"); err == nil {
		t.Error("Load accepted a queue of another length")
	}
	bad := q.Records()
	bad[1].Ints = []int64{2, 5}
	if err := NewQueue(3, 2).Load(bad, "ckpt"); err == nil {
		t.Error("Load accepted an out-of-range position")
	}
	if err := NewQueue(3, 2).Load(nil, "ckpt"); err == nil {
		t.Error("Load accepted no records")
	}
}

// TestInfoNCEQueueNegatives checks that queued keys act as negatives: a
// queued copy of a query's positive key raises the loss, and an empty
// queue equals no queue.
func TestInfoNCEQueueNegatives(t *testing.T) {
	qv := autodiff.Const(rows(1, 0, 0, 1))
	kv := autodiff.Const(rows(1, 0.1, 0.1, 1))
	none := InfoNCE(nil, qv, kv, nil, 0.5).Item()
	if e := InfoNCE(nil, qv, kv, NewQueue(4, 2), 0.5).Item(); e != none {
		t.Errorf("empty queue %v, no queue %v", e, none)
	}
	q := NewQueue(4, 2)
	q.Push(rows(1, 0.1))
	with := InfoNCE(nil, qv, kv, q, 0.5).Item()
	if !(with > none) {
		t.Errorf("a queued near-copy of the positive should raise the loss: %v ≤ %v", with, none)
	}
	// hand computation for N = 2 without queue: row i logits (q̂_i·k̂_j)/T
	k0 := 1 / math.Sqrt(1.01)
	l0 := -math.Log(math.Exp(2*k0) / (math.Exp(2*k0) + math.Exp(2*0.1*k0)))
	if math.Abs(float64(none)-l0) > 1e-6 {
		t.Errorf("InfoNCE %v, hand value %v", none, l0)
	}
}

// TestNTXentHand checks NT-Xent on N = 1 (the positive is the only
// candidate: L = 0) and on orthogonal views.
func TestNTXentHand(t *testing.T) {
	z1 := autodiff.Const(tensor.FromSlice([]float32{1, 0}, 1, 2))
	z2 := autodiff.Const(tensor.FromSlice([]float32{0, 3}, 1, 2))
	if l := NTXent(nil, z1, z2, 0.5).Item(); math.Abs(float64(l)) > 1e-7 {
		t.Errorf("N=1: %v, want 0", l)
	}
	// N = 2, views e0,e1 | e0,e1: each view's positive has sim 1, the two
	// negatives sims 0 and 0 (orthogonal) and ... (other's positive) 0.
	a := autodiff.Const(tensor.FromSlice([]float32{1, 0, 0, 1}, 2, 2))
	l := NTXent(nil, a, a, 0.5).Item()
	want := -math.Log(math.Exp(2) / (math.Exp(2) + 2))
	if math.Abs(float64(l)-want) > 1e-6 {
		t.Errorf("N=2: %v, want %v", l, want)
	}
}

// TestTverskyIsDiceAtHalf checks α = β = 0.5 reproduces the Dice loss, and
// the empty-mask conventions of the region losses.
func TestTverskyIsDiceAtHalf(t *testing.T) {
	p := autodiff.Const(tensor.FromSlice([]float32{0.9, 0.2, 0.6, 0.1}, 4))
	y := autodiff.Const(tensor.FromSlice([]float32{1, 0, 1, 1}, 4))
	if a, b := Tversky(nil, p, y, 0.5, 0.5, DiceEps).Item(), Dice(nil, p, y, DiceEps).Item(); math.Abs(float64(a-b)) > 3e-6 { // float32 rounding of FP = Σp − TP
		t.Errorf("Tversky(0.5,0.5) %v, Dice %v", a, b)
	}
	z := autodiff.Const(tensor.New(4))
	if l := Tversky(nil, z, z, 0.3, 0.7, DiceEps).Item(); l != 0 {
		t.Errorf("Tversky of two empty masks %v, want 0", l)
	}
	// FP only (empty target): TP = 0 → L = 1 − ε/(α·FP + ε) ≈ 1
	if l := Tversky(nil, p, z, 0.3, 0.7, DiceEps).Item(); math.Abs(float64(l)-(1-1e-5/(0.3*1.8+1e-5))) > 1e-6 {
		t.Errorf("Tversky with empty target %v", l)
	}
}

// TestBCEClamp checks the stated clamp: p = 0 with y = 1 costs −log 1e-7.
func TestBCEClamp(t *testing.T) {
	p := autodiff.Const(tensor.FromSlice([]float32{0, 1}, 2))
	y := autodiff.Const(tensor.FromSlice([]float32{1, 0}, 2))
	l := BCE(nil, p, y).Item()
	want := -(math.Log(1e-7) + math.Log(float64(float32(1e-7)))) / 2 // 1−(1−1e-7) in float32
	if math.Abs(float64(l)-want)/want > 1e-2 || math.IsInf(float64(l), 0) {
		t.Errorf("BCE at the clamp %v, want ≈ %v", l, want)
	}
	z := autodiff.Const(tensor.FromSlice([]float32{-100, 100}, 2))
	if l := BCEWithLogits(nil, z, y).Item(); math.Abs(float64(l)-100) > 1e-4 {
		t.Errorf("BCEWithLogits at ±100: %v, want 100 (no clamp)", l)
	}
}

// TestBaselineWeighting checks that SimCLR and InfoNCEParts weight their
// terms as FESS: λ·Dice + (1−λ)·scale·L_con.
func TestBaselineWeighting(t *testing.T) {
	p := autodiff.Const(tensor.FromSlice([]float32{0.9, 0.2, 0.6, 0.1}, 4))
	y := autodiff.Const(tensor.FromSlice([]float32{1, 0, 1, 1}, 4))
	z1 := autodiff.Const(tensor.FromSlice([]float32{1, 2, -1, 0.5, 0, 1}, 3, 2))
	z2 := autodiff.Const(tensor.FromSlice([]float32{1, 1.5, -1, 1, 0.2, 1}, 3, 2))
	opt := FESSOptions{Lambda: 0.3, Scale: 0.01, Temperature: 0.5, Eps: DiceEps}
	queue := NewQueue(2, 2)
	queue.Push(rows(1, -1))
	for name, parts := range map[string]Parts{
		"simclr":  SimCLR(nil, p, y, z1, z2, opt),
		"infonce": InfoNCEParts(nil, p, y, z1, z2, queue, opt),
	} {
		want := 0.3*float64(parts.Dice.Item()) + 0.7*0.01*float64(parts.Con.Item())
		if math.Abs(float64(parts.Total.Item())-want) > 1e-6 {
			t.Errorf("%s: total %v, want %v", name, parts.Total.Item(), want)
		}
	}
	if a, b := SimCLR(nil, p, y, z1, z2, opt).Con.Item(), NTXent(nil, z1, z2, 0.5).Item(); a != b {
		t.Errorf("SimCLR Con %v, NTXent %v", a, b)
	}
}

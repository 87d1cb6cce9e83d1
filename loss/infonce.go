package loss

import (
	"fmt"
	"math"

	"github.com/fess-seg/fess/autodiff"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/tensor"
)

// Queue is InfoNCE's ring buffer of previous keys (He et al. 2020, MoCo):
// up to Len L2-normalised rows of D values. Push writes a batch of keys over
// the oldest entries; Keys returns the filled rows in storage order, so the
// loss is a pure function of the pushes (deterministic, and a checkpoint of
// Records restores it exactly). Build it with NewQueue, or as a literal
// Queue{Len: n, D: d} (storage is allocated on first use).
type Queue struct {
	Len, D int
	data   []float32 // Len×D, row-major
	count  int       // filled rows (≤ Len)
	next   int       // row the next push writes
}

// NewQueue returns an empty queue of n keys of dimension d (n may be 0: no
// queue, in-batch negatives only).
func NewQueue(n, d int) *Queue {
	if n < 0 || d < 1 {
		panic(fmt.Sprintf("loss.NewQueue: length %d, dimension %d", n, d))
	}
	return &Queue{Len: n, D: d, data: make([]float32, n*d)}
}

// buf returns the row storage, allocating it for a literal Queue.
func (q *Queue) buf() []float32 {
	if q.Len < 0 || q.D < 1 {
		panic(fmt.Sprintf("loss.Queue: length %d, dimension %d", q.Len, q.D))
	}
	if len(q.data) != q.Len*q.D {
		q.data = make([]float32, q.Len*q.D)
		q.count, q.next = 0, 0
	}
	return q.data
}

// Count returns the number of filled rows.
func (q *Queue) Count() int { return q.count }

// Push appends the rows of k [N,D] (after the loss of the step that
// computed them), each L2-normalised (x / max(‖x‖, 1e-12)), overwriting
// the oldest rows once the queue is full.
func (q *Queue) Push(k *tensor.Tensor) {
	tensor.MustRank("loss.Queue.Push", k, 2)
	if k.Shape[1] != q.D {
		panic(fmt.Sprintf("loss.Queue.Push: keys %v, queue dimension %d", k.Shape, q.D))
	}
	data := q.buf()
	if q.Len == 0 {
		return
	}
	for r := 0; r < k.Shape[0]; r++ {
		row := k.Data[r*q.D : (r+1)*q.D]
		ss := 0.0
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		den := max(float32(math.Sqrt(ss)), NormEps)
		dst := data[q.next*q.D : (q.next+1)*q.D]
		for i, v := range row {
			dst[i] = v / den
		}
		q.next = (q.next + 1) % q.Len
		q.count = min(q.count+1, q.Len)
	}
}

// Keys returns a copy of the filled rows [Count,D] in storage order.
func (q *Queue) Keys() *tensor.Tensor {
	t := tensor.New(q.count, q.D)
	copy(t.Data, q.buf()[:q.count*q.D])
	return t
}

// Record names used by Records and Load.
const (
	queueKeysRecord  = "infonce.queue/keys"
	queueStateRecord = "infonce.queue/state"
)

// Records returns the queue's state for a checkpoint: the key rows [Len,D]
// and [count, next]. The tensor is shared, not copied.
func (q *Queue) Records() []tensor.Record {
	return []tensor.Record{
		{Name: queueKeysRecord, Tensor: &tensor.Tensor{Shape: []int{q.Len, q.D}, Data: q.buf()}},
		{Name: queueStateRecord, Ints: []int64{int64(q.count), int64(q.next)}},
	}
}

// Load restores a state written by Records (other records are ignored);
// file names the checkpoint in errors. The stored shape must match Len and D.
func (q *Queue) Load(recs []tensor.Record, file string) error {
	var keys *tensor.Tensor
	var st []int64
	for _, r := range recs {
		switch r.Name {
		case queueKeysRecord:
			keys = r.Tensor
		case queueStateRecord:
			st = r.Ints
		}
	}
	if keys == nil || st == nil {
		return errs.Input(file, "no InfoNCE queue state (%s, %s)", queueKeysRecord, queueStateRecord)
	}
	if len(keys.Shape) != 2 || keys.Shape[0] != q.Len || keys.Shape[1] != q.D {
		return errs.Input(file, "InfoNCE queue of shape %v, want [%d %d]", keys.Shape, q.Len, q.D)
	}
	if len(st) != 2 || st[0] < 0 || st[0] > int64(q.Len) || st[1] < 0 || (q.Len > 0 && st[1] >= int64(q.Len)) || (q.Len == 0 && st[1] != 0) {
		return errs.Input(file, "InfoNCE queue state %v invalid for length %d", st, q.Len)
	}
	copy(q.buf(), keys.Data)
	q.count, q.next = int(st[0]), int(st[1])
	return nil
}

// InfoNCE returns the InfoNCE loss (van den Oord et al. 2018) in MoCo's
// form (He et al. 2020) for query projections q and key projections k
// [N,D] of two views of the same N volumes (k is normally detached by the
// caller, the "momentum" branch), with negatives from the batch and the
// queue (may be nil or empty):
//
//	q̂_i, k̂_j = rows L2-normalised (x / max(‖x‖, 1e-12)); m = the queue's rows (already normalised)
//	logits_i = [ q̂_i·k̂_1 … q̂_i·k̂_N , q̂_i·m_1 … q̂_i·m_K ] / T
//	L        = mean over i of −log softmax(logits_i)_i
//
// so query i's positive is k̂_i and its negatives are the other N−1 keys of
// the batch and the K queued keys. Push this step's keys into the queue
// after computing the loss. Masks do not enter; a zero projection
// normalises to zero (logit 0). Mean reduction over the N queries.
func InfoNCE(tp *autodiff.Tape, q, k *autodiff.Var, queue *Queue, temperature float32) *autodiff.Var {
	tensor.MustRank("loss.InfoNCE", q.Value, 2)
	tensor.MustSameShape("loss.InfoNCE", q.Value, k.Value)
	if !(temperature > 0) {
		panic(fmt.Sprintf("loss.InfoNCE: temperature %v, want > 0", temperature))
	}
	n, d := q.Value.Shape[0], q.Value.Shape[1]
	uq := tp.L2Normalize(q, []int{1}, NormEps)
	uk := tp.L2Normalize(k, []int{1}, NormEps)
	logits := tp.MatMul(uq, tp.Transpose(uk)) // [N,N]
	if queue != nil && queue.Count() > 0 {
		if queue.D != d {
			panic(fmt.Sprintf("loss.InfoNCE: projections of dimension %d, queue of %d", d, queue.D))
		}
		var none *autodiff.Tape
		mt := none.Transpose(autodiff.Const(queue.Keys())) // [D,K]
		logits = tp.Concat(1, logits, tp.MatMul(uq, mt))
	}
	ls := tp.LogSoftmax(tp.Scale(logits, 1/temperature), 1)
	cols := ls.Value.Shape[1]
	pos := tensor.New(n, cols)
	for i := 0; i < n; i++ {
		pos.Data[i*cols+i] = 1
	}
	return tp.Scale(tp.Sum(tp.Mul(ls, autodiff.Const(pos)), nil), -1/float32(n))
}

// InfoNCEParts returns the InfoNCE baseline of docs/method.md (not in the
// reference's code; defined here), weighted as FESS:
//
//	Total = λ·Dice(probs, target) + (1−λ)·scale·InfoNCE(q, k, queue, T)
//
// with q the projections of the first augmented view (with gradient), k
// those of the second (detached by the caller) and probs the segmentation
// of the first view (Dice: the multi-channel batch Dice, see there).
// Parts.Con is the unweighted InfoNCE. The caller then
// pushes k into the queue.
func InfoNCEParts(tp *autodiff.Tape, probs, target, q, k *autodiff.Var, queue *Queue, opt FESSOptions) Parts {
	d := Dice(tp, probs, target, opt.Eps)
	c := InfoNCE(tp, q, k, queue, opt.Temperature)
	return Parts{Total: Combine(tp, d, c, opt.Lambda, opt.Scale), Dice: d, Con: c}
}

package tensor

import (
	"bytes"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fess-seg/fess/errs"
)

func TestReshapeAndIndex(t *testing.T) {
	x := FromSlice([]float32{0, 1, 2, 3, 4, 5}, 2, 3)
	if x.At(1, 2) != 5 {
		t.Errorf("At(1,2) = %v", x.At(1, 2))
	}
	y := x.Reshape(3, -1)
	if !SameShape(y.Shape, []int{3, 2}) || y.At(2, 0) != 4 {
		t.Errorf("Reshape: %v", y)
	}
	for _, f := range []func(){
		func() { x.Reshape(4, -1) },
		func() { x.At(2, 0) },
		func() { FromSlice([]float32{1}, 2) },
		func() { MustSameShape("op", x, y) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on a shape error")
				}
			}()
			f()
		}()
	}
}

func TestParallelChunksFixed(t *testing.T) {
	old := SetThreads(3)
	defer SetThreads(old)
	var got [3][2]int
	Parallel(30000, 1, func(w, lo, hi int) { got[w] = [2]int{lo, hi} })
	want := [3][2]int{{0, 10000}, {10000, 20000}, {20000, 30000}}
	if got != want {
		t.Errorf("chunks %v, want %v", got, want)
	}
	if Chunks(100, 0) != 1 {
		t.Errorf("small loops should not be split")
	}
}

func sampleRecords() []Record {
	return []Record{
		{Name: "param/w", Tensor: FromSlice([]float32{1.5, -2, 3e-8, 4}, 2, 1, 2)},
		{Name: "scalar", Tensor: Scalar(7)},
		{Name: "rng/x", Ints: []int64{-1, 1 << 40}},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, sampleRecords()); err != nil {
		t.Fatal(err)
	}
	recs, err := Decode("mem", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := sampleRecords()
	if len(recs) != len(want) {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		w := want[i]
		if r.Name != w.Name {
			t.Errorf("name %q, want %q", r.Name, w.Name)
		}
		if w.Tensor != nil {
			if !SameShape(r.Tensor.Shape, w.Tensor.Shape) {
				t.Errorf("%s shape %v", r.Name, r.Tensor.Shape)
			}
			for j := range w.Tensor.Data {
				if r.Tensor.Data[j] != w.Tensor.Data[j] {
					t.Errorf("%s[%d] = %v", r.Name, j, r.Tensor.Data[j])
				}
			}
		} else if len(r.Ints) != 2 || r.Ints[0] != -1 || r.Ints[1] != 1<<40 {
			t.Errorf("ints %v", r.Ints)
		}
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	var buf bytes.Buffer
	Encode(&buf, sampleRecords())
	good := buf.Bytes()
	cases := map[string][]byte{
		"truncated":  good[:len(good)-7],
		"bit flip":   append(append([]byte(nil), good[:20]...), append([]byte{good[20] ^ 1}, good[21:]...)...),
		"bad magic":  append([]byte("NOTFESS!"), good[8:]...),
		"empty":      nil,
		"only magic": []byte(Magic),
	}
	for name, data := range cases {
		_, err := Decode("f.state", data)
		var ie *errs.InputError
		if !errors.As(err, &ie) || ie.File != "f.state" {
			t.Errorf("%s: error %v, want an InputError naming the file", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	Encode(&buf, sampleRecords())
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		Decode("fuzz", data) // must not panic
	})
}

func TestSaveFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.state")
	if err := SaveFile(path, sampleRecords()); err != nil {
		t.Fatal(err)
	}
	if err := SaveFile(path, sampleRecords()[:1]); err != nil {
		t.Fatal(err)
	}
	recs, err := LoadFile(path)
	if err != nil || len(recs) != 1 {
		t.Fatalf("reload: %v, %d records", err, len(recs))
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := SaveFile(filepath.Join(dir, "x"), []Record{{Name: "bad"}}); err == nil {
		t.Error("record with neither tensor nor ints: no error")
	}
	if _, err := LoadFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestDecodeHugeShape(t *testing.T) {
	// 16 dims of 1000 elements each would overflow int64 if multiplied.
	var buf bytes.Buffer
	Encode(&buf, []Record{{Name: "x", Tensor: New(1000)}})
	data := buf.Bytes()
	// Rewrite the rank and dims in place: header = magic(8) count(4)
	// namelen(4) "x"(1) kind(1) ndim(4) dims...
	var hack bytes.Buffer
	hack.Write(data[:18])
	hack.Write([]byte{16, 0, 0, 0})
	for i := 0; i < 16; i++ {
		hack.Write([]byte{0xe8, 0x03, 0, 0, 0, 0, 0, 0})
	}
	hack.Write(make([]byte, 4000))
	body := hack.Bytes()
	crc := crc32IEEE(body)
	body = append(body, byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24))
	if _, err := Decode("huge", body); err == nil {
		t.Error("no error for an overflowing shape")
	}
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// TestParallelDynamic: every index of [0,n) is visited once, by ranges of
// chunk iterations (the last shorter) in increasing order per worker, with
// worker numbers below Threads(), dynamic and static.
func TestParallelDynamic(t *testing.T) {
	defer SetThreads(SetThreads(3))
	defer SetDynamic(SetDynamic(true))
	for _, dyn := range []bool{true, false} {
		SetDynamic(dyn)
		for _, c := range []struct{ n, chunk int }{{0, 4}, {1, 4}, {10, 3}, {1000, 7}, {64, 64}, {65, 64}, {5, 0}} {
			seen := make([]int32, c.n)
			last := make([]int, Threads())
			for i := range last {
				last[i] = -1
			}
			var mu sync.Mutex
			ParallelDynamic(c.n, c.chunk, func(w, lo, hi int) {
				mu.Lock()
				defer mu.Unlock()
				if w < 0 || w >= Threads() {
					t.Errorf("worker %d", w)
					return
				}
				ch := max(c.chunk, 1)
				if lo%ch != 0 || hi <= lo || (hi != c.n && (hi-lo)%ch != 0) || (dyn && hi-lo > ch) {
					t.Errorf("dynamic %v n %d chunk %d: range [%d,%d)", dyn, c.n, c.chunk, lo, hi)
				}
				if lo <= last[w] {
					t.Errorf("worker %d: range [%d,%d) after one ending at %d", w, lo, hi, last[w])
				}
				last[w] = hi - 1
				for i := lo; i < hi; i++ {
					seen[i]++
				}
			})
			for i, s := range seen {
				if s != 1 {
					t.Fatalf("dynamic %v n %d chunk %d: index %d visited %d times", dyn, c.n, c.chunk, i, s)
				}
			}
		}
	}
}

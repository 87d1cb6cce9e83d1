package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fess-seg/fess/internal/lock"
	"github.com/fess-seg/fess/volume"
)

func synthRaw(t *testing.T, n int) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "raw")
	if err := WriteSynth("brain", raw, n, 16, 3, 2, nil); err != nil {
		t.Fatal(err)
	}
	return raw
}

// noStaging fails the test if a staging folder of out is left.
func noStaging(t *testing.T, out string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(out)+".") {
			t.Errorf("%s left next to %s", e.Name(), out)
		}
	}
	ents, _ = os.ReadDir(out)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), insidePrefix) {
			t.Errorf("%s left in %s", e.Name(), out)
		}
	}
}

// checkSize fails the test unless out is a prepared data set of S³ cases
// whose files are all S³ and only its own case files are in cases/.
func checkSize(t *testing.T, out string, s int) {
	t.Helper()
	p, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != s {
		t.Fatalf("manifest size %d, want %d", p.Size(), s)
	}
	want := map[string]bool{}
	for _, c := range p.Manifest.Cases {
		want[filepath.Base(c.Image)], want[filepath.Base(c.Mask)] = true, true
		for _, f := range []string{c.Image, c.Mask} {
			v, err := volume.Read(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			if v.Dims[0] != s || v.Dims[1] != s || v.Dims[2] != s {
				t.Errorf("%s: dims %v under a manifest for %d³", f, v.Dims, s)
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(out, "cases"))
	for _, e := range ents {
		if !want[e.Name()] {
			t.Errorf("cases/%s is not in the manifest", e.Name())
		}
	}
}

// Re-preparing with other options replaces the data set whole: the new
// manifest over the new cases only, splits.json of the old fold count
// gone, other things kept in the folder moved over, nothing left beside.
func TestPrepareReplacesWhole(t *testing.T) {
	raw := synthRaw(t, 6)
	out := filepath.Join(t.TempDir(), "prep")
	if _, _, err := Prepare(raw, out, Options{Size: 12, Folds: 2}); err != nil {
		t.Fatal(err)
	}
	checkSize(t, out, 12)
	if !isFile(filepath.Join(out, SplitsName)) {
		t.Fatal("no splits.json with --folds 2")
	}
	os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644)
	os.MkdirAll(filepath.Join(out, "run1"), 0o755)
	os.WriteFile(filepath.Join(out, "run1", "x.txt"), []byte("run"), 0o644)
	// A case file the old preparation had and the new one has not.
	os.WriteFile(filepath.Join(out, "cases", "gone_image.nii.gz"), []byte("old"), 0o644)

	_, cached, err := Prepare(raw, out, Options{Size: 8})
	if err != nil || cached {
		t.Fatalf("re-prepare at 8³: cached %v, %v", cached, err)
	}
	checkSize(t, out, 8)
	noStaging(t, out)
	if isFile(filepath.Join(out, SplitsName)) {
		t.Error("splits.json of the old --folds 2 kept under a preparation without folds")
	}
	for f, want := range map[string]string{"notes.txt": "mine", filepath.Join("run1", "x.txt"): "run"} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(b) != want {
			t.Errorf("%s not moved into the new data set: %q, %v", f, b, err)
		}
	}
	if _, cached, err := Prepare(raw, out, Options{Size: 8}); err != nil || !cached {
		t.Errorf("third prepare: cached %v, %v; want up to date", cached, err)
	}
}

// A prepare that fails half way leaves the old data set byte for byte.
func TestPrepareFailureKeepsOld(t *testing.T) {
	raw := synthRaw(t, 4)
	out := filepath.Join(t.TempDir(), "prep")
	if _, _, err := Prepare(raw, out, Options{Size: 12}); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, out)
	// A broken label in the last case: the others are written first.
	ids, _ := os.ReadDir(raw)
	last := ids[len(ids)-1].Name()
	seg := filepath.Join(raw, last, last+"_seg.nii.gz")
	if err := os.WriteFile(seg, []byte("not a NIfTI file"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Prepare(raw, out, Options{Size: 8, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), seg) {
		t.Fatalf("prepare over a broken label: %v, want an error naming %s", err, seg)
	}
	after := readTree(t, out)
	if len(after) != len(before) {
		t.Errorf("%d files after the failed prepare, %d before", len(after), len(before))
	}
	for f, b := range before {
		if !bytes.Equal(after[f], b) {
			t.Errorf("%s changed by the failed prepare", f)
		}
	}
	noStaging(t, out)
	checkSize(t, out, 12)
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == lock.FileName {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return nil
	})
	return files
}

// Staging folders of dead runs go with the next prepare (even an up to
// date one), with a note; one whose lock is held, and names that only look
// alike, stay.
func TestPrepareRemovesStaleStaging(t *testing.T) {
	raw := synthRaw(t, 4)
	out := filepath.Join(t.TempDir(), "prep")
	if _, _, err := Prepare(raw, out, Options{Size: 8}); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Dir(out)
	stale := []string{filepath.Join(parent, "prep.tmp-999999"), filepath.Join(parent, "prep.old-999998"), filepath.Join(out, ".staging-999997")}
	for _, s := range stale {
		os.MkdirAll(filepath.Join(s, "cases"), 0o755)
		os.WriteFile(filepath.Join(s, "cases", "half_image.nii.gz"), []byte("half"), 0o644)
	}
	// A dead holder in a lock file: taken over, then removed.
	os.WriteFile(filepath.Join(stale[0], lock.FileName), []byte(`{"host":"elsewhere","pid":999999,"what":"prepare"}`), 0o644)
	live := filepath.Join(parent, "prep.tmp-"+strconv.Itoa(os.Getpid()+1))
	lk, err := lock.Acquire(live, "prepare")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	alike := []string{filepath.Join(parent, "prep.tmp-12x"), filepath.Join(parent, "prepx.tmp-12"), filepath.Join(out, ".staging-")}
	for _, a := range alike {
		os.MkdirAll(a, 0o755)
	}
	var log bytes.Buffer
	_, cached, err := Prepare(raw, out, Options{Size: 8, Progress: &log})
	if err != nil || !cached {
		t.Fatalf("prepare: cached %v, %v", cached, err)
	}
	for _, s := range stale {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("stale %s not removed", s)
		}
		if !strings.Contains(log.String(), s+": removed the stale staging folder of an interrupted prepare") {
			t.Errorf("no note of %s: %q", s, log.String())
		}
	}
	for _, k := range append(alike, live) {
		if _, err := os.Stat(k); err != nil {
			t.Errorf("%s removed: %v", k, err)
		}
	}
	checkSize(t, out, 8)
}

// The staging folder inside the output (for an unwritable parent or a
// mount point): the new manifest, cases and splits.json replace the old,
// the rest of the folder stays.
func TestStageCommitInside(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prep")
	os.MkdirAll(filepath.Join(out, "cases"), 0o755)
	for f, b := range map[string]string{ManifestName: "old", SplitsName: "old", "notes.txt": "mine", filepath.Join("cases", "a_image.nii.gz"): "old"} {
		os.WriteFile(filepath.Join(out, f), []byte(b), 0o644)
	}
	s := &stage{out: out, dir: filepath.Join(out, insidePrefix+strconv.Itoa(os.Getpid())), inside: true}
	lk, err := lock.Acquire(s.dir, "prepare")
	if err != nil {
		t.Fatal(err)
	}
	s.lk = lk
	os.MkdirAll(filepath.Join(s.dir, "cases"), 0o755)
	os.WriteFile(filepath.Join(s.dir, "cases", "b_image.nii.gz"), []byte("new"), 0o644)
	os.WriteFile(filepath.Join(s.dir, ManifestName), []byte("new"), 0o644)
	if err := s.commit(); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, out)
	want := map[string]string{ManifestName: "new", "notes.txt": "mine", filepath.Join("cases", "b_image.nii.gz"): "new"}
	if len(got) != len(want) {
		t.Errorf("files %v, want %v", keys(got), want)
	}
	for f, w := range want {
		if string(got[f]) != w {
			t.Errorf("%s: %q, want %q", f, got[f], w)
		}
	}
	noStaging(t, out)
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// niftiEdge reads the first dim of a gzipped NIfTI-1 file opened in root.
func niftiEdge(root *os.Root, name string) (int, error) {
	f, err := root.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	hdr := make([]byte, 348)
	if _, err := io.ReadFull(z, hdr); err != nil {
		return 0, err
	}
	return int(int16(binary.LittleEndian.Uint16(hdr[42:]))), nil
}

// While prepares at alternating sizes replace a data set, a reader holding
// the folder (os.Root: by the folder, not its name) never finds case files
// of one preparation under the manifest of another: it reads the folder
// it opened, or finds its files gone.
func TestPrepareReaderSeesOneVersion(t *testing.T) {
	raw := synthRaw(t, 4)
	out := filepath.Join(t.TempDir(), "prep")
	if _, _, err := Prepare(raw, out, Options{Size: 8}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var checked, mixed atomic.Int64
	var mixMsg atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			root, err := os.OpenRoot(out)
			if err != nil {
				continue // between the renames of a swap without exchange
			}
			b, err := root.ReadFile(ManifestName)
			var m Manifest
			if err != nil || json.Unmarshal(b, &m) != nil {
				root.Close()
				continue
			}
			// Give a writer time to change the folder under the reader.
			time.Sleep(15 * time.Millisecond)
			for _, c := range m.Cases {
				e, err := niftiEdge(root, c.Image)
				if err != nil {
					break // the old folder was removed
				}
				checked.Add(1)
				if e != m.Options.Size {
					mixed.Add(1)
					mixMsg.Store(c.Image + " is " + strconv.Itoa(e) + "³ under a manifest for " + strconv.Itoa(m.Options.Size) + "³")
				}
			}
			root.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		if _, _, err := Prepare(raw, out, Options{Size: 12 - 4*(i%2)}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if mixed.Load() > 0 {
		t.Errorf("%d of %d case files read were of another preparation, e.g. %v", mixed.Load(), checked.Load(), mixMsg.Load())
	}
	if checked.Load() == 0 {
		t.Error("the reader read no case file")
	}
	noStaging(t, out)
	checkSize(t, out, 8)
}

// Prepare resolves a symlinked output and replaces the folder it points
// to, keeping the link.
func TestPrepareThroughSymlink(t *testing.T) {
	raw := synthRaw(t, 4)
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	os.MkdirAll(real, 0o755)
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	for _, s := range []int{8, 12} {
		if _, _, err := Prepare(raw, link, Options{Size: s}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v", err)
	}
	checkSize(t, real, 12)
	noStaging(t, real)
}

// A new output's missing parents are made; a replaced output keeps its
// folder mode.
func TestPrepareParentsAndMode(t *testing.T) {
	raw := synthRaw(t, 4)
	out := filepath.Join(t.TempDir(), "a", "b", "prep")
	if _, _, err := Prepare(raw, out, Options{Size: 8}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Prepare(raw, out, Options{Size: 12}); err != nil {
		t.Fatal(err)
	}
	checkSize(t, out, 12)
	if st, err := os.Stat(out); runtime.GOOS != "windows" && (err != nil || st.Mode().Perm() != 0o750) {
		t.Errorf("mode after re-prepare: %v, %v; want 0750", st.Mode(), err)
	}
}

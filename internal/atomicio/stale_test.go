package atomicio

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".a.json.tmp-123":   true,
		".last.ckpt.tmp-9":  true,
		"a.json.tmp-123":    false,
		".a.json.tmp-":      false,
		".a.json.tmp-12x":   false,
		".tmp-123":          false,
		".fess.lock":        false,
		"manifest.json":     false,
		".a.json.tmp-1.bak": false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
}

// A real temporary file of Write matches IsTemp, and RemoveStale deletes
// only such files.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, ".x.json.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !IsTemp(filepath.Base(f.Name())) {
		t.Fatalf("IsTemp misses CreateTemp's name %q", f.Name())
	}
	keep := []string{"x.json", ".fess.lock", "notes.tmp-1"}
	for _, k := range keep {
		os.WriteFile(filepath.Join(dir, k), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, ".d.tmp-5"), 0o755)
	got, err := RemoveStale(dir)
	if err != nil || len(got) != 1 || got[0] != f.Name() {
		t.Fatalf("RemoveStale = %v, %v", got, err)
	}
	for _, k := range append(keep, ".d.tmp-5") {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s removed: %v", k, err)
		}
	}
	if got, err := RemoveStale(filepath.Join(dir, "missing")); err != nil || got != nil {
		t.Errorf("missing dir: %v, %v", got, err)
	}
}

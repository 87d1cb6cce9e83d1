package atomicio

import (
	"os"
	"path/filepath"
	"strings"
)

// tempInfix separates the destination's name from os.CreateTemp's random
// digits in Write's temporary files: ".<name>.tmp-<digits>".
const tempInfix = ".tmp-"

// IsTemp reports whether name (a base name) has the shape of Write's
// temporary files, ".<destination>.tmp-<digits>".
func IsTemp(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndex(name, tempInfix)
	if i < 2 { // need a non-empty destination name after the dot
		return false
	}
	digits := name[i+len(tempInfix):]
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RemoveStale deletes the temporary files that an interrupted Write left in
// dir (only regular files named like Write's temporaries, not in
// subfolders) and returns their paths. Call it only while no other process
// can be writing into dir, e.g. under a folder lock. A missing dir is not an
// error.
func RemoveStale(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !IsTemp(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

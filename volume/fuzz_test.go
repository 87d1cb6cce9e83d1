package volume

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// Fuzz targets: every parser, fed arbitrary bytes, returns either a volume
// whose data matches its dimensions or an *errs.InputError naming the input;
// it never panics. Seeds are the real-format files under testdata/nibabel
// (written by nibabel, numpy and by hand from the MetaIO spec) and the first
// kilobyte of real NIfTI headers (big-endian, NIfTI-2, with extensions).
//
//	go test ./volume -run XXX -fuzz FuzzNIfTI -fuzztime 2m

func addSeeds(f *testing.F, patterns ...string) {
	for _, pat := range patterns {
		files, _ := filepath.Glob(pat)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil || len(b) > 64<<10 {
				continue
			}
			f.Add(b)
		}
	}
}

func checkFuzzResult(t *testing.T, v *Volume, err error) {
	if err != nil {
		var ie *errs.InputError
		if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "fuzz: ") {
			t.Fatalf("error is not an input error naming the input: %T %v", err, err)
		}
		return
	}
	n := v.Dims[0] * v.Dims[1] * v.Dims[2] * v.Dims[3]
	if n <= 0 || len(v.Data) != n {
		t.Fatalf("dims %v but %d values", v.Dims, len(v.Data))
	}
	_ = v.Stats()
}

// fuzzLimit keeps each fuzz input from allocating much.
func fuzzLimit(f *testing.F) {
	saved := MaxDataBytes
	MaxDataBytes = 16 << 20
	f.Cleanup(func() { MaxDataBytes = saved })
}

func FuzzNIfTI(f *testing.F) {
	fuzzLimit(f)
	addSeeds(f, "testdata/nibabel/*.nii", "testdata/nibabel/*.nii.gz", "testdata/fuzz-seeds/*.nii")
	for _, p := range []string{
		"/usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii",
		"/usr/lib/python3/dist-packages/nibabel/tests/data/nifti2.hdr",
		"/usr/lib/python3/dist-packages/nibabel/tests/data/row_major.dconn.nii",
	} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b[:min(len(b), 2048)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeNIfTI("fuzz", bytes.NewReader(b))
		checkFuzzResult(t, v, err)
	})
}

func FuzzMetaImage(f *testing.F) {
	fuzzLimit(f)
	addSeeds(f, "testdata/nibabel/*.mha")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeMetaImage("fuzz", bytes.NewReader(b))
		checkFuzzResult(t, v, err)
	})
}

func FuzzNPY(f *testing.F) {
	fuzzLimit(f)
	addSeeds(f, "testdata/nibabel/*.npy")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeNPY("fuzz", bytes.NewReader(b))
		checkFuzzResult(t, v, err)
	})
}

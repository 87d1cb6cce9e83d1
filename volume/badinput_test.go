package volume

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// goodNIfTI returns the bytes of a valid uncompressed 4×3×2 int16 NIfTI-1.
func goodNIfTI(t *testing.T) []byte {
	t.Helper()
	v := testVolume(dtype{"int16", 2, 'i'}, [4]int{4, 3, 2, 1})
	var b bytes.Buffer
	if err := EncodeNIfTI(&b, v, "int16"); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t *testing.T, parts ...[]byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return b.Bytes()
}

func patched(b []byte, off int, val []byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:], val)
	return c
}

// npyBytes returns a version 1.0 .npy preamble and header for dict.
func npyBytes(dict string) []byte {
	h := dict + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), le16(int16(len(h)))...)
	return append(b, h...)
}

func le16(x int16) []byte {
	b := make([]byte, 2)
	binary.LittleEndian.PutUint16(b, uint16(x))
	return b
}
func le32(x int32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(x))
	return b
}

// Every malformed file gives an *errs.InputError that names the file and
// says what is wrong with it; none panics.
func TestBadInputGivesInputError(t *testing.T) {
	dir := t.TempDir()
	good := goodNIfTI(t)
	goodNPY, err := os.ReadFile("testdata/nibabel/float32_C_le_v1.npy")
	if err != nil {
		t.Fatal(err)
	}
	goodMHA, err := os.ReadFile("testdata/nibabel/meta_int16_le.mha")
	if err != nil {
		t.Fatal(err)
	}
	mhaHeaderEnd := bytes.Index(goodMHA, []byte("LOCAL\n")) + 6
	zeros := make([]byte, 8<<20)
	// A header promising 512³ uint8 voxels (128 MiB), followed by 8 MiB of
	// zeros: the .gz is ~8 KiB.
	bombHdr := patched(patched(patched(patched(good, 42, le16(512)), 44, le16(512)), 46, le16(512)), 70, le16(2))

	cases := []struct {
		name, file string
		data       []byte
		fault      string // part of the message
	}{
		{"empty", "empty.nii", nil, "too short"},
		{"truncated header", "trunc.nii", good[:200], "truncated"},
		{"truncated data", "short.nii", good[:len(good)-5], "file has"},
		{"truncated gzip data", "short.nii.gz", gz(t, good)[:len(gz(t, good))/2], "truncated"},
		{"gzip trailer missing", "trailer.nii.gz", gz(t, good)[:len(gz(t, good))-4], "truncated"},
		{"gzip checksum wrong", "crc.nii.gz", patched(gz(t, good), len(gz(t, good))-8, []byte{1, 2, 3, 4}), "gzip"},
		{"wrong magic", "magic.nii", patched(good, 344, []byte("xyz\x00")), "wrong magic"},
		{"not nifti at all", "text.nii", []byte(strings.Repeat("hello world\n", 50)), "sizeof_hdr"},
		{"pair magic in .nii", "pair.nii", patched(good, 344, []byte("ni1\x00")), "separate .img"},
		{"dim[0] zero", "dim0.nii", patched(good, 40, le16(0)), "dim[0]"},
		{"negative dim", "negdim.nii", patched(good, 44, le16(-3)), "dim[2]"},
		{"absurd dims", "huge.nii", patched(patched(patched(good, 42, le16(32767)), 44, le16(32767)), 46, le16(32767)), "absurd dimensions"},
		{"dims over the limit", "big.nii", patched(patched(patched(good, 42, le16(32767)), 44, le16(32767)), 46, le16(1)), "over the limit"},
		{"overflowing dims", "overflow.nii", patched(patched(patched(patched(patched(good, 40, le16(4)), 42, le16(32767)), 44, le16(32767)), 46, le16(32767)), 48, le16(32767)), "absurd"},
		{"5-D", "fived.nii", patched(patched(good, 40, le16(5)), 50, le16(3)), "5-D"},
		{"unsupported datatype", "rgb.nii", patched(good, 70, le16(128)), "RGB24"},
		{"unknown datatype", "dt.nii", patched(good, 70, le16(999)), "datatype code 999"},
		{"vox_offset past end", "off.nii", patched(good, 108, le32(0x4b000000)), "vox_offset"},
		{"header promises more data", "more.nii", patched(good, 46, le16(200)), "file has"},
		{"gzip bomb", "bomb.nii.gz", gz(t, bombHdr, zeros), "more than this compressed file can hold"},
		{"corrupt gzip", "corrupt.nii.gz", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{7}, 400)...), "gzip"},
		{"npy wrong magic", "m.npy", patched(goodNPY, 0, []byte("XNUMPY")), "wrong magic"},
		{"npy truncated", "t.npy", goodNPY[:len(goodNPY)-3], "file has"},
		{"npy bad header", "h.npy", patched(goodNPY, 10, []byte("{'descr': 5")), "bad .npy header"},
		{"npy absurd shape", "s.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"), "absurd"},
		{"npy complex", "c.npy", npyBytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"), "unsupported .npy dtype"},
		{"npy overflowing shape", "o.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000, 100000), }"), "absurd"},
		{"npy 5-D", "5.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2, 2, 2), }"), "axes"},
		{"npy version", "v.npy", patched(goodNPY, 6, []byte{9}), "version"},
		{"mha truncated data", "t.mha", goodMHA[:len(goodMHA)-7], "file has"},
		{"mha no ElementDataFile", "e.mha", goodMHA[:mhaHeaderEnd-30], "ElementDataFile"},
		{"mha absurd dims", "d.mha", []byte("ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 100000\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n"), "absurd"},
		{"mha wrong ndims", "n.mha", []byte("ObjectType = Image\nNDims = 3\nDimSize = 4 4\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n"), "DimSize"},
		{"mha bad type", "y.mha", []byte("ObjectType = Image\nNDims = 1\nDimSize = 4\nElementType = MET_STRING\nElementDataFile = LOCAL\nabcd"), "ElementType"},
		{"mha not metaimage", "x.mha", []byte("\x00\x01binary junk = 3\n"), "MetaImage"},
		{"mha corrupt zlib", "z.mha", []byte("ObjectType = Image\nNDims = 1\nDimSize = 4\nElementType = MET_UCHAR\nCompressedData = True\nElementDataFile = LOCAL\nnot zlib"), "zlib"},
		{"mha zlib bomb", "zb.mha", append([]byte("ObjectType = Image\nNDims = 3\nDimSize = 400 400 400\nElementType = MET_UCHAR\nCompressedData = True\nElementDataFile = LOCAL\n"), 0x78, 0x9c, 3, 0), "more than this compressed file can hold"},
		{"mhd missing raw", "r.mhd", []byte("ObjectType = Image\nNDims = 1\nDimSize = 4\nElementType = MET_UCHAR\nElementDataFile = nothere.raw\n"), "nothere.raw"},
		{"unknown extension", "x.png", []byte("x"), "unknown volume format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := Read(path)
			var ie *errs.InputError
			if err == nil || !errors.As(err, &ie) {
				t.Fatalf("Read(%s) = %v, %v; want an *errs.InputError", c.file, v, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.fault) {
				t.Errorf("message %q should name %s and contain %q", err, path, c.fault)
			}
			if errs.ExitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", errs.ExitCode(err))
			}
		})
	}
}

// A compressed stream is never inflated beyond what the header promises, and
// a header over MaxDataBytes is refused before anything is read.
func TestGzipBombCappedByLimit(t *testing.T) {
	good := goodNIfTI(t)
	// 256³ uint8 = 16 MiB promised, and really there (zeros compress ~1000:1).
	hdr := patched(patched(patched(patched(good, 42, le16(256)), 44, le16(256)), 46, le16(256)), 70, le16(2))
	bomb := gz(t, hdr[:352], make([]byte, 16<<20), make([]byte, 64<<20)) // 64 MiB of trailing garbage
	saved := MaxDataBytes
	defer func() { MaxDataBytes = saved }()
	MaxDataBytes = 8 << 20
	_, err := DecodeNIfTI("bomb.nii.gz", bytes.NewReader(bomb))
	if err == nil || !strings.Contains(err.Error(), "over the limit") || errs.ExitCode(err) != 2 {
		t.Fatalf("with an 8 MiB limit: %v", err)
	}
	MaxDataBytes = 80 << 20
	v, err := DecodeNIfTI("bomb.nii.gz", bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Data) != 256*256*256 {
		t.Fatalf("read %d voxels", len(v.Data))
	}
}

func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "none.nii.gz"), filepath.Join(dir, "none.npy"), filepath.Join(dir, "none.mha"), filepath.Join(dir, "none.hdr")} {
		_, err := Read(p)
		wantInputError(t, p, err)
	}
	hdr := filepath.Join(dir, "lonely.hdr")
	b := goodNIfTI(t)
	copy(b[344:], "ni1\x00")
	os.WriteFile(hdr, b[:348], 0o644)
	_, err := Read(hdr)
	if err == nil || !strings.Contains(err.Error(), "lonely.img") {
		t.Errorf("pair without .img: %v", err)
	}
	_, err = Read(dir + "/")
	if err == nil {
		t.Errorf("reading a directory did not fail")
	}
}

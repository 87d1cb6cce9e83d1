package volume

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// MaxDataBytes caps the voxel data a reader accepts, both as raw bytes on
// disk (after decompression) and as float32 values in memory. A header that
// promises more is rejected before anything is allocated, and a compressed
// stream is never inflated past what its header promises, so a gzip bomb
// costs at most this much. Tests and callers with big machines may change it.
var MaxDataBytes int64 = 2 << 30

// maxDeflateRatio bounds how many bytes one compressed byte of a deflate
// stream (gzip, zlib) can inflate to: deflate's longest match, 258 bytes, costs
// at least 2 bits, so the ratio is below 1032. Used to reject headers that
// promise more data than a compressed file could possibly hold.
const maxDeflateRatio = 1032

// maxVoxels bounds voxel counts while a header is parsed, so products cannot
// overflow; the real limit is MaxDataBytes, checked before allocating.
const maxVoxels = 1 << 40

// Read reads the volume in path. The format follows the file name:
// .nii and .nii.gz (NIfTI-1 or NIfTI-2, told apart by the header), .hdr or
// .img (NIfTI pair; the other file of the pair is found beside it; either
// may be gzipped, .hdr.gz/.img.gz), .mha and .mhd (MetaImage) and .npy.
// 4-D files return every volume (Dims[3] = number of volumes).
// Every fault of the file is an *errs.InputError naming path.
func Read(path string) (*Volume, error) {
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".nii"), strings.HasSuffix(lower, ".nii.gz"):
		return readNIfTIFile(path)
	case strings.HasSuffix(lower, ".hdr"), strings.HasSuffix(lower, ".hdr.gz"),
		strings.HasSuffix(lower, ".img"), strings.HasSuffix(lower, ".img.gz"):
		return readNIfTIPair(path)
	case strings.HasSuffix(lower, ".mha"), strings.HasSuffix(lower, ".mhd"):
		return readMetaImageFile(path)
	case strings.HasSuffix(lower, ".npy"):
		return readNPYFile(path)
	}
	return nil, errs.Input(path, "unknown volume format (want .nii, .nii.gz, .hdr/.img, .mha, .mhd or .npy)")
}

// stream is a reader of a file's bytes that knows an upper bound on what is
// left in it, so headers can be checked against the data before allocating.
type stream struct {
	name  string
	r     io.Reader
	bound int64 // upper bound on the bytes r can yield from the start; -1 unknown
	exact bool  // bound is the exact size (an uncompressed file)
	pos   int64 // bytes consumed so far
	gz    bool  // r inflates a gzip stream
}

// openStream opens path, inflating it when it starts with the gzip magic.
// The caller closes the returned closer.
func openStream(path string) (*stream, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, inputOpenError(path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, errs.WrapInput(path, err, "cannot stat")
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, errs.Input(path, "is a directory, not a volume file")
	}
	s, err := newStream(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return s, f, nil
}

func inputOpenError(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errs.Input(path, "no such file")
	}
	return errs.WrapInput(path, err, "cannot open")
}

// newStream wraps r (size bytes long, or -1 if unknown), inflating gzip.
func newStream(name string, r io.Reader, size int64) (*stream, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errs.WrapInput(name, err, "bad gzip header")
		}
		bound := int64(-1)
		if size >= 0 {
			bound = size*maxDeflateRatio + 1<<16
		}
		return &stream{name: name, r: zr, bound: bound, gz: true}, nil
	}
	return &stream{name: name, r: br, bound: size, exact: size >= 0}, nil
}

// left is the most bytes the stream may still yield, or -1 if unknown.
func (s *stream) left() int64 {
	if s.bound < 0 {
		return -1
	}
	return s.bound - s.pos
}

// readFull fills buf; what describes the part being read for the message.
func (s *stream) readFull(buf []byte, what string) error {
	n, err := io.ReadFull(s.r, buf)
	s.pos += int64(n)
	if err != nil {
		return s.readError(err, what, n, len(buf))
	}
	return nil
}

func (s *stream) readError(err error, what string, got, want int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errs.Input(s.name, "file ends after %d of %d bytes of %s (truncated)", got, want, what)
	}
	if s.gz {
		return errs.WrapInput(s.name, err, "corrupt gzip data in %s", what)
	}
	return errs.WrapInput(s.name, err, "read error in %s", what)
}

// skip discards n bytes.
func (s *stream) skip(n int64, what string) error {
	if n <= 0 {
		return nil
	}
	if l := s.left(); l >= 0 && n > l && s.exact {
		return errs.Input(s.name, "%s runs past the end of the file", what)
	}
	got, err := io.CopyN(io.Discard, s.r, n)
	s.pos += got
	if err != nil {
		return s.readError(err, what, int(got), int(n))
	}
	return nil
}

// checkVoxels validates a voxel count and sample size against MaxDataBytes
// and against what the stream can still hold, before anything is allocated.
func (s *stream) checkVoxels(nvox int64, d dtype) error {
	need := nvox * int64(d.size)
	if nvox <= 0 || need/int64(d.size) != nvox {
		return errs.Input(s.name, "absurd voxel count %d", nvox)
	}
	mem := nvox * 4
	if need > MaxDataBytes || mem > MaxDataBytes {
		return errs.Input(s.name, "header promises %d voxels (%s of data), over the limit of %s", nvox, human(max(need, mem)), human(MaxDataBytes))
	}
	if l := s.left(); l >= 0 && need > l {
		if s.exact {
			return errs.Input(s.name, "header promises %d bytes of voxel data, file has %d", need, l)
		}
		return errs.Input(s.name, "header promises %d bytes of voxel data, more than this compressed file can hold", need)
	}
	return nil
}

// readSamples reads nvox samples of type d and returns them as float32,
// scaled by v*slope+inter when scale is set. The output is allocated at once
// when the stream has a size bound (checkVoxels has then checked the promise
// against it; a large allocation is untouched, hence not resident, until
// data arrive), and grown as data arrive when the size is unknown, so a
// lying header cannot make it allocate much more than the data really there.
func (s *stream) readSamples(nvox int64, d dtype, bo binary.ByteOrder, scale bool, slope, inter float64) ([]float32, error) {
	if err := s.checkVoxels(nvox, d); err != nil {
		return nil, err
	}
	const chunk = 1 << 18 // samples per read
	var out []float32
	prealloc := s.bound >= 0
	if prealloc {
		out = make([]float32, nvox)
	} else {
		out = make([]float32, 0, min(nvox, chunk))
	}
	buf := make([]byte, min(nvox, chunk)*int64(d.size))
	var done int64
	for done < nvox {
		n := min(nvox-done, chunk)
		b := buf[:n*int64(d.size)]
		got, err := io.ReadFull(s.r, b)
		s.pos += int64(got)
		if err != nil {
			return nil, s.readError(err, "voxel data", int(done)*d.size+got, int(nvox)*d.size)
		}
		if prealloc {
			decodeSamples(out[done:done+n], b, d, bo, scale, slope, inter)
		} else {
			l := len(out)
			out = append(out, make([]float32, n)...)
			decodeSamples(out[l:l+int(n)], b, d, bo, scale, slope, inter)
		}
		done += n
	}
	return out, nil
}

// finish checks the end of a compressed stream after the voxel data: the
// gzip (or zlib) checksum trailer is verified when the stream ends
// within 1 MiB of the data (trailing bytes beyond that are ignored, as they
// are by nibabel, so a bomb of trailing data cannot make it work long).
func (s *stream) finish() error {
	if !s.gz {
		return nil
	}
	_, err := io.CopyN(io.Discard, s.r, 1<<20)
	if err != nil && err != io.EOF {
		if err == io.ErrUnexpectedEOF {
			return errs.Input(s.name, "compressed stream ends early after the voxel data (truncated file)")
		}
		return errs.WrapInput(s.name, err, "corrupt compressed data")
	}
	return nil
}

// human formats a byte count.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// sizedReader returns the length of r when it is an in-memory reader.
func sizedReader(r io.Reader) int64 {
	switch b := r.(type) {
	case *bytes.Reader:
		return int64(b.Len())
	case *bytes.Buffer:
		return int64(b.Len())
	case *strings.Reader:
		return int64(b.Len())
	}
	return -1
}

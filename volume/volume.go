// Package volume reads and writes medical image volumes: NIfTI-1 and NIfTI-2
// (.nii, .nii.gz, .hdr/.img), MetaImage (.mha, .mhd + raw/zlib) and NumPy .npy.
//
// A Volume holds voxel values as float32 after intensity scaling, in NIfTI
// voxel order (x fastest, then y, then z, then t), with the voxel-to-world
// affine computed by nibabel's rules (sform, else qform, else pixdim).
//
// Conventions, per format (details in nifti.go, metaimage.go, npy.go):
//   - NIfTI: scl_slope 0 (or non-finite) means no scaling, as in nibabel;
//     Spacing is |pixdim[1..3]|.
//   - MetaImage: ITK's LPS geometry is converted to NIfTI's RAS by negating
//     the x and y rows of the affine.
//   - NPY: arr[i,j,k(,t)] is voxel (x=i, y=j, z=k(, t)), nibabel's
//     get_fdata() indexing; a trailing singleton axis is dropped; identity
//     affine, spacing 1.
//
// Datatype names are numpy's ("uint8", "int16", "float32", …). Readers check
// every header field against the size of the file and MaxDataBytes before
// allocating, never panic on malformed input, and return *errs.InputError
// values naming the file and the fault. The writer (WriteNIfTI) writes
// NIfTI-1 atomically (temporary file + rename).
package volume

import (
	"fmt"
	"math"
)

// Volume is a 3-D or 4-D image.
type Volume struct {
	// Dims are the sizes along x, y, z, t (t = 1 for 3-D images).
	Dims [4]int
	// Data holds Dims[0]*Dims[1]*Dims[2]*Dims[3] scaled voxel values;
	// voxel (x,y,z,t) is at x + Dims[0]*(y + Dims[1]*(z + Dims[2]*t)).
	Data []float32
	// Spacing is the voxel size in millimetres along x, y, z.
	Spacing [3]float64
	// Affine maps voxel indices (i,j,k,1) to world coordinates (mm, RAS+ as
	// in NIfTI); rows of a 4×4 matrix.
	Affine [4][4]float64
	// Datatype is the on-disk datatype name: "uint8", "int16", "float32", ….
	Datatype string
	// Format is the file format: "nifti1", "nifti2", "metaimage" or "npy".
	Format string
	// Source says how the file stored the volume; filled by the readers
	// (for reports such as `fess inspect`), ignored by the writer.
	Source Source
}

// Source describes the on-disk storage of a volume that was read.
type Source struct {
	ByteOrder   string  // "little", "big", or "" for one-byte samples
	Slope       float64 // intensity scaling applied: value = raw*Slope + Inter
	Inter       float64
	AffineRule  string // "sform", "qform", "pixdim" (NIfTI), "header" (MetaImage), "identity" (npy)
	SformCode   int    // NIfTI sform_code and qform_code
	QformCode   int
	Extensions  int    // number of NIfTI header extensions
	Description string // NIfTI descrip
}

// NumVoxels returns the number of voxels in one 3-D volume (x*y*z).
func (v *Volume) NumVoxels() int { return v.Dims[0] * v.Dims[1] * v.Dims[2] }

// Index returns the position of voxel (x,y,z) of the first 3-D volume in Data.
func (v *Volume) Index(x, y, z int) int { return x + v.Dims[0]*(y+v.Dims[1]*z) }

// Volume3D returns volume t (0-based) of a 4-D image as a 3-D Volume sharing
// nothing with v. For a 3-D image, t must be 0.
func (v *Volume) Volume3D(t int) (*Volume, error) {
	if t < 0 || t >= v.Dims[3] {
		return nil, fmt.Errorf("volume %d out of range: the image has %d", t, v.Dims[3])
	}
	n := v.NumVoxels()
	if len(v.Data) < n*(t+1) {
		return nil, fmt.Errorf("volume has %d values, want %d", len(v.Data), n*v.Dims[3])
	}
	out := *v
	out.Dims[3] = 1
	out.Data = append([]float32(nil), v.Data[n*t:n*(t+1)]...)
	return &out, nil
}

// Stats summarises voxel values.
type Stats struct {
	Min, Max, Mean, Sum float64
	N                   int // finite values counted
	NaN                 int // NaN values, left out of the other fields
	Inf                 int // infinite values, left out of the other fields
}

// Stats returns min, max, mean and sum of all voxels of all volumes, with
// float64 accumulation. NaN and ±Inf values are counted apart and left out
// (the JSON of `fess inspect` cannot carry them); with no finite value, the
// other fields are NaN.
func (v *Volume) Stats() Stats {
	s := Stats{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, x := range v.Data {
		f := float64(x)
		switch {
		case math.IsNaN(f):
			s.NaN++
			continue
		case math.IsInf(f, 0):
			s.Inf++
			continue
		}
		s.N++
		s.Sum += f
		if f < s.Min {
			s.Min = f
		}
		if f > s.Max {
			s.Max = f
		}
	}
	if s.N == 0 {
		s.Min, s.Max, s.Mean, s.Sum = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return s
	}
	s.Mean = s.Sum / float64(s.N)
	return s
}

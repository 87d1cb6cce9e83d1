// Package volume reads and writes medical image volumes: NIfTI-1 and NIfTI-2
// (.nii, .nii.gz, .hdr/.img), MetaImage (.mha, .mhd + raw/zlib) and NumPy .npy.
//
// A Volume holds voxel values as float32 after intensity scaling, in NIfTI
// voxel order (x fastest, then y, then z, then t), with the voxel-to-world
// affine computed by nibabel's rules (sform, else qform, else pixdim).
package volume

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
}

// NumVoxels returns the number of voxels in one 3-D volume (x*y*z).
func (v *Volume) NumVoxels() int { return v.Dims[0] * v.Dims[1] * v.Dims[2] }

// Index returns the position of voxel (x,y,z) of the first 3-D volume in Data.
func (v *Volume) Index(x, y, z int) int { return x + v.Dims[0]*(y+v.Dims[1]*z) }

package dataset

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fess-seg/fess/volume"
)

// On real files (Debian's mricron-data: the Colin27 skull-stripped brain and
// the AAL atlas on the same 181×217×181 grid, laid out as one BraTS 2017
// case), Prepare and then RestoreMask of the prepared mask gives the native
// label back (Dice > 0.9 at S = 128, near the crop size), on the native
// grid and affine, after a write and read of the restored NIfTI.
func TestRealColin27RoundTrip(t *testing.T) {
	const dir = "/usr/share/mricron/templates"
	img, lab := filepath.Join(dir, "ch2bet.nii.gz"), filepath.Join(dir, "aal.nii.gz")
	if _, err := os.Stat(img); err != nil {
		t.Skip("mricron-data not installed")
	}
	if testing.Short() {
		t.Skip("reads 181×217×181 volumes")
	}
	in, out := t.TempDir(), t.TempDir()
	cd := filepath.Join(in, "colin27")
	os.MkdirAll(cd, 0o755)
	os.Symlink(img, filepath.Join(cd, "colin27_flair.nii.gz"))
	os.Symlink(lab, filepath.Join(cd, "colin27_seg.nii.gz"))
	m, _, err := Prepare(in, out, Options{Size: 128, Convention: ConvBinary, Split: [3]float64{1, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cases[0]
	_, mask, err := p.Load(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(out, "restored.nii.gz")
	if err := volume.WriteNIfTI(restored, RestoreMask(mask, c.Geometry), "uint8"); err != nil {
		t.Fatal(err)
	}
	back, err := volume.Read(restored)
	if err != nil {
		t.Fatal(err)
	}
	native, err := volume.Read(lab)
	if err != nil {
		t.Fatal(err)
	}
	if back.Dims != native.Dims || back.Affine != native.Affine {
		t.Fatalf("restored grid %v %v, native %v %v", back.Dims, back.Affine, native.Dims, native.Affine)
	}
	a, b := make([]uint8, len(native.Data)), make([]uint8, len(native.Data))
	for i := range a {
		if native.Data[i] > 0 {
			a[i] = 1
		}
		b[i] = uint8(back.Data[i])
	}
	d := dice(a, b)
	t.Logf("crop %v..%v → 128³: Dice(restore(prepare(AAL)), AAL) = %.4f", c.Geometry.CropLo, c.Geometry.CropHi, d)
	if d < 0.9 {
		t.Errorf("round-trip Dice %.4f < 0.9", d)
	}
}

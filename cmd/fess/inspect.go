package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

const inspectUsage = `usage: fess inspect FILE [--json]

Prints the header (format, dimensions, voxel spacing, datatype, byte order,
intensity scaling, voxel-to-world affine and which header field gave it) and
voxel statistics (min, max, mean, sum over all voxels of all volumes, after
scl_slope/scl_inter scaling, accumulated in float64) of a volume file:
.nii, .nii.gz, .hdr/.img, .mha, .mhd or .npy. NaN and infinite voxels are
counted apart and left out of the statistics. The affine is in RAS+ world
millimetres (MetaImage's LPS is converted); .npy files get the identity.

example:
  fess inspect /usr/share/mricron/templates/ch2.nii.gz --json`

func init() {
	register("inspect", "header and voxel statistics of a volume file",
		func(args []string) error { return runInspect(args, os.Stdout) })
}

// inspectJSON is the --json output.
type inspectJSON struct {
	File        string        `json:"file"`
	Format      string        `json:"format"`
	Dims        []int         `json:"dims"`
	Spacing     [3]float64    `json:"spacing"`
	Datatype    string        `json:"datatype"`
	ByteOrder   string        `json:"byte_order,omitempty"`
	SclSlope    float64       `json:"scl_slope"`
	SclInter    float64       `json:"scl_inter"`
	AffineRule  string        `json:"affine_from"`
	Affine      [4][4]float64 `json:"affine"`
	SformCode   *int          `json:"sform_code,omitempty"`
	QformCode   *int          `json:"qform_code,omitempty"`
	Extensions  int           `json:"extensions,omitempty"`
	Description string        `json:"description,omitempty"`
	Stats       inspectStats  `json:"stats"`
}

type inspectStats struct {
	Min    *float64 `json:"min"` // null when no voxel is finite
	Max    *float64 `json:"max"`
	Mean   *float64 `json:"mean"`
	Sum    *float64 `json:"sum"`
	Voxels int      `json:"voxels"`
	NaN    int      `json:"nan"`
	Inf    int      `json:"inf"`
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func runInspect(args []string, stdout io.Writer) error {
	fs := newFlags("inspect", inspectUsage)
	asJSON := fs.Bool("json", false, "print the header and statistics as JSON")
	// Flags may come before or after FILE.
	var files []string
	rest := args
	for {
		if err := parseFlags(fs, inspectUsage, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		return errs.Usage("inspect: need exactly one FILE\n%s", inspectUsage)
	}
	path := files[0]
	v, err := volume.Read(path)
	if err != nil {
		return err
	}
	st := v.Stats()
	out := inspectJSON{
		File: path, Format: v.Format, Dims: v.Dims[:3], Spacing: v.Spacing,
		Datatype: v.Datatype, ByteOrder: v.Source.ByteOrder,
		SclSlope: v.Source.Slope, SclInter: v.Source.Inter,
		AffineRule: v.Source.AffineRule, Affine: v.Affine,
		Extensions: v.Source.Extensions, Description: v.Source.Description,
		Stats: inspectStats{
			Min: finite(st.Min), Max: finite(st.Max), Mean: finite(st.Mean), Sum: finite(st.Sum),
			Voxels: len(v.Data), NaN: st.NaN, Inf: st.Inf,
		},
	}
	if v.Dims[3] > 1 {
		out.Dims = v.Dims[:]
	}
	if strings.HasPrefix(v.Format, "nifti") {
		sc, qc := v.Source.SformCode, v.Source.QformCode
		out.SformCode, out.QformCode = &sc, &qc
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }
	w("file        %s\n", path)
	w("format      %s\n", v.Format)
	w("dims        %s\n", strings.Trim(fmt.Sprint(out.Dims), "[]"))
	w("spacing     %g %g %g mm\n", v.Spacing[0], v.Spacing[1], v.Spacing[2])
	w("datatype    %s", v.Datatype)
	if v.Source.ByteOrder != "" {
		w(" (%s-endian)", v.Source.ByteOrder)
	}
	w("\n")
	if v.Source.Slope != 1 || v.Source.Inter != 0 {
		w("scaling     value = raw * %g + %g\n", v.Source.Slope, v.Source.Inter)
	}
	if out.SformCode != nil {
		w("xform codes sform %d, qform %d\n", *out.SformCode, *out.QformCode)
	}
	if v.Source.Extensions > 0 {
		w("extensions  %d\n", v.Source.Extensions)
	}
	if v.Source.Description != "" {
		w("description %q\n", v.Source.Description)
	}
	w("affine      (from %s, voxel -> RAS mm)\n", v.Source.AffineRule)
	for _, r := range v.Affine {
		w("            %12.6g %12.6g %12.6g %12.6g\n", r[0], r[1], r[2], r[3])
	}
	w("voxels      %d", len(v.Data))
	if st.NaN > 0 || st.Inf > 0 {
		w(" (%d NaN, %d Inf left out of the statistics)", st.NaN, st.Inf)
	}
	w("\n")
	w("min         %.10g\nmax         %.10g\nmean        %.10g\nsum         %.10g\n", st.Min, st.Max, st.Mean, st.Sum)
	return nil
}

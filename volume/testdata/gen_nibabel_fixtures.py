#!/usr/bin/python3
"""Reference values from nibabel for the volume package's conformance tests.

Run from the repository root with Debian's python3 (python3-nibabel,
mricron-data installed); not run in CI, its outputs are committed:

    /usr/bin/python3 volume/testdata/gen_nibabel_fixtures.py

It does three things.

1. Real files: for every NIfTI file shipped by Debian's mricron-data
   (/usr/share/mricron/templates) and python3-nibabel (its tests/data), it
   records what nibabel reads: class, shape, zooms, affine (img.affine),
   datatype, scl_slope/scl_inter, xform codes, and min/max/mean/sum of
   get_fdata() in float64 (NaN-ignoring, with the NaN count), plus a few
   voxels at fixed positions. Files nibabel cannot load, or whose data file is
   missing, are recorded with the error so the Go test can expect a failure.
   -> volume/testdata/nibabel_fixtures.json

2. Files written by nibabel (small, committed under volume/testdata/nibabel/):
   every integer and float datatype, both byte orders, scaled, NIfTI-2,
   .hdr/.img pairs, gzipped, 4-D; and .npy files of the same arrays (C and
   Fortran order, both byte orders, v1/v2/v3 headers) saved with numpy, and
   MetaImage files written here by hand from the MetaIO spec (LPS geometry).
   Their expected values go in the same JSON ("generated").

3. Files written by fess: runs `go test ./volume -run TestWriteSamplesForNibabel`
   with FESS_WRITE_SAMPLES=<tmpdir>, which writes NIfTI-1 files in every
   datatype plus a JSON of what they should hold; loads each with nibabel and
   compares voxels and affine (sform and qform). The verdicts go in the JSON
   ("fess_written") and are printed.
"""

import glob
import gzip
import struct
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import nibabel as nib

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "volume", "testdata", "nibabel_fixtures.json")
GEN = os.path.join(REPO, "volume", "testdata", "nibabel")

REAL = sorted(glob.glob("/usr/share/mricron/templates/*.nii*")) + sorted(
    glob.glob("/usr/lib/python3/dist-packages/nibabel/tests/data/*.nii*")
    + glob.glob("/usr/lib/python3/dist-packages/nibabel/tests/data/*.hdr")
)
REAL = [p for p in REAL if p.endswith((".nii", ".nii.gz", ".hdr"))]


def sample_positions(shape, n=12):
    """Fixed pseudo-random voxel positions (x, y, z, t)."""
    rng = np.random.RandomState(1234)
    s4 = list(shape[:4]) + [1] * (4 - len(shape[:4]))
    pos = [[0, 0, 0, 0], [s - 1 for s in s4]]
    for _ in range(n - 2):
        pos.append([int(rng.randint(0, s)) for s in s4])
    return pos


def describe(img, data):
    """The fields the Go tests compare."""
    hdr = img.header
    rec = {
        "class": type(img).__name__,
        "shape": [int(s) for s in img.shape],
        "zooms": [float(z) for z in hdr.get_zooms()],
        "affine": np.asarray(img.affine, dtype=float).tolist(),
        "datatype": np.dtype(hdr.get_data_dtype()).name,
        "byteorder": "big" if hdr.endianness == ">" else "little",
    }
    for k in ("sform_code", "qform_code"):
        if k in hdr:
            rec[k] = int(hdr[k])
    slope = getattr(img.dataobj, "slope", 1.0)
    inter = getattr(img.dataobj, "inter", 0.0)
    rec["scl_slope"], rec["scl_inter"] = float(slope), float(inter)
    if data is not None:
        d4 = data.reshape(data.shape + (1,) * (4 - data.ndim)) if data.ndim < 4 else data
        fin = np.isfinite(data)
        rec["stats"] = {
            "min": float(np.min(data[fin])),
            "max": float(np.max(data[fin])),
            "mean": float(np.mean(data[fin], dtype=np.float64)),
            "sum": float(np.sum(data[fin], dtype=np.float64)),
            "nan": int(np.isnan(data).sum()),
            "inf": int(np.isinf(data).sum()),
        }
        rec["samples"] = [
            p + [None if not np.isfinite(d4[tuple(p)]) else float(d4[tuple(p)])]
            for p in sample_positions(data.shape)
        ]
    return rec


def real_files():
    out = {}
    for p in REAL:
        try:
            img = nib.load(p)
            if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair,
                                    nib.Nifti2Pair, nib.AnalyzeImage)):
                raise TypeError(f"nibabel reads it as {type(img).__name__}, not a volume")
        except Exception as e:  # nibabel cannot read it as a volume (e.g. CIFTI-2)
            rec = {"nibabel_error": f"{type(e).__name__}: {e}"}
            try:  # what a plain NIfTI-2 reader sees
                img = nib.Nifti2Image.from_filename(p)
                rec["shape"] = [int(s) for s in img.shape]
            except Exception:
                pass
            out[p] = rec
            print(f"SKIP {p}: nibabel cannot load it: {e}", file=sys.stderr)
            continue
        try:
            data = img.get_fdata(dtype=np.float64)
        except Exception as e:
            rec = describe(img, None)
            rec["data_error"] = f"{type(e).__name__}: {e}"
            out[p] = rec
            print(f"HEADER ONLY {p}: {e}", file=sys.stderr)
            continue
        out[p] = describe(img, data)
    return out


def affine(theta=0.3, zooms=(1.5, 2.0, 2.5), flip=True, shift=(-12.0, 7.5, 30.0)):
    c, s = np.cos(theta), np.sin(theta)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    if flip:
        R = R @ np.diag([-1.0, 1, 1])
    A = np.eye(4)
    A[:3, :3] = R @ np.diag(zooms)
    A[:3, 3] = shift
    return A


def test_array(dtype, shape, seed):
    rng = np.random.RandomState(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dt)
    if dt.kind == "b":
        return rng.randint(0, 2, shape).astype(bool)
    info = np.iinfo(dt)
    lo, hi = max(info.min, -30000), min(info.max, 30000)
    a = rng.randint(lo, hi + 1, shape).astype(dt)
    a.flat[0], a.flat[-1] = info.min, info.max  # extremes of the type
    return a


def write_mha(path, arr, spacing, origin, direction, big=False, compress=False, mhd=False):
    """MetaImage writer from the MetaIO spec: x fastest on disk; TransformMatrix
    lists the direction of axis 0, then axis 1, then axis 2."""
    types = {"uint8": "MET_UCHAR", "int8": "MET_CHAR", "int16": "MET_SHORT", "uint16": "MET_USHORT",
             "int32": "MET_INT", "uint32": "MET_UINT", "float32": "MET_FLOAT", "float64": "MET_DOUBLE",
             "int64": "MET_LONG_LONG", "uint64": "MET_ULONG_LONG"}
    dt = arr.dtype.newbyteorder(">" if big else "<")
    raw = np.asfortranarray(arr.astype(dt)).tobytes(order="F")
    if compress:
        raw = zlib.compress(raw)
    tm = " ".join(repr(float(direction[r][c])) for c in range(3) for r in range(3))
    lines = [
        "ObjectType = Image",
        f"NDims = {arr.ndim}",
        f"BinaryData = True",
        f"BinaryDataByteOrderMSB = {'True' if big else 'False'}",
        f"CompressedData = {'True' if compress else 'False'}",
    ]
    if compress:
        lines.append(f"CompressedDataSize = {len(raw)}")
    lines += [
        f"TransformMatrix = {tm}",
        "Offset = " + " ".join(repr(float(o)) for o in origin),
        "CenterOfRotation = 0 0 0",
        "AnatomicalOrientation = RAI",
        "ElementSpacing = " + " ".join(repr(float(s)) for s in spacing),
        "DimSize = " + " ".join(str(s) for s in arr.shape),
        f"ElementType = {types[arr.dtype.name]}",
    ]
    if mhd:
        rawname = os.path.basename(path)[:-4] + ".raw"
        lines.append(f"ElementDataFile = {rawname}")
        with open(os.path.join(os.path.dirname(path), rawname), "wb") as f:
            f.write(raw)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    else:
        lines.append("ElementDataFile = LOCAL")
        with open(path, "wb") as f:
            f.write(("\n".join(lines) + "\n").encode() + raw)


def generated_files():
    os.makedirs(GEN, exist_ok=True)
    for f in glob.glob(os.path.join(GEN, "*")):
        os.remove(f)
    out = {}
    shape = (6, 5, 4)
    A = affine()

    def record(name, img_path, arr_f64, aff, extra=None):
        img = nib.load(img_path)
        data = img.get_fdata(dtype=np.float64)
        assert np.array_equal(data, arr_f64, equal_nan=True), name
        rec = describe(img, data)
        rec["affine"] = np.asarray(aff, float).tolist()
        if extra:
            rec.update(extra)
        out[os.path.relpath(img_path, REPO)] = rec

    dtypes = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
    for i, dt in enumerate(dtypes):
        arr = test_array(dt, shape, i)
        for big in (False, True):
            if np.dtype(dt).itemsize == 1 and big:
                continue
            e = "be" if big else "le"
            hdr = nib.Nifti1Header(endianness=">" if big else "<")
            hdr.set_data_dtype(dt)
            img = nib.Nifti1Image(arr, A, header=hdr)
            img.header.set_slope_inter(1, 0)
            p = os.path.join(GEN, f"{dt}_{e}.nii")
            nib.save(img, p)
            record(dt + e, p, arr.astype(np.float64), A)
    # scaled int16, gzipped; scaled uint8 pair; NIfTI-2 big-endian 4-D;
    # NIfTI-2 pair; 4-D gzipped float32 with qform only; pixdim only.
    # nibabel's writer chooses its own scaling, so scl_slope/scl_inter are
    # patched into the saved header (little-endian NIfTI-1, offsets 112/116).
    def patch_scaling(path, slope, inter):
        with open(path, "r+b") as f:
            f.seek(112)
            f.write(struct.pack("<ff", slope, inter))

    arr = test_array("int16", shape, 20)
    img = nib.Nifti1Image(arr, A)
    img.header.set_data_dtype("int16")
    p = os.path.join(GEN, "scaled_int16.nii")
    nib.save(img, p)
    patch_scaling(p, 0.25, -7.5)
    with open(p, "rb") as f, gzip.GzipFile(p + ".gz", "wb", mtime=0) as g:
        g.write(f.read())
    os.remove(p)
    record("scaled", p + ".gz", arr * 0.25 - 7.5, A)

    arr = test_array("uint8", shape, 21)
    img = nib.Nifti1Pair(arr, A)
    img.header.set_data_dtype("uint8")
    p = os.path.join(GEN, "pair_uint8.hdr")
    nib.save(img, p)
    patch_scaling(p, 2.0, 1.0)
    record("pair", p, arr * 2.0 + 1.0, A)

    arr4 = test_array("float32", shape + (3,), 22)
    hdr = nib.Nifti2Header(endianness=">")
    hdr.set_data_dtype("float32")
    img = nib.Nifti2Image(arr4, A, header=hdr)
    p = os.path.join(GEN, "nifti2_4d_be.nii.gz")
    nib.save(img, p)
    record("nifti2", p, arr4.astype(np.float64), A)

    arr = test_array("int32", shape, 23)
    img = nib.Nifti2Pair(arr, A)
    p = os.path.join(GEN, "nifti2_pair.hdr")
    nib.save(img, p)
    record("nifti2pair", p, arr.astype(np.float64), A)

    arr = test_array("float64", shape + (2,), 24)
    img = nib.Nifti1Image(arr, None)
    img.header.set_qform(A, code=1)
    img.header.set_sform(None, code=0)
    p = os.path.join(GEN, "qform_only_4d.nii")
    nib.save(img, p)
    record("qform", p, arr, nib.load(p).affine)

    arr = test_array("int16", shape, 25)
    img = nib.Nifti1Image(arr, None)
    img.header.set_zooms((1.5, 2.0, 3.0))
    img.header.set_qform(None, code=0)
    img.header.set_sform(None, code=0)
    p = os.path.join(GEN, "pixdim_only.nii")
    nib.save(img, p)
    record("pixdim", p, arr.astype(np.float64), nib.load(p).affine)

    # NPY: the axis convention is nibabel's get_fdata() indexing.
    base = test_array("int16", shape + (2,), 30)
    for dt, order, big, ver in [
        ("float32", "C", False, (1, 0)), ("float64", "F", False, (1, 0)),
        ("int16", "C", True, (2, 0)), ("uint8", "F", False, (3, 0)),
        ("int32", "C", False, (1, 0)), ("uint16", "C", True, (1, 0)),
        ("int64", "F", True, (1, 0)), ("uint64", "C", False, (1, 0)),
        ("int8", "C", False, (1, 0)), ("uint32", "F", True, (2, 0)),
        ("bool", "C", False, (1, 0)), ("float16", "C", False, (1, 0)),
    ]:
        arr = (base % 100 if dt in ("uint8", "int8", "bool", "float16") else np.abs(base) if dt.startswith("u") else base)
        arr = arr.astype(dt)
        if dt == "bool":
            arr = base % 2 == 1
        arr = arr.astype(np.dtype(arr.dtype).newbyteorder(">" if big else "<"))
        arr = np.asfortranarray(arr) if order == "F" else np.ascontiguousarray(arr)
        four = dt in ("float32", "int16", "uint8")
        a = arr if four else arr[..., 0]
        name = f"{dt}_{order}_{'be' if big else 'le'}_v{ver[0]}.npy"
        p = os.path.join(GEN, name)
        with open(p, "wb") as f:
            np.lib.format._write_array_header(f, np.lib.format.header_data_from_array_1_0(a), ver)
            f.write(a.tobytes(order="F" if order == "F" else "C"))
        back = np.load(p)
        assert np.array_equal(back, a)
        d = a.astype(np.float64)
        rec = {
            "class": "npy", "shape": list(a.shape), "datatype": np.dtype(a.dtype).name,
            "affine": np.eye(4).tolist(), "zooms": [1.0, 1.0, 1.0],
        }
        rec.update({k: v for k, v in describe(nib.Nifti1Image(d, np.eye(4)), d).items() if k in ("stats", "samples")})
        out[os.path.relpath(p, REPO)] = rec
    # trailing channel axis
    a = test_array("float32", shape + (1,), 31)
    p = os.path.join(GEN, "channel_last.npy")
    np.save(p, a)
    d = a[..., 0].astype(np.float64)
    rec = {"class": "npy", "shape": list(shape), "datatype": "float32", "affine": np.eye(4).tolist(), "zooms": [1.0, 1.0, 1.0]}
    rec.update({k: v for k, v in describe(nib.Nifti1Image(d, np.eye(4)), d).items() if k in ("stats", "samples")})
    out[os.path.relpath(p, REPO)] = rec

    # MetaImage: LPS direction/origin; expected RAS affine = diag(-1,-1,1,1) @ LPS affine.
    c, s = np.cos(0.4), np.sin(0.4)
    D = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # rotation about y
    sp, org = (0.9, 1.1, 2.0), (-40.0, 12.5, 7.0)
    lps = np.eye(4)
    lps[:3, :3] = D @ np.diag(sp)
    lps[:3, 3] = org
    ras = np.diag([-1.0, -1, 1, 1]) @ lps
    for dt, big, comp, mhd in [("int16", False, False, False), ("float32", True, False, False),
                               ("uint8", False, True, False), ("float64", False, False, True),
                               ("uint16", True, True, True), ("int32", False, False, False)]:
        arr = test_array(dt, shape, 40 + len(out))
        name = f"meta_{dt}_{'be' if big else 'le'}{'_zlib' if comp else ''}.{'mhd' if mhd else 'mha'}"
        p = os.path.join(GEN, name)
        write_mha(p, arr, sp, org, D, big=big, compress=comp, mhd=mhd)
        d = arr.astype(np.float64)
        rec = {"class": "metaimage", "shape": list(shape), "datatype": dt, "affine": ras.tolist(), "zooms": list(sp)}
        rec.update({k: v for k, v in describe(nib.Nifti1Image(d, np.eye(4)), d).items() if k in ("stats", "samples")})
        out[os.path.relpath(p, REPO)] = rec
    return out


def fess_written():
    """Have the Go test write NIfTI files, then read them with nibabel."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, FESS_WRITE_SAMPLES=tmp)
        subprocess.run(["go", "test", "./volume", "-run", "TestWriteSamplesForNibabel", "-count=1"],
                       cwd=REPO, env=env, check=True)
        with open(os.path.join(tmp, "expected.json")) as f:
            expected = json.load(f)
        for name, exp in sorted(expected.items()):
            img = nib.load(os.path.join(tmp, name))
            data = img.get_fdata(dtype=np.float64)
            want = np.array(exp["data"], dtype=np.float64).reshape(exp["dims"][::-1]).T
            want = want.reshape(img.shape)
            aff = np.array(exp["affine"])
            problems = []
            if img.header.get_data_dtype().name != exp["datatype"]:
                problems.append(f"datatype {img.header.get_data_dtype().name}")
            if not np.array_equal(data, want):
                problems.append(f"voxels differ, max |diff| {np.max(np.abs(data - want))}")
            if not np.allclose(img.affine, aff, rtol=0, atol=1e-5):
                problems.append(f"affine {img.affine.tolist()}")
            q = img.header.get_qform()
            if not np.allclose(q, aff, rtol=0, atol=1e-4):
                problems.append(f"qform {q.tolist()}")
            if int(img.header["sform_code"]) != 1 or int(img.header["qform_code"]) != 1:
                problems.append("xform codes")
            results[name] = "ok" if not problems else "; ".join(problems)
            print(f"fess-written {name}: {results[name]}")
    return results


def main():
    fixtures = {
        "nibabel_version": nib.__version__,
        "real": real_files(),
        "generated": generated_files(),
        "fess_written": fess_written(),
    }
    with open(OUT, "w") as f:
        json.dump(fixtures, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(fixtures['real'])} real files, {len(fixtures['generated'])} generated")


if __name__ == "__main__":
    main()

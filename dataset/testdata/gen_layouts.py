#!/usr/bin/python3
"""Regenerate with `/usr/bin/python3 gen_layouts.py` from dataset/testdata
(Debian python3-numpy and python3-nibabel); it rewrites layouts/ entirely.

Tiny data sets in the on-disk layouts of the public brain-tumour and abdomen
collections, written by nibabel, as fixtures for the layout scanners and
preparation tests of package dataset:

  layouts/brats2021/BraTS2021_00000/BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii.gz
      labels 1 necrotic core, 2 edema, 4 enhancing tumour
  layouts/brats2023/BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t2f,t1n,t1c,t2w,seg}.nii.gz
      labels 1 necrotic core, 2 edema, 3 enhancing tumour
  layouts/msd/{imagesTr,labelsTr}/BRATS_001.nii.gz + dataset.json
      (Decathlon Task01: one 4-D image per case, frames FLAIR, T1w, T1gd,
      T2w; labels 1 edema, 2 non-enhancing tumour, 3 enhancing tumour)
  layouts/nnunet/Dataset001_BrainTumour/imagesTr/BraTS_001_000{0,1,2,3}.nii.gz,
      labelsTr/BraTS_001.nii.gz, imagesTs/ (one unlabelled case), dataset.json
      (nnU-Net v2; channels FLAIR, T1, T1ce, T2; MSD label values)
  layouts/abdomenct1k/Case_00001_0000.nii.gz + Mask/Case_00001.nii.gz
      labels 1 liver, 2 kidney, 3 spleen, 4 pancreas

Three labelled cases per layout, about 12x14x10 voxels, int16 images and
uint8 labels, each case with its own spacing and a non-identity affine
(flips, small rotations, offsets; one case per layout is qform-only, with
sform_code 0). Brain images are non-zero exactly over an ellipsoidal head
that holds every label voxel; every tumour has all three tumour labels. CT
images are HU, -1000 outside an elliptic body that holds every organ.

layouts/expected.json records, per layout and case ID (the name the Go
scanners give a case: the case folder for BraTS, the file stem for MSD, the
stem without _0000 for nnU-Net and AbdomenCT-1K), what numpy and nibabel see
in the files just written:
  {"<layout>": {"<case>": {"dims": [x, y, z], "frames": 4 (MSD only),
     "affine": 4x4 rows, "spacing": [..], "sform_code": n, "qform_code": n,
     "regions": {"WT": n, "TC": n, "ET": n}            (brain layouts)
     "organs": {"liver": n, "kidney": n, "spleen": n, "pancreas": n} (abdomen)
     "labels": {"<value>": voxels}}},
   plus "conventions": the label sets of each region per layout and
   "unlabelled": {"nnunet": {"<case>": {dims, affine, ...}}}}.
Region conventions: BraTS 2015-2021 WT 1,2,4 TC 1,4 ET 4; BraTS 2023 WT
1,2,3 TC 1,3 ET 3; MSD and nnU-Net BraTS WT 1,2,3 TC 2,3 ET 3.

Files are gzipped here (level 9, mtime 0) from nibabel's encoding, so a rerun
gives byte-identical fixtures.
"""
import gzip
import json
import os
import shutil

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "layouts")
RNG = np.random.RandomState(20240607)

DIMS = [(12, 14, 10), (13, 14, 10), (12, 15, 9)]

# Region label sets, per layout.
CONVENTIONS = {
    "brats2021": {"WT": [1, 2, 4], "TC": [1, 4], "ET": [4]},
    "brats2023": {"WT": [1, 2, 3], "TC": [1, 3], "ET": [3]},
    "msd": {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]},
    "nnunet": {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]},
}
ORGANS = {"liver": 1, "kidney": 2, "spleen": 3, "pancreas": 4}

# Tissue codes of the little brain: the generator's own, mapped to each
# layout's label values when written.
NEC, EDEMA, ENH = 1, 2, 3
LABELS = {
    "brats2021": {NEC: 1, EDEMA: 2, ENH: 4},
    "brats2023": {NEC: 1, EDEMA: 2, ENH: 3},
    "msd": {NEC: 2, EDEMA: 1, ENH: 3},
    "nnunet": {NEC: 2, EDEMA: 1, ENH: 3},
}
# Mean intensity per modality of background-brain, edema, necrosis,
# enhancing rim (FLAIR, T1, T1ce, T2).
INTENSITY = {
    "flair": (300, 520, 520, 520),
    "t1": (500, 400, 200, 410),
    "t1ce": (510, 410, 200, 820),
    "t2": (380, 760, 900, 620),
}
MODALITIES = ["flair", "t1", "t1ce", "t2"]


def rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_affine(k, dims):
    """A voxel-to-world affine: spacing, flips, a small rotation for cases 1
    and 2, the volume roughly centred on the origin."""
    spacing = [(1.0, 1.0, 1.0), (0.9, 0.9, 1.5), (1.2, 1.0, 2.0)][k] * np.array(
        [1 + 0.05 * RNG.uniform(-1, 1), 1 + 0.05 * RNG.uniform(-1, 1), 1.0])
    spacing = np.round(spacing, 3)
    flips = [np.array([-1, -1, 1]), np.array([1, 1, 1]), np.array([-1, 1, 1])][k]
    ang = np.zeros(3) if k == 0 else np.deg2rad(RNG.uniform(-15, 15, size=3))
    m = rotation(*ang) @ np.diag(flips * spacing)
    centre = (np.array(dims) - 1) / 2
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = -m @ centre + np.round(RNG.uniform(-20, 20, size=3), 2)
    return aff


def head_mask(dims):
    """An ellipsoid filling most of the grid, slightly off centre."""
    x, y, z = np.meshgrid(*[np.arange(d) for d in dims], indexing="ij")
    c = (np.array(dims) - 1) / 2 + RNG.uniform(-0.4, 0.4, size=3)
    r = np.array(dims) * np.array([0.44, 0.44, 0.45])
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1, c, r


def brain_case(dims):
    """Tissue map (0 outside the tumour) and the head mask of one case: a
    tumour of necrosis, an enhancing rim and an edema halo, all inside the
    head."""
    head, hc, hr = head_mask(dims)
    x, y, z = np.meshgrid(*[np.arange(d) for d in dims], indexing="ij")
    while True:
        c = hc + RNG.uniform(-0.3, 0.3, size=3) * hr
        radii = np.array([RNG.uniform(2.6, 3.6), RNG.uniform(2.6, 3.6), RNG.uniform(2.2, 3.0)])
        d = np.sqrt(((x - c[0]) / radii[0]) ** 2 + ((y - c[1]) / radii[1]) ** 2 + ((z - c[2]) / radii[2]) ** 2)
        tissue = np.zeros(dims, np.uint8)
        tissue[d < 1] = EDEMA
        tissue[d < 0.7] = ENH
        tissue[d < 0.42] = NEC
        inside = np.all(head[tissue > 0])
        if inside and all((tissue == t).any() for t in (NEC, EDEMA, ENH)):
            return tissue, head


def brain_images(tissue, head):
    imgs = {}
    for m in MODALITIES:
        base = np.array(INTENSITY[m], float)
        v = base[tissue] * (1 + 0.04 * RNG.standard_normal(tissue.shape))
        v = np.clip(np.round(v), 1, 32767)
        v[~head] = 0
        imgs[m] = v.astype(np.int16)
    return imgs


def save(path, data, affine, dtype, qform_only=False):
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"fess fixture (gen_layouts.py)"
    if qform_only:
        img.set_qform(affine, code=1)
        img.set_sform(None, code=0)
    else:
        img.set_sform(affine, code=1)
        img.set_qform(affine, code=1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(img.to_bytes(), compresslevel=9, mtime=0))


def describe(path):
    """dims, affine etc. as nibabel reads them back."""
    img = nib.load(path)
    hdr = img.header
    out = {
        "dims": [int(s) for s in img.shape[:3]],
        "affine": [[float(v) for v in row] for row in img.affine],
        "spacing": [float(v) for v in hdr.get_zooms()[:3]],
        "sform_code": int(hdr["sform_code"]),
        "qform_code": int(hdr["qform_code"]),
    }
    if len(img.shape) == 4:
        out["frames"] = int(img.shape[3])
    return out


def label_stats(path, conv):
    lab = np.asanyarray(nib.load(path).dataobj)
    vals, counts = np.unique(lab, return_counts=True)
    regions = {r: int(np.isin(lab, s).sum()) for r, s in conv.items()}
    return regions, {str(int(v)): int(c) for v, c in zip(vals, counts)}


def brain_layouts(expected):
    ids = {
        "brats2021": ["BraTS2021_00000", "BraTS2021_00002", "BraTS2021_00003"],
        "brats2023": ["BraTS-GLI-00000-000", "BraTS-GLI-00002-000", "BraTS-GLI-00003-001"],
        "msd": ["BRATS_001", "BRATS_002", "BRATS_003"],
        "nnunet": ["BraTS_001", "BraTS_002", "BraTS_003"],
    }
    suffix23 = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w"}
    nn_root = os.path.join(OUT, "nnunet", "Dataset001_BrainTumour")
    for layout in ["brats2021", "brats2023", "msd", "nnunet"]:
        expected[layout] = {}
        for k, cid in enumerate(ids[layout]):
            dims = DIMS[k]
            tissue, head = brain_case(dims)
            imgs = brain_images(tissue, head)
            aff = random_affine(k, dims)
            qonly = k == 2
            lab = np.zeros(dims, np.uint8)
            for t, v in LABELS[layout].items():
                lab[tissue == t] = v
            if layout == "brats2021":
                d = os.path.join(OUT, layout, cid)
                for m in MODALITIES:
                    save(os.path.join(d, f"{cid}_{m}.nii.gz"), imgs[m], aff, np.int16, qonly)
                seg = os.path.join(d, f"{cid}_seg.nii.gz")
                first = os.path.join(d, f"{cid}_flair.nii.gz")
            elif layout == "brats2023":
                d = os.path.join(OUT, layout, cid)
                for m in MODALITIES:
                    save(os.path.join(d, f"{cid}-{suffix23[m]}.nii.gz"), imgs[m], aff, np.int16, qonly)
                seg = os.path.join(d, f"{cid}-seg.nii.gz")
                first = os.path.join(d, f"{cid}-t2f.nii.gz")
            elif layout == "msd":
                d = os.path.join(OUT, layout)
                first = os.path.join(d, "imagesTr", f"{cid}.nii.gz")
                save(first, np.stack([imgs[m] for m in MODALITIES], axis=-1), aff, np.int16, qonly)
                seg = os.path.join(d, "labelsTr", f"{cid}.nii.gz")
            else:
                for ch, m in enumerate(MODALITIES):
                    save(os.path.join(nn_root, "imagesTr", f"{cid}_{ch:04d}.nii.gz"), imgs[m], aff, np.int16, qonly)
                seg = os.path.join(nn_root, "labelsTr", f"{cid}.nii.gz")
                first = os.path.join(nn_root, "imagesTr", f"{cid}_0000.nii.gz")
            save(seg, lab, aff, np.uint8, qonly)
            e = describe(first)
            if describe(seg)["affine"] != e["affine"]:
                raise SystemExit(f"{seg}: label affine differs from the image's")
            e["regions"], e["labels"] = label_stats(seg, CONVENTIONS[layout])
            expected[layout][cid] = e

    n = 3
    with open(os.path.join(OUT, "msd", "dataset.json"), "w") as f:
        json.dump({
            "name": "BRATS",
            "description": "Tiny synthetic gliomas (fess test fixture)",
            "reference": "dataset/testdata/gen_layouts.py",
            "licence": "CC0",
            "release": "fixture",
            "tensorImageSize": "4D",
            "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
            "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
            "numTraining": n,
            "numTest": 0,
            "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ids["msd"]],
            "test": [],
        }, f, indent=2)
        f.write("\n")

    # One unlabelled nnU-Net test case.
    cid = "BraTS_004"
    tissue, head = brain_case(DIMS[0])
    imgs = brain_images(tissue, head)
    aff = random_affine(1, DIMS[0])
    for ch, m in enumerate(MODALITIES):
        save(os.path.join(nn_root, "imagesTs", f"{cid}_{ch:04d}.nii.gz"), imgs[m], aff, np.int16)
    expected.setdefault("unlabelled", {})["nnunet"] = {cid: describe(os.path.join(nn_root, "imagesTs", f"{cid}_0000.nii.gz"))}
    with open(os.path.join(nn_root, "dataset.json"), "w") as f:
        json.dump({
            "channel_names": {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"},
            "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
            "regions_class_order": [1, 2, 3],
            "numTraining": n,
            "file_ending": ".nii.gz",
        }, f, indent=2)
        f.write("\n")


def abdomen_layout(expected):
    expected["abdomenct1k"] = {}
    d = os.path.join(OUT, "abdomenct1k")
    for k in range(3):
        cid = f"Case_{k + 1:05d}"
        dims = DIMS[k]
        x, y, z = np.meshgrid(*[np.arange(s) for s in dims], indexing="ij")
        cx, cy = (dims[0] - 1) / 2, (dims[1] - 1) / 2
        body = ((x - cx) / (0.47 * dims[0])) ** 2 + ((y - cy) / (0.40 * dims[1])) ** 2 <= 1
        hu = np.where(body, -90.0, -1000.0)
        lab = np.zeros(dims, np.uint8)

        def blob(c, r):
            return (((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1) & body

        jit = lambda: RNG.uniform(-0.5, 0.5)
        organs = [
            ("liver", 60, [cx + 2.6 + jit(), cy - 0.5 + jit(), 5.5 + jit()], [2.4, 3.2, 3.0]),
            ("kidney", 160, [cx + 2.8 + jit(), cy + 3.3 + jit(), 3.5], [1.1, 1.5, 2.0]),
            ("kidney", 160, [cx - 2.8 + jit(), cy + 3.3 + jit(), 3.5], [1.1, 1.5, 2.0]),
            ("spleen", 50, [cx - 3.3 + jit(), cy + 1.0 + jit(), 6.0 + jit()], [1.4, 1.8, 2.0]),
            ("pancreas", 45, [cx - 0.8 + jit(), cy + 1.2 + jit(), 4.5], [2.0, 0.9, 1.0]),
        ]
        for name, h, c, r in organs:
            m = blob(c, r) & (lab == 0)
            lab[m] = ORGANS[name]
            hu[m] = h
        hu = hu + np.where(hu > -900, 8 * RNG.standard_normal(dims), 0)
        img = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
        aff = random_affine(k, dims)
        qonly = k == 2
        first = os.path.join(d, f"{cid}_0000.nii.gz")
        seg = os.path.join(d, "Mask", f"{cid}.nii.gz")
        save(first, img, aff, np.int16, qonly)
        save(seg, lab, aff, np.uint8, qonly)
        e = describe(first)
        labels = np.asanyarray(nib.load(seg).dataobj)
        e["organs"] = {name: int((labels == v).sum()) for name, v in ORGANS.items()}
        if min(e["organs"].values()) == 0:
            raise SystemExit(f"{cid}: an organ is missing: {e['organs']}")
        vals, counts = np.unique(labels, return_counts=True)
        e["labels"] = {str(int(v)): int(c) for v, c in zip(vals, counts)}
        expected["abdomenct1k"][cid] = e


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    expected = {"conventions": dict(CONVENTIONS, abdomenct1k=ORGANS)}
    brain_layouts(expected)
    abdomen_layout(expected)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(OUT) for n in fs)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()

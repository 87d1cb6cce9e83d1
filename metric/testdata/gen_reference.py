#!/usr/bin/python3
"""Build real mask pairs from mricron-data's brain and independent reference
metrics for metric/crosscheck_test.go. Not run in CI; run it with Debian's
python3 (python3-numpy, python3-scipy, python3-nibabel, mricron-data; plastimatch
optional) from this directory:

    /usr/bin/python3 gen_reference.py

Masks: brain = ch2bet.nii.gz > 0 (Colin27, 181x217x181 at 1 mm), subsampled
[::2, ::2, ::3] to 91x109x61 voxels of 2x2x3 mm (anisotropic on purpose,
small fixtures). Truth is the brain mask; predictions are altered copies.

Reference values are computed here with numpy/scipy only, under the
conventions of docs/metrics.md (those of MONAI's metrics):
  surface(M)   = M XOR binary_erosion(M)  (3-D cross, border_value 0)
  d(A->B)      = distance_transform_edt(~surface(B), sampling=spacing)[surface(A)]
  hd           = max(max d(P->T), max d(T->P))
  hd95         = max(percentile(d(P->T), 95), percentile(d(T->P), 95))  (numpy linear)
  assd         = mean(concatenate(d(P->T), d(T->P)))
If plastimatch is installed, `plastimatch dice --all truth pred` is run too and
its printed values stored verbatim (parsed), together with scipy-side values
under plastimatch's own conventions (see plastimatch's hausdorff_distance.cxx:
per direction the boundary voxels' distance to the other mask's boundary,
average = mean of the two directed means, 95 % = mean of the two directed
order statistics kth_smallest(floor(0.95*n - 1))).
"""
import json
import os
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

SRC = "/usr/share/mricron/templates/ch2bet.nii.gz"
OUT = "crosscheck"


def surface(m):
    return m & ~ndi.binary_erosion(m)


def directed(a, b, spacing):
    dt = ndi.distance_transform_edt(~surface(b), sampling=spacing)
    return dt[surface(a)]


def reference(pred, truth, spacing):
    p, t = pred.astype(bool), truth.astype(bool)
    tp = int(np.sum(p & t))
    fp = int(np.sum(p & ~t))
    fn = int(np.sum(~p & t))
    tn = int(np.sum(~p & ~t))
    r = dict(tp=tp, fp=fp, fn=fn, tn=tn,
             dice=2 * tp / (2 * tp + fp + fn), iou=tp / (tp + fp + fn),
             precision=tp / (tp + fp), sensitivity=tp / (tp + fn),
             specificity=tn / (tn + fp))
    dpt, dtp = directed(p, t, spacing), directed(t, p, spacing)
    r["hd"] = float(max(dpt.max(), dtp.max()))
    r["hd95"] = float(max(np.percentile(dpt, 95), np.percentile(dtp, 95)))
    r["assd"] = float(np.concatenate([dpt, dtp]).mean())
    r["n_surface_pred"], r["n_surface_truth"] = int(dpt.size), int(dtp.size)

    # plastimatch's boundary conventions, from the same scipy distances.
    def kth(d):
        k = min(int(np.floor(0.95 * d.size - 1)), d.size - 1)
        return float(np.sort(d)[k])
    r["plastimatch_conventions"] = {
        "hd_boundary": r["hd"],
        "avg_hd_boundary": float(0.5 * (dpt.mean() + dtp.mean())),
        "pct95_hd_boundary": 0.5 * (kth(dpt) + kth(dtp)),
    }
    return r


PLASTI_KEYS = {
    "TP": "tp", "TN": "tn", "FN": "fn", "FP": "fp", "DICE": "dice", "SE": "sensitivity",
    "SP": "specificity",
    "Hausdorff distance": "hd",
    "Avg average Hausdorff distance": "avg_hd",
    "Percent (0.95) Hausdorff distance": "pct95_hd",
    "Hausdorff distance (boundary)": "hd_boundary",
    "Avg average Hausdorff distance (boundary)": "avg_hd_boundary",
    "Percent (0.95) Hausdorff distance (boundary)": "pct95_hd_boundary",
}


def plastimatch(truth_fn, pred_fn):
    exe = shutil.which("plastimatch")
    if exe is None:
        return None
    out = subprocess.run([exe, "dice", "--all", truth_fn, pred_fn], check=True,
                         capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([A-Za-z][^:=]*?)\s*[:=]\s*([-+0-9.eE]+)\s*$", line)
        if m and m.group(1) in PLASTI_KEYS:
            vals[PLASTI_KEYS[m.group(1)]] = float(m.group(2))
    vals["version"] = subprocess.run([exe, "--version"], capture_output=True,
                                     text=True).stdout.strip()
    return vals


def save(mask, spacing, fn):
    aff = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
    img = nib.Nifti1Image(mask.astype(np.uint8), aff)
    img.header.set_xyzt_units("mm")
    nib.save(img, fn)


def main():
    os.makedirs(OUT, exist_ok=True)
    brain = np.asanyarray(nib.load(SRC).dataobj) > 0
    mask = brain[::2, ::2, ::3]
    spacing = (2.0, 2.0, 3.0)
    cross = ndi.generate_binary_structure(3, 1)
    ball = ndi.generate_binary_structure(3, 2)

    shifted = np.zeros_like(mask)
    shifted[3:] = mask[:-3]
    box = np.zeros_like(mask)
    box[20:70, 25:90, 10:50] = True
    # A sub-volume in which the brain is cut by the image border, to check
    # that the image border counts as background for surfaces.
    sub = (slice(15, 60), slice(20, 70), slice(5, 40))

    pairs = {
        # name: (pred, truth, spacing)
        "eroded2": (ndi.binary_erosion(mask, cross, iterations=2), mask, spacing),
        "shifted3": (shifted, mask, spacing),
        "dilated2": (ndi.binary_dilation(mask, ball, iterations=2), mask, spacing),
        "cropped": (mask & box, mask, spacing),
        "border": (ndi.binary_erosion(mask, cross, iterations=1)[sub],
                   np.roll(mask, 2, axis=1)[sub], spacing),
    }
    save(mask, spacing, os.path.join(OUT, "truth.nii.gz"))
    refs = {"source": SRC + " > 0, subsampled [::2, ::2, ::3]", "spacing": spacing,
            "pairs": {}}
    for name, (pred, truth, sp) in pairs.items():
        pfn = os.path.join(OUT, name + "_pred.nii.gz")
        save(pred, sp, pfn)
        if truth is mask:
            tfn = os.path.join(OUT, "truth.nii.gz")
        else:
            tfn = os.path.join(OUT, name + "_truth.nii.gz")
            save(truth, sp, tfn)
        r = reference(pred, truth, sp)
        r["pred"], r["truth"] = os.path.basename(pfn), os.path.basename(tfn)
        r["dims"] = list(pred.shape)
        pm = plastimatch(tfn, pfn)
        if pm is not None:
            r["plastimatch"] = pm
        refs["pairs"][name] = r
        print(name, {k: r[k] for k in ("dice", "hd", "hd95", "assd")},
              "plastimatch" if pm else "")
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(refs, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Real-anatomy brain-tumour benchmark built from the Colin27 T1 head.

Every case is the real Colin27 brain (Debian's mricron-data templates ch2.nii.gz,
the 1 mm T1 head, and ch2bet.nii.gz, its brain-extracted copy, whose non-zero
voxels are the brain mask), randomly warped, with one synthetic glioma inserted,
written in the BraTS 2021 layout that `fess prepare` reads:

    OUT/BraTS2021_XXXXX/BraTS2021_XXXXX_{flair,t1,t1ce,t2}.nii.gz   int16
    OUT/BraTS2021_XXXXX/BraTS2021_XXXXX_seg.nii.gz                  uint8 0,1,2,4

Labels follow BraTS 2015-2021: 1 necrotic / non-enhancing core, 2 oedema,
4 enhancing tumour. Images are skull-stripped (0 outside the warped brain mask),
as BraTS images are.

Per case (numpy Generator seeded with [--seed, case index], so a case does not
depend on --cases):
  * geometry: a random affine (rotation up to +-ROT deg per axis, isotropic
    scale 0.94-1.06 times a per-axis factor 0.97-1.03, shift up to +-4 mm)
    composed with a smooth random displacement field (Gaussian-smoothed noise,
    RMS ELASTIC mm), sampled with scipy.ndimage.map_coordinates from the 1 mm
    template (anti-aliased by a Gaussian before sampling) onto a grid of
    --spacing mm (default 2 mm: 90x108x90);
  * tumour: centre drawn inside the brain (weighted towards white matter, away
    from the brain surface); whole-tumour radius log-uniform in [--rmin,
    --rmax] mm; a randomly oriented ellipsoid made irregular by thresholding a
    smoothed-noise-perturbed distance; the oedema spreads preferentially along
    white matter; inside it a tumour core (enhancing rim around a necrotic
    centre; some cases solid-enhancing, some non-enhancing); everything is
    clipped to the brain mask; optional mass effect (radial push of the
    surrounding anatomy, on by default);
  * contrasts: T1 is the real (warped) T1; T1ce is the T1 with a per-case gain;
    T2 and FLAIR come from the real T1 through piecewise-linear transfer
    functions anchored at the CSF / grey / white matter means (3-class k-means
    on the template's brain voxels), so the anatomy (sulci, ventricles, deep
    nuclei, partial volume) is the real one. Tumour appearance relative to
    white matter (per case jittered): FLAIR oedema bright, T1ce rim bright, T1
    core dark, T2 oedema and core bright; oedema partially transparent and
    fading towards its border; tumour texture from smoothed noise;
  * a few unlabelled small white-matter hyperintensities (FLAIR/T2) as
    distractors (mean count --distractors);
  * a smooth multiplicative bias field per channel and Rician noise
    (sigma 1.5-5 % of white matter), then a per-channel scanner gain.

Writes OUT/colin27_brats.json with the generator options and per-case
statistics (label voxel counts, tumour fraction of the brain, radius, centre).
"""

import argparse
import json
import math
import os
import sys
import time

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

TEMPLATES = "/usr/share/mricron/templates"
VERSION = 1

# Tumour appearance per channel, relative to the channel's white-matter mean.
TUMOUR = {
    #         oedema necrosis enhancing
    "t1":    (0.78, 0.40, 0.80),
    "t1ce":  (0.80, 0.42, 1.55),
    "t2":    (1.85, 2.40, 1.50),
    "flair": (1.80, 1.10, 1.50),
}
# Healthy transfer from real T1 (CSF, GM, WM anchors) to each channel, relative to WM.
TRANSFER = {
    "t1": (None, None, None),          # identity (the real T1 / WM mean)
    "t1ce": (None, None, None),
    "t2": (2.60, 1.45, 1.00),
    "flair": (0.35, 1.25, 1.00),
}
CHANNELS = ("flair", "t1", "t1ce", "t2")


def kmeans1d(x, centres, iters=30):
    c = np.array(centres, float)
    for _ in range(iters):
        lab = np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)
        c = np.array([x[lab == k].mean() for k in range(len(c))])
    return np.sort(c)


def load_template(spacing):
    head = nib.load(os.path.join(TEMPLATES, "ch2.nii.gz"))
    bet = nib.load(os.path.join(TEMPLATES, "ch2bet.nii.gz"))
    t1 = np.asarray(head.dataobj, dtype=np.float32)
    mask = ndi.binary_fill_holes(np.asarray(bet.dataobj) > 0)
    brain = t1[mask]
    csf, gm, wm = kmeans1d(brain[::7].astype(float), (35.0, 80.0, 110.0))
    # Anti-alias before sampling a coarser grid.
    sigma = max(0.0, 0.42 * spacing)
    t1s = ndi.gaussian_filter(t1, sigma) if sigma > 0.3 else t1
    nz = [np.flatnonzero(mask.any(axis=tuple(j for j in range(3) if j != ax))) for ax in range(3)]
    return {
        "brain_centre": np.array([(p[0] + p[-1]) / 2.0 for p in nz]),
        "t1": t1s,
        "mask": mask.astype(np.float32),
        "affine": head.affine.copy(),
        "shape": t1.shape,
        "csf": float(csf), "gm": float(gm), "wm": float(wm),
    }


def grid_offset(tpl, shape, spacing):
    """Template index of output voxel 0: the output grid is centred on the brain's bounding box."""
    return tpl["brain_centre"] - (np.array(shape) - 1) / 2.0 * spacing


def rotation(rng, max_deg):
    a = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def smooth_field(rng, shape, coarse, sigma):
    """Smooth zero-mean unit-RMS random field on `shape` from noise on a coarse grid."""
    cs = tuple(max(3, int(math.ceil(n / coarse))) for n in shape)
    f = ndi.gaussian_filter(rng.standard_normal(cs), sigma)
    f = ndi.zoom(f, [n / c for n, c in zip(shape, cs)], order=1, mode="nearest", grid_mode=True)
    f = f[: shape[0], : shape[1], : shape[2]]
    f = ndi.gaussian_filter(f, min(coarse / 2.5, 3.0))  # smooths the linear interpolation's kinks
    f -= f.mean()
    return (f / (f.std() + 1e-12)).astype(np.float32)


class Warp:
    """Output voxel (float index) -> template voxel index (1 mm)."""

    def __init__(self, rng, tpl, shape, spacing, rot_deg, elastic_mm):
        self.shape = shape
        self.spacing = spacing
        self.off = grid_offset(tpl, shape, spacing)[:, None]
        self.centre = (np.array(tpl["shape"]) - 1) / 2.0
        r = rotation(rng, rot_deg)
        s = rng.uniform(0.94, 1.06) * rng.uniform(0.97, 1.03, 3)
        # anatomy scaled by s: source = C + R^T (y - C) / s
        self.m = (r.T / s[:, None]).astype(np.float64)
        self.t = rng.uniform(-4, 4, 3)
        # elastic displacement (template voxels = mm), on the output grid
        self.u = [elastic_mm * smooth_field(rng, shape, 8, 1.0) for _ in range(3)]

    def __call__(self, x):
        """x: (3, N) output-grid float indices -> (3, N) template indices."""
        u = np.stack([ndi.map_coordinates(f, x, order=1, mode="nearest") for f in self.u])
        y = x * self.spacing + self.off + u  # template index before the affine
        return self.centre[:, None] + self.m @ (y - self.centre[:, None]) + self.t[:, None]


def grid(shape):
    return np.indices(shape, dtype=np.float32).reshape(3, -1)


def sample(vol, pts, shape, order=1):
    return ndi.map_coordinates(vol, pts, order=order, mode="constant", cval=0.0).reshape(shape).astype(np.float32)


def random_orthonormal(rng):
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def make_case(idx, args, tpl, shape):
    rng = np.random.default_rng([args.seed, idx])
    sp = args.spacing
    warp = Warp(rng, tpl, shape, sp, args.rotation, args.elastic)
    g = grid(shape)

    # 1. anatomy without mass effect: choose where the tumour goes.
    pts0 = warp(g)
    mask0 = sample(tpl["mask"], pts0, shape) > 0.5
    t1_0 = sample(tpl["t1"], pts0, shape)
    csf, gm, wm = tpl["csf"], tpl["gm"], tpl["wm"]
    pwm0 = 1.0 / (1.0 + np.exp(-(t1_0 - 0.5 * (gm + wm)) / (0.08 * (wm - gm) + 1e-6)))
    edt = ndi.distance_transform_edt(mask0) * sp  # mm to the brain surface

    r_mm = math.exp(rng.uniform(math.log(args.rmin), math.log(args.rmax)))
    R = r_mm / sp  # voxels
    margin = min(0.55 * r_mm, 14.0)
    cand = np.flatnonzero((edt >= max(margin, 2 * sp)).ravel())
    w = (pwm0.ravel()[cand] + 0.25)
    c = np.array(np.unravel_index(rng.choice(cand, p=w / w.sum()), shape), float)

    # 2. mass effect: output x samples the anatomy at c + (x - c)(1 - m(r)/r).
    amp = rng.uniform(0.0, args.mass_effect) * min(1.0, r_mm / 25.0)
    s_me = 1.6 * R
    x = g.copy()
    if amp > 0:
        d = x - c[:, None].astype(np.float32)
        r2 = (d * d).sum(0)
        x = x - d * (amp * np.exp(-r2 / (2 * s_me * s_me)))[None, :]
    pts = warp(x)
    mask = sample(tpl["mask"], pts, shape) > 0.5
    t1 = sample(tpl["t1"], pts, shape)
    pwm = 1.0 / (1.0 + np.exp(-(t1 - 0.5 * (gm + wm)) / (0.08 * (wm - gm) + 1e-6)))

    # 3. tumour shape on a box around c.
    half = int(math.ceil(1.9 * R + 6))
    lo = np.maximum(0, c.astype(int) - half)
    hi = np.minimum(shape, c.astype(int) + half + 1)
    bs = tuple(hi - lo)
    bl = tuple(slice(a, b) for a, b in zip(lo, hi))
    q = random_orthonormal(rng)
    axes = rng.uniform(0.75, 1.25, 3)
    axes /= np.prod(axes) ** (1 / 3)
    bi = np.indices(bs, dtype=np.float32).reshape(3, -1) + lo[:, None] - c[:, None]
    d0 = np.sqrt((((q.T @ bi) / (axes[:, None] * R)) ** 2).sum(0)).reshape(bs)

    def noise(sig):
        n = ndi.gaussian_filter(rng.standard_normal(bs), sig)
        return n / (n.std() + 1e-12)

    lobe_sigma = rng.uniform(1.2, 2.6) * max(1.0, R / 6.0)
    a_wt = rng.uniform(0.12, 0.32)
    wm_pull = rng.uniform(0.1, 0.35)
    d_wt = d0 + a_wt * noise(lobe_sigma) - wm_pull * (pwm[bl] - 0.5)
    wt = (d_wt < 1.0) & mask[bl]
    rc = rng.uniform(0.5, 0.85)
    d_tc = d0 / rc + rng.uniform(0.1, 0.3) * noise(max(1.0, lobe_sigma * 0.7))
    tc = (d_tc < 1.0) & wt
    kind = rng.choice(["rim", "solid", "nonenh"], p=[0.73, 0.15, 0.12])
    rim = rng.uniform(0.25, 0.6)
    lab = np.zeros(bs, np.uint8)
    lab[wt] = 2
    if kind == "rim":
        nec = tc & (d_tc < 1.0 - rim)
        lab[tc] = 4
        lab[nec] = 1
    elif kind == "solid":
        lab[tc] = 4
    else:
        lab[tc] = 1
    seg = np.zeros(shape, np.uint8)
    seg[bl] = lab
    seg[~mask] = 0

    # 4. healthy channels from the real T1.
    healthy = {}
    for ch in CHANNELS:
        a = TRANSFER[ch]
        if a[0] is None:
            healthy[ch] = t1 / wm
        else:
            xs = np.array([csf, gm, wm]) / wm
            ys = np.array(a, float)
            v = t1 / wm
            out = np.interp(v, xs, ys)
            lo_s = (ys[1] - ys[0]) / (xs[1] - xs[0])
            hi_s = (ys[2] - ys[1]) / (xs[2] - xs[1])
            out = np.where(v < xs[0], ys[0] + lo_s * (v - xs[0]), out)
            out = np.where(v > xs[2], ys[2] + hi_s * (v - xs[2]), out)
            healthy[ch] = np.clip(out, 0.05, 3.0)
    healthy["t1ce"] = healthy["t1ce"] * rng.uniform(0.97, 1.03)

    # 5. distractors: small unlabelled white-matter hyperintensities.
    n_dis = rng.poisson(args.distractors) if args.distractors > 0 else 0
    dis = np.zeros(shape, np.float32)
    wmvox = np.flatnonzero(((pwm > 0.8) & mask & (seg == 0)).ravel())
    for _ in range(n_dis):
        if wmvox.size == 0:
            break
        p = np.array(np.unravel_index(rng.choice(wmvox), shape), float)
        rr = rng.uniform(0.8, 2.2)
        hb = int(math.ceil(3 * rr)) + 1
        l2 = np.maximum(0, p.astype(int) - hb)
        h2 = np.minimum(shape, p.astype(int) + hb + 1)
        ii = np.indices(tuple(h2 - l2), dtype=np.float32) + l2[:, None, None, None] - p[:, None, None, None]
        blob = np.exp(-(ii ** 2).sum(0) / (2 * rr * rr))
        sl = tuple(slice(a, b) for a, b in zip(l2, h2))
        dis[sl] = np.maximum(dis[sl], blob)
    dis *= (seg == 0)

    # 6. tumour appearance.
    parts = {2: 0, 1: 1, 4: 2}
    soft = {}
    for k in parts:
        sk = np.zeros(shape, np.float32)
        sk[bl] = ndi.gaussian_filter((seg[bl] == k).astype(np.float32), 0.6)
        soft[k] = sk
    # oedema: partially transparent, fading towards its outer border
    ed_alpha = rng.uniform(0.55, 0.95)
    fade = np.zeros(shape, np.float32)
    fade[bl] = np.clip((1.0 - d_wt) / rng.uniform(0.15, 0.4), 0.25, 1.0)
    tex = np.zeros(shape, np.float32)
    tex[bl] = noise(1.0)
    tex_amp = rng.uniform(0.04, 0.12)
    alpha = {2: ed_alpha * fade, 1: np.float32(1.0), 4: np.float32(1.0)}
    jitter = {ch: rng.uniform(0.85, 1.15, 3) for ch in CHANNELS}
    bias_common = smooth_field(rng, shape, 16, 0.8)
    img = {}
    for ch in CHANNELS:
        h = healthy[ch]
        A = np.zeros(shape, np.float32)
        T = np.zeros(shape, np.float32)
        for k, j in parts.items():
            wk = soft[k] * alpha[k]
            A += wk
            rel = TUMOUR[ch][j]
            # contrast jitter keeps each part on its side of white matter
            rel = 1.0 + (rel - 1.0) * jitter[ch][j]
            T += wk * rel
        A = np.clip(A, 0, 1)
        v = h * (1 - A) + T * (1 + tex_amp * tex)
        if ch in ("flair", "t2"):
            v = v + dis * rng.uniform(0.25, 0.6) * (1.0 if ch == "flair" else 0.8)
        elif ch in ("t1", "t1ce"):
            v = v - dis * rng.uniform(0.0, 0.1)
        bias = np.exp(rng.uniform(0.06, 0.14) * (0.7 * bias_common + 0.3 * smooth_field(rng, shape, 16, 0.8)))
        v = v * bias
        sig = rng.uniform(0.015, 0.05)
        v = np.sqrt((v + sig * rng.standard_normal(shape)) ** 2 + (sig * rng.standard_normal(shape)) ** 2)
        gain = rng.uniform(300.0, 1200.0)
        v = np.clip(np.rint(v * gain), 1, 32767)
        v[~mask] = 0
        img[ch] = v.astype(np.int16)

    counts = {str(k): int((seg == k).sum()) for k in (1, 2, 4)}
    brain = int(mask.sum())
    wt_n = int((seg > 0).sum())
    stats = {
        "radius_mm": round(r_mm, 2), "centre_vox": [int(v) for v in c], "kind": str(kind),
        "mass_effect": round(float(amp), 3), "distractors": int(n_dis),
        "brain_voxels": brain, "label_voxels": counts, "wt_voxels": wt_n,
        "wt_fraction_of_brain": round(wt_n / brain, 5),
        "wt_fraction_of_volume": round(wt_n / seg.size, 5),
    }
    return img, seg, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (BraTS 2021 layout)")
    ap.add_argument("--cases", type=int, default=48, help="number of cases")
    ap.add_argument("--seed", type=int, default=2021, help="seed (case i uses [seed, i])")
    ap.add_argument("--spacing", type=float, default=2.0,
                    help="output voxel size in mm (downsampling of the 1 mm template; 2 gives 90x108x90)")
    ap.add_argument("--first", type=int, default=0, help="index of the first case (IDs BraTS2021_<index>)")
    ap.add_argument("--rmin", type=float, default=8.0, help="smallest whole-tumour radius, mm")
    ap.add_argument("--rmax", type=float, default=35.0, help="largest whole-tumour radius, mm")
    ap.add_argument("--rotation", type=float, default=8.0, help="max rotation per axis, degrees")
    ap.add_argument("--elastic", type=float, default=2.0, help="RMS of the smooth displacement, mm")
    ap.add_argument("--mass-effect", type=float, default=0.35,
                    help="max mass-effect strength (0 disables), scaled down for small tumours")
    ap.add_argument("--distractors", type=float, default=0.8,
                    help="mean number of unlabelled white-matter hyperintensities per case (0: none)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.cases < 1 or args.spacing <= 0 or not (0 < args.rmin <= args.rmax):
        ap.error("need --cases >= 1, --spacing > 0, 0 < --rmin <= --rmax")

    t0 = time.time()
    tpl = load_template(args.spacing)
    shape = tuple(int(n // args.spacing) if args.spacing > 1 else int(round(n / args.spacing)) for n in tpl["shape"])
    off = grid_offset(tpl, shape, args.spacing)
    aff = tpl["affine"] @ np.array([[args.spacing, 0, 0, off[0]], [0, args.spacing, 0, off[1]],
                                    [0, 0, args.spacing, off[2]], [0, 0, 0, 1.0]])
    os.makedirs(args.out, exist_ok=True)
    meta = {"generator": "scripts/realbrain/make_colin27_brats.py", "version": VERSION,
            "source": TEMPLATES + "/ch2.nii.gz (Colin27 T1), ch2bet.nii.gz (brain mask)",
            "options": {k: v for k, v in vars(args).items() if k not in ("out", "quiet")},
            "shape": list(shape), "spacing_mm": args.spacing,
            "tissue_means_t1": {"csf": tpl["csf"], "gm": tpl["gm"], "wm": tpl["wm"]},
            "labels": {"1": "necrotic / non-enhancing core", "2": "oedema", "4": "enhancing"},
            "cases": {}}
    for i in range(args.first, args.first + args.cases):
        cid = f"BraTS2021_{i:05d}"
        img, seg, st = make_case(i, args, tpl, shape)
        d = os.path.join(args.out, cid)
        os.makedirs(d, exist_ok=True)
        for ch, v in img.items():
            im = nib.Nifti1Image(v, aff)
            im.header.set_xyzt_units("mm")
            nib.save(im, os.path.join(d, f"{cid}_{ch}.nii.gz"))
        im = nib.Nifti1Image(seg, aff)
        im.header.set_xyzt_units("mm")
        nib.save(im, os.path.join(d, f"{cid}_seg.nii.gz"))
        meta["cases"][cid] = st
        if not args.quiet:
            print(f"{cid}  r={st['radius_mm']:5.1f} mm  {st['kind']:6s}  wt={st['wt_voxels']:6d} vox "
                  f"({100 * st['wt_fraction_of_brain']:.2f}% of brain)  labels {st['label_voxels']}",
                  flush=True)
    fr = [s["wt_fraction_of_brain"] for s in meta["cases"].values()]
    fv = [s["wt_fraction_of_volume"] for s in meta["cases"].values()]
    meta["summary"] = {"cases": len(fr), "wt_fraction_of_brain": {"min": min(fr), "median": float(np.median(fr)), "max": max(fr)},
                       "wt_fraction_of_volume": {"min": min(fv), "median": float(np.median(fv)), "max": max(fv)},
                       "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(args.out, "colin27_brats.json"), "w") as f:
        json.dump(meta, f, indent=1)
    if not args.quiet:
        s = meta["summary"]
        print(f"{len(fr)} cases, shape {shape} at {args.spacing} mm; whole tumour {100 * s['wt_fraction_of_brain']['min']:.2f}"
              f"-{100 * s['wt_fraction_of_brain']['max']:.2f}% of brain (median {100 * s['wt_fraction_of_brain']['median']:.2f}%); "
              f"{s['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()

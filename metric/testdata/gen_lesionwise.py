#!/usr/bin/python3
"""Independent reference values of the BraTS 2023 lesion-wise metrics for
metric/lesionwise_test.go. Not run in CI; run it with Debian's python3
(python3-numpy, python3-scipy) from this directory:

    /usr/bin/python3 gen_lesionwise.py

It writes lesionwise.json: deterministic (seeded) small mask pairs, their
geometry and options, and the expected scores, computed here with
numpy/scipy.ndimage only:

  lesions   : label(binary_dilation(truth, generate_binary_structure(3, 2),
              iterations=d), 26-structure); lesion k = truth & (that label == k)
  matches   : labels of label(pred, 26-structure) inside
              binary_dilation(lesion k, same structure, iterations=d)
  dice      : 2|L & U| / (|L| + |U|), U = union of the matches
  hd95      : max of the two directed numpy.percentile(..., 95) (linear) of
              surface-to-surface distances, surface(M) = M & ~binary_erosion(M)
              (default 3-D cross, border 0), distances read from
              distance_transform_edt(~surface(B), sampling=spacing);
              374 when there is no match
  kept      : lesions with voxel count * voxel volume > min_volume_mm3
  fp        : predicted components matched by no kept lesion (a component
              touching only left-out lesions is one; the published 2023
              scorer does not count it, see metric.LesionWise)
  scores    : dice = sum(dice) / (kept + fp),
              hd95 = (sum(hd95) + 374 fp) / (kept + fp); 0/0 -> 1 and 0

Arrays are indexed [x, y, z]; masks are stored flattened x fastest (Fortran
order) as run lengths alternating background, foreground, background, ...,
starting with a (possibly zero) background run.
"""
import json

import numpy as np
from scipy import ndimage as ndi

MISS = 374.0
CUBE26 = np.ones((3, 3, 3), dtype=bool)
ELEM18 = ndi.generate_binary_structure(3, 2)
OPTIONS = {"GLI": (3, 50.0), "MEN": (1, 50.0), "MET": (1, 2.0)}


def dilate(m, d):
    if d == 0:  # scipy's iterations=0 would mean "until nothing changes"
        return m.copy()
    return ndi.binary_dilation(m, structure=ELEM18, iterations=d)


def surface(m):
    return m & ~ndi.binary_erosion(m)


def directed(a, b, spacing):
    dt = ndi.distance_transform_edt(~surface(b), sampling=spacing)
    return dt[surface(a)]


def hd95(a, b, spacing):
    return float(max(np.percentile(directed(a, b, spacing), 95),
                     np.percentile(directed(b, a, spacing), 95)))


def lesion_wise(pred, truth, spacing, d, min_vol):
    pred, truth = pred.astype(bool), truth.astype(bool)
    voxel = float(np.prod(spacing))
    pred_cc, n_pred = ndi.label(pred, structure=CUBE26)
    dil_cc, n_les = ndi.label(dilate(truth, d), structure=CUBE26)
    kept, tp, fn = 0, 0, 0
    sum_dice, sum_hd = 0.0, 0.0
    matched_by_kept = set()
    for k in range(1, n_les + 1):
        les = truth & (dil_cc == k)
        if les.sum() * voxel <= min_vol:
            continue
        kept += 1
        hits = np.unique(pred_cc[dilate(les, d)])
        hits = [int(c) for c in hits if c != 0]
        if not hits:
            fn += 1
            sum_hd += MISS
            continue
        tp += 1
        matched_by_kept.update(hits)
        union = np.isin(pred_cc, hits)
        sum_dice += 2.0 * np.sum(les & union) / (les.sum() + union.sum())
        sum_hd += hd95(union, les, spacing)
    fp = n_pred - len(matched_by_kept)
    den = kept + fp
    if den == 0:
        dice, hd = 1.0, 0.0
    else:
        dice, hd = sum_dice / den, (sum_hd + MISS * fp) / den
    return dict(dice=float(dice), hd95=float(hd), tp=tp, fn=fn, fp=fp, lesions=kept)


def rle(m):
    flat = m.astype(bool).ravel(order="F")
    runs, cur, count = [], False, 0
    for v in flat:
        if v == cur:
            count += 1
        else:
            runs.append(count)
            cur, count = v, 1
    runs.append(count)
    return runs


def grid(dims):
    return np.meshgrid(*[np.arange(n) for n in dims], indexing="ij")


def ball(dims, c, r, spacing=(1, 1, 1)):
    x, y, z = grid(dims)
    return (((x - c[0]) * spacing[0]) ** 2 + ((y - c[1]) * spacing[1]) ** 2
            + ((z - c[2]) * spacing[2]) ** 2) <= r * r


def cuboid(dims, lo, hi):
    m = np.zeros(dims, dtype=bool)
    m[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = True
    return m


def jitter(m, rng, p):
    """Flip each surface voxel of m, and each background voxel touching it,
    with probability p: a ragged copy of m."""
    band = ndi.binary_dilation(m) & ~ndi.binary_erosion(m)
    flip = band & (rng.random(m.shape) < p)
    return m ^ flip


def cases():
    out = []

    def add(name, pred, truth, spacing=(1.0, 1.0, 1.0), challenge="GLI"):
        out.append((name, pred, truth, spacing, challenge))

    rng = np.random.default_rng(20230)
    dims = (32, 30, 28)

    # Several lesions, each predicted with a ragged, shifted copy.
    sd = (40, 36, 32)
    t = ball(sd, (7, 7, 7), 4) | ball(sd, (30, 10, 8), 3.5) | ball(sd, (18, 27, 25), 5)
    p = jitter(np.roll(t, 1, axis=0), rng, 0.3)
    add("several_lesions", p, t)

    # Two truth blobs 4 voxels apart: one lesion under GLI (d = 3), two under
    # MET (d = 1); the prediction covers only one of them.
    t = cuboid(dims, (4, 8, 8), (10, 14, 14)) | cuboid(dims, (15, 8, 8), (21, 14, 14))
    p = jitter(cuboid(dims, (4, 8, 8), (10, 14, 14)), rng, 0.2)
    add("merge_gli", p, t, challenge="GLI")
    add("merge_met", p, t, challenge="MET")
    add("merge_men", p, t, challenge="MEN")

    # A big lesion and a small one (27 mm³ < 50): left out under GLI, where a
    # prediction of it is a false positive; kept under MET.
    t = ball(dims, (10, 10, 10), 5) | cuboid(dims, (24, 22, 20), (26, 24, 22))
    p = jitter(ball(dims, (10, 11, 10), 5), rng, 0.25) | cuboid(dims, (24, 22, 21), (26, 24, 23))
    add("small_lesion_gli", p, t, challenge="GLI")
    add("small_lesion_met", p, t, challenge="MET")

    # Small predicted false positives far from the one lesion.
    t = ball(dims, (15, 15, 14), 6)
    p = jitter(t, rng, 0.3)
    p[2, 2, 2] = p[28, 3, 25] = True
    p[27:29, 26:28, 3:5] = True
    add("false_positives", p, t)

    # A lesion with no prediction near it (false negative) and one found.
    t = ball(dims, (7, 7, 7), 4) | ball(dims, (23, 22, 20), 4.5)
    p = jitter(ball(dims, (7, 7, 7), 4), rng, 0.3)
    add("false_negative", p, t)

    # A prediction near the lesion but not overlapping it: matched (TP),
    # Dice 0, finite HD95.
    t = cuboid(dims, (8, 8, 8), (14, 14, 14))
    p = cuboid(dims, (16, 8, 8), (20, 14, 14))
    add("near_miss", p, t)

    # One predicted component bridging two lesions: in both unions.
    t = cuboid(dims, (3, 10, 10), (8, 15, 15)) | cuboid(dims, (20, 10, 10), (25, 15, 15))
    p = cuboid(dims, (3, 11, 11), (25, 14, 14))
    add("bridging_prediction", p, t, challenge="MET")

    # Lesions on the image border (dilation clipped there).
    t = cuboid(dims, (0, 0, 0), (5, 6, 4)) | cuboid(dims, (26, 24, 23), (31, 29, 27))
    p = jitter(t, rng, 0.3)
    add("border_lesions", p, t)

    # Empty masks.
    t = ball(dims, (15, 15, 14), 5)
    empty = np.zeros(dims, dtype=bool)
    add("empty_truth", jitter(t, rng, 0.2) | cuboid(dims, (1, 1, 1), (2, 2, 2)), empty)
    add("empty_prediction", empty, t)
    add("both_empty", empty, empty)
    add("only_small_truth", empty, cuboid(dims, (5, 5, 5), (7, 7, 7)))

    # Anisotropic voxels (0.8 x 1.2 x 2.5 mm): volumes and distances in mm.
    sp = (0.8, 1.2, 2.5)
    ad = (36, 30, 20)
    t = ball(ad, (10, 10, 8), 6, sp) | ball(ad, (26, 20, 10), 7, sp) | cuboid(ad, (30, 2, 2), (31, 3, 3))
    p = jitter(ball(ad, (11, 10, 8), 6, sp), rng, 0.3) | jitter(ball(ad, (26, 19, 11), 6.5, sp), rng, 0.3)
    p |= cuboid(ad, (30, 2, 3), (31, 3, 4))
    add("anisotropic_gli", p, t, sp, "GLI")
    add("anisotropic_met", p, t, sp, "MET")

    # Random scenes: a few random balls in the truth, the prediction keeps
    # some (ragged, shifted), misses some and adds random blobs.
    for s in range(4):
        rd = (40, 36, 30)
        t = np.zeros(rd, dtype=bool)
        p = np.zeros(rd, dtype=bool)
        for _ in range(rng.integers(2, 6)):
            c = rng.integers(3, np.array(rd) - 3)
            r = rng.uniform(1.0, 6.0)
            b = ball(rd, c, r)
            t |= b
            if rng.random() < 0.75:
                p |= jitter(np.roll(b, rng.integers(-1, 2), axis=rng.integers(0, 3)), rng, 0.3)
        for _ in range(rng.integers(0, 4)):
            c = rng.integers(2, np.array(rd) - 2)
            p |= ball(rd, c, rng.uniform(0.5, 2.5))
        add(f"random_{s}", p, t, (1.0, 1.0, 1.0), ["GLI", "MET", "GLI", "MEN"][s])

    return out


def main():
    records = []
    for name, pred, truth, spacing, challenge in cases():
        d, min_vol = OPTIONS[challenge]
        exp = lesion_wise(pred, truth, spacing, d, min_vol)
        records.append(dict(
            name=name, dims=list(pred.shape), spacing=list(spacing), challenge=challenge,
            dilation=d, min_volume_mm3=min_vol, pred=rle(pred), truth=rle(truth),
            expected=exp))
        print(f"{name:22s} {challenge} {exp}")
    with open("lesionwise.json", "w") as f:
        json.dump(dict(cases=records), f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()

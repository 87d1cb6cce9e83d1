#!/usr/bin/python3
"""PyTorch peer for whole-case inference: sliding-window prediction of a multi-channel 3-D volume.

The sliding-window convention that fess's whole-case inference must match:
  * windows of P³ voxels (P = --patch); per axis of length n the window starts are
    round(linspace(0, n - P, k)) with k = ceil((n - P) / (P · (1 - overlap))) + 1 (k = 1 when n ≤ P);
    an axis shorter than P is zero-padded at its end to P and cropped back afterwards;
  * each window's logits are weighted by the Gaussian w(i,j,l) = g(i)·g(j)·g(l),
    g(t) = exp(-(t - (P-1)/2)² / (2σ²)), σ = P/8, divided by its maximum and clamped below at its
    smallest positive value; the stitched logits are Σ w·logits / Σ w;
  * with --tta the logits of each window are the mean over the 8 mirrorings (flip any subset of
    the three spatial axes, predict, flip back);
  * probabilities are sigmoid(stitched logits), one channel per output region.

The network, in eval mode, is either --module FILE.py (a PyTorch definition of fess's network that
the project ships: it must define build(config) -> nn.Module whose forward(x) returns the logits,
config being the dict stored under "config" in the safetensors metadata, or {} without one) with
--weights FILE.safetensors loaded strictly (names and layouts as the module's state_dict()), or, without --module, the speed-only stand-in
torch_unet3d.UNet3D(in_ch=C, out_ch=K, base=F, levels=L) with seeded random weights.
The input is --input FILE.npy (float32, shape C×X×Y×Z: the network's input after normalisation,
X, Y, Z in nibabel's array order, as MONAI orders axes) or, without it, seeded Gaussian noise of --shape. Prints seconds (median of --iters), windows, peak RSS; --json
writes them; --save FILE.npy writes the probabilities (K×X×Y×Z float32) for an elementwise check.

Usage: torch_sliding_window.py [--module FESS.py --weights W.safetensors] [--shape 240,240,155] [--channels 4] [--out-channels 3] [--filters 16]
       [--levels 4] [--patch 128] [--overlap 0.5] [--tta] [--threads 2] [--iters 1]
       [--input X.npy] [--save P.npy] [--json OUT]
"""
import argparse, json, math, os, resource, struct, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_unet3d import UNet3D  # noqa: E402

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """Returns (tensors, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        meta = header.get("__metadata__", {}) or {}
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            lo, hi = info["data_offsets"]
            f.seek(base + lo)
            a = np.frombuffer(f.read(hi - lo), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
            out[name] = torch.from_numpy(a.copy())
    return out, meta


def starts(n, p, overlap):
    if n <= p:
        return [0]
    k = math.ceil((n - p) / (p * (1 - overlap))) + 1
    return [int(round(x)) for x in np.linspace(0, n - p, k)]


def gaussian(p):
    t = np.arange(p, dtype=np.float64)
    sigma = p / 8.0
    g = np.exp(-((t - (p - 1) / 2.0) ** 2) / (2 * sigma ** 2))
    w = g[:, None, None] * g[None, :, None] * g[None, None, :]
    w /= w.max()
    w = np.maximum(w, w[w > 0].min())
    return torch.from_numpy(w.astype(np.float32))


def predict(net, x, p, overlap, tta):
    c, *shape = x.shape
    pad = [max(0, p - n) for n in shape]
    if any(pad):
        x = torch.nn.functional.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))
    full = x.shape[1:]
    w = gaussian(p)
    acc, norm, count = None, torch.zeros(full), 0
    flips = [()] if not tta else [tuple(a for a, bit in zip((2, 3, 4), (i & 1, i & 2, i & 4)) if bit) for i in range(8)]
    with torch.no_grad():
        for i in starts(full[0], p, overlap):
            for j in starts(full[1], p, overlap):
                for k in starts(full[2], p, overlap):
                    win = x[:, i:i + p, j:j + p, k:k + p][None]
                    logit = 0
                    for fl in flips:
                        xin = torch.flip(win, fl) if fl else win
                        out = net(xin)
                        logit = logit + (torch.flip(out, fl) if fl else out)
                    logit = logit[0] / len(flips)
                    if acc is None:
                        acc = torch.zeros((logit.shape[0],) + tuple(full))
                    acc[:, i:i + p, j:j + p, k:k + p] += w * logit
                    norm[i:i + p, j:j + p, k:k + p] += w
                    count += 1
    prob = torch.sigmoid(acc / norm)
    return prob[:, :shape[0], :shape[1], :shape[2]], count


class LogitUNet(UNet3D):
    def forward(self, x, logits=False):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = torch.nn.functional.max_pool3d(x, 2)
        bott = self.bottleneck(x)
        x = bott
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        z = self.final(x)
        return bott, (z if logits else torch.sigmoid(z))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="240,240,155"); ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--out-channels", type=int, default=3); ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--levels", type=int, default=4); ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--overlap", type=float, default=0.5); ap.add_argument("--tta", action="store_true")
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--weights"); ap.add_argument("--input")
    ap.add_argument("--module")
    ap.add_argument("--save"); ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    if a.module:
        import importlib.util
        spec = importlib.util.spec_from_file_location("fess_module", a.module)
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        state, meta = read_safetensors(a.weights) if a.weights else ({}, {})
        cfg = meta.get("config", "{}")
        model = mod.build(json.loads(cfg) if isinstance(cfg, str) else cfg).eval()
        if a.weights:
            model.load_state_dict(state, strict=True)
        net = model
    else:
        if a.weights:
            sys.exit("--weights needs --module (the network definition that matches them)")
        model = LogitUNet(a.channels, a.out_channels, base=a.filters, levels=a.levels).eval()
        net = lambda xin: model(xin, logits=True)[1]
    if a.input:
        x = torch.from_numpy(np.load(a.input).astype(np.float32))
    else:
        shape = [int(s) for s in a.shape.split(",")]
        x = torch.randn([a.channels] + shape, generator=torch.Generator().manual_seed(a.seed + 1))
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        prob, windows = predict(net, x, a.patch, a.overlap, a.tta)
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = {"tool": "torch", "shape": list(x.shape), "patch": a.patch, "overlap": a.overlap, "tta": a.tta,
           "filters": a.filters, "levels": a.levels, "threads": a.threads, "windows": windows,
           "seconds_median": float(np.median(times)), "seconds_all": times, "peak_rss_mib": rss}
    print(f"torch sliding window: {res['seconds_median']:.2f} s, {windows} windows of {a.patch}³"
          f"{' ×8 mirrorings' if a.tta else ''}, input {list(x.shape)}, peak RSS {rss:.0f} MiB")
    if a.save:
        np.save(a.save, prob.numpy().astype(np.float32))
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()

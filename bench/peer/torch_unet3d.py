#!/usr/bin/python3
"""Reference CPU timing of a 3D U-Net training step / inference in PyTorch.

Usage:  python3 torch_unet3d.py [--configs a,b,c,d] [--variants default,keep,keep+blas512]
                                [--warmup 2] [--iters 5] [--threads 2]
                                [--profile] [--json out.json] [--wait-quiet 120]

Each (configuration, variant) runs in its own subprocess (clean allocator
state, per-config peak RSS).  Prints a markdown table; --json writes raw numbers.
Variants: "default" = environment as given + glibc malloc defaults (PyTorch out
of the box); "keep" = MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set huge so
freed memory is reused without new page faults (see MALLOC_KEEP_ENV);
"keep+blas512" = keep + OPENBLAS_CORETYPE removed from the environment (this
machine's environment forces OPENBLAS_CORETYPE=Haswell, i.e. AVX2 kernels; the
native conv paths slow_conv3d / slow_conv_transpose3d use OpenBLAS sgemm).
Timed samples during which other processes used CPU are discarded and retried
(the machine is shared); see Monitor / gated().

Note: if the `python3` first on PATH has no torch, the script re-executes itself
with Debian's system interpreter, where python3-torch installs.
"""
import os
import sys

try:
    import torch  # noqa: F401
except ImportError:  # this python3 has no torch -> use Debian's system one
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import argparse
import json
import resource
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (N, S, base F, levels L, train?)
CONFIGS = {
    "a": dict(N=2, S=32, F=8, L=3, train=True),
    "b": dict(N=1, S=64, F=16, L=4, train=True),
    "c": dict(N=2, S=64, F=8, L=4, train=True),
    "d": dict(N=1, S=64, F=32, L=4, train=False),
    # the reference's own network and batch (fess --preset seed): one connected conv per encoder
    # level, a 1024-channel bottleneck, BatchNorm after each up-conv, dropout 0.2
    "s": dict(N=5, S=64, F=32, L=4, train=True, seed=True, Cb=1024),
}


# --------------------------------------------------------------------------- model
class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv3d(cin, cout, 3, padding=1, bias=True),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=True),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
        )


class UNet3D(nn.Module):
    def __init__(self, in_ch=1, out_ch=1, base=8, levels=3):
        super().__init__()
        self.levels = levels
        self.enc = nn.ModuleList()
        c = in_ch
        for i in range(levels):
            self.enc.append(DoubleConv(c, base * 2 ** i))
            c = base * 2 ** i
        self.bottleneck = DoubleConv(c, base * 2 ** levels)
        c = base * 2 ** levels
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(levels)):
            co = base * 2 ** i
            self.up.append(nn.ConvTranspose3d(c, co, kernel_size=2, stride=2))
            self.dec.append(DoubleConv(2 * co, co))
            c = co
        self.final = nn.Conv3d(c, out_ch, kernel_size=1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = F.max_pool3d(x, 2)
        bott = self.bottleneck(x)
        x = bott
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = up(x)
            x = torch.cat([x, skip], dim=1)  # [upsampled, skip] along C
            x = dec(x)
        return bott, torch.sigmoid(self.final(x))


class Block(nn.Sequential):
    def __init__(self, cin, cout, drop):
        super().__init__(nn.Conv3d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True), nn.Dropout(drop))


class SeedUNet(nn.Module):
    """The reference's effective network (config s; fess's `seed` preset)."""

    def __init__(self, in_ch=1, out_ch=1, base=32, levels=4, cb=1024, drop=0.2):
        super().__init__()
        self.enc = nn.ModuleList()
        c = in_ch
        for i in range(levels):
            self.enc.append(Block(c, base * 2 ** i, drop))
            c = base * 2 ** i
        self.bottleneck = nn.Sequential(Block(c, cb, drop), Block(cb, cb, drop))
        c = cb
        self.up, self.upbn, self.dec = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(levels)):
            co = base * 2 ** i
            self.up.append(nn.ConvTranspose3d(c, co, kernel_size=2, stride=2))
            self.upbn.append(nn.BatchNorm3d(co))
            self.dec.append(nn.Sequential(Block(2 * co, co, drop), Block(co, co, drop)))
            c = co
        self.final = nn.Conv3d(c, out_ch, kernel_size=1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = F.max_pool3d(x, 2)
        bott = self.bottleneck(x)
        x = bott
        for up, bn, dec, skip in zip(self.up, self.upbn, self.dec, reversed(skips)):
            x = dec(torch.cat([bn(up(x)), skip], dim=1))
        return bott, torch.sigmoid(self.final(x))


def build_model(cfg):
    if cfg.get("seed"):
        return SeedUNet(1, 1, cfg["F"], cfg["L"], cfg["Cb"])
    return UNet3D(1, 1, cfg["F"], cfg["L"])


# --------------------------------------------------------------------------- loss
def soft_dice_loss(p, t, smooth=1e-5):
    inter = (p * t).sum()
    return 1.0 - (2.0 * inter + smooth) / (p.sum() + t.sum() + smooth)


def contrastive_loss(a, b, temp=0.5):
    # a, b: (N, C, D, H, W); L2-normalise over spatial axes per (n, c)
    a = F.normalize(a.flatten(2), p=2, dim=2)
    b = F.normalize(b.flatten(2), p=2, dim=2)
    sim = (a * b).sum(dim=2)  # (N, C)
    # mean(-log(exp(sim/T) / sum_all exp(sim/T))) computed stably via log_softmax
    return -(torch.log_softmax((sim / temp).flatten(), dim=0)).mean()


def total_loss(probs, mask, bott_nograd, bott_grad):
    return 0.5 * soft_dice_loss(probs, mask) + 0.5 * 1e-4 * contrastive_loss(bott_nograd, bott_grad)


# --------------------------------------------------------------------------- flops
def analytic_flops(N, S, Fb, L, in_ch=1, out_ch=1, enc_convs=2, cb=None):
    """Forward FLOPs (2*MACs) of every conv / conv-transpose (bias, BN, ReLU,
    pool, sigmoid not counted).  Returns (total, first_conv)."""
    macs = 0
    c = in_ch
    first = None
    for i in range(L):
        v = (S // 2 ** i) ** 3
        co = Fb * 2 ** i
        m1 = N * v * c * co * 27
        first = m1 if first is None else first
        macs += m1 + (enc_convs - 1) * N * v * co * co * 27
        c = co
    v = (S // 2 ** L) ** 3
    co = cb or Fb * 2 ** L
    macs += N * v * c * co * 27 + N * v * co * co * 27
    c = co
    for i in reversed(range(L)):
        v = (S // 2 ** i) ** 3  # output voxels of up-conv at this level
        co = Fb * 2 ** i
        macs += N * v * c * co            # ConvTranspose k=2,s=2: 8 MACs per input voxel per (ci,co) = 1 per output voxel
        macs += N * v * (2 * co) * co * 27 + N * v * co * co * 27
        c = co
    macs += N * S ** 3 * c * out_ch  # final 1x1x1
    return 2 * macs, 2 * first


def hook_flops(model, x):
    """Cross-check of analytic_flops by counting MACs with forward hooks."""
    tot = [0]

    def h(mod, inp, out):
        k = 1
        for s in mod.kernel_size:
            k *= s
        if isinstance(mod, nn.ConvTranspose3d):
            tot[0] += inp[0].numel() * mod.out_channels * k // mod.groups
        else:
            tot[0] += out.numel() * mod.in_channels * k // mod.groups

    hs = [m.register_forward_hook(h) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
    with torch.no_grad():
        model(x)
    for hh in hs:
        hh.remove()
    return 2 * tot[0]


# --------------------------------------------------------------------------- contention monitor
# The machine is shared (2 vCPUs); other processes distort timings.  We measure
# how much CPU *other* processes used during each timed region:
#   foreign = (system busy CPU time from /proc/stat) - (our process CPU time).
CLK = os.sysconf("SC_CLK_TCK")


def _sys_busy():
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK, v[7] / CLK  # busy seconds, steal seconds


def _own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Monitor:
    def __enter__(self):
        self.b0, self.s0 = _sys_busy()
        self.o0 = _own_cpu()
        self.f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        self.w0 = time.perf_counter()
        return self

    def __exit__(self, *a):
        b1, s1 = _sys_busy()
        o1 = _own_cpu()
        self.wall = time.perf_counter() - self.w0
        self.minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.f0
        self.own = o1 - self.o0
        self.foreign = max(0.0, (b1 - self.b0) - self.own)
        self.steal = s1 - self.s0
        # foreign CPU in units of cores (0 = quiet, 1 = one core busy elsewhere)
        self.foreign_cores = self.foreign / self.wall if self.wall > 0 else 0.0


def wait_quiet(max_wait=120.0, thresh=0.15, window=1.0):
    """Wait (up to max_wait s) until other processes use < thresh cores over `window` s."""
    t0 = time.perf_counter()
    while True:
        with Monitor() as m:
            time.sleep(window)
        if m.foreign_cores < thresh or time.perf_counter() - t0 > max_wait:
            return m.foreign_cores, time.perf_counter() - t0


# --------------------------------------------------------------------------- bench
def run_one(name, warmup, iters, threads, profile, gate=True):
    cfg = CONFIGS[name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    N, S, Fb, L = cfg["N"], cfg["S"], cfg["F"], cfg["L"]
    model = build_model(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    x = torch.randn(N, 1, S, S, S, generator=torch.Generator().manual_seed(1))
    mask = (torch.rand(N, 1, S, S, S, generator=torch.Generator().manual_seed(2)) > 0.5).float()

    fwd_flops, first_flops = analytic_flops(N, S, Fb, L, enc_convs=1 if cfg.get("seed") else 2, cb=cfg.get("Cb"))
    hf = hook_flops(model, x)
    assert hf == fwd_flops, (hf, fwd_flops)
    if CL3D:
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        mask = mask.contiguous(memory_format=torch.channels_last_3d)
    res = dict(config=name, N=N, S=S, F=Fb, L=L, params=nparams, threads=torch.get_num_threads(),
               fwd_gflop=fwd_flops / 1e9)

    def gated(fn, n):
        """Run fn() until n 'clean' samples (little foreign CPU during the call) are
        collected, or 4n+4 attempts.  Returns (clean samples, all samples); each
        sample = (wall_s, foreign_cores, fn's return value)."""
        clean, alls_ = [], []
        attempts = 0
        need_wait = True
        while len(clean) < n and attempts < 4 * n + 4:
            attempts += 1
            if gate and need_wait:  # only pause after a disturbed sample (keeps caches/threads warm)
                wait_quiet(max_wait=60, thresh=0.05, window=0.5)
                fn()  # re-warm after the pause, untimed
            with Monitor() as m:
                out = fn()
            smp = (m.wall, m.foreign_cores, out, m.minflt)
            alls_.append(smp)
            # clean = other processes used at most ~1 scheduler tick + 5% of one core
            ok = m.foreign <= 1.0 / CLK + 0.05 * m.wall
            need_wait = not ok
            if not gate or ok:
                clean.append(smp)
        return clean, alls_

    def summarize(prefix, clean, alls):
        use = clean if len(clean) >= max(1, min(3, iters)) else alls
        w = [c[0] for c in use]
        res.update({f"{prefix}_min": min(w), f"{prefix}_med": statistics.median(w),
                    f"{prefix}_all": w, f"{prefix}_clean": len(clean), f"{prefix}_attempts": len(alls),
                    f"{prefix}_foreign_cores": max(c[1] for c in use),
                    f"{prefix}_minflt_med": statistics.median(c[3] for c in use),
                    f"{prefix}_noisy": use is alls and len(clean) < len(alls)})
        return use

    if cfg["train"]:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            t0 = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
                a, _ = model(x)
            t1 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
                b, probs = model(x)
            loss = total_loss(probs.float(), mask, a.float(), b.float())
            t2 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t3 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            t4 = time.perf_counter()
            return (t1 - t0, t2 - t1, t3 - t2, t4 - t3, float(loss))

        for _ in range(warmup):
            step()
        clean, alls = gated(step, iters)
        use = summarize("train", clean, alls)
        names = ("nograd_fwd", "grad_fwd+loss", "backward", "clip+adam")
        # training step = nograd fwd (F) + grad fwd (F) + backward (2F minus the
        # input-gradient of the first conv, which autograd skips)
        train_flops = 4 * fwd_flops - first_flops
        res.update(train_gflop=train_flops / 1e9,
                   phases_med={k: statistics.median(u[2][i] for u in use) for i, k in enumerate(names)},
                   loss_first=alls[0][2][4], loss_last=alls[-1][2][4])
        if profile:
            with torch.autograd.profiler.profile() as prof:
                step()
            res["profile_train"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)

    # forward-only inference
    model.eval()
    with torch.no_grad():
        for i in range(warmup):
            model(x)
        def fwd():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
                model(x)
        clean, alls = gated(fwd, iters)
        summarize("fwd", clean, alls)
        if profile:
            with torch.autograd.profiler.profile() as prof:
                model(x)
            res["profile_fwd"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14)
    res["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


# glibc malloc settings for the "keep" variant: never give freed memory back to
# the kernel, so steady-state steps take no page faults.  (On this VM a first-touch
# page fault costs ~12-17 us per 4 KiB page, i.e. fresh memory arrives at ~0.3 GB/s,
# and PyTorch's default glibc malloc re-faults ~100-700 MB per step.)
# variant keep+bf16: keep + bfloat16 autocast (oneDNN uses AVX512-BF16/AMX where the CPU has them):
# mixed precision, the CPU counterpart of GPU AMP; compare only with fess's own mixed precision.
BF16 = os.environ.get("UNET3D_BENCH_VARIANT") == "keep+bf16"
# variant keep+cl3d: keep + channels-last-3d (NDHWC) memory format for the weights and the input,
# PyTorch's layout for oneDNN convolutions on CPU (fp32).
CL3D = os.environ.get("UNET3D_BENCH_VARIANT") == "keep+cl3d"

MALLOC_KEEP_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 36)}


def fmt_table(rows):
    hdr = ("cfg", "variant", "N", "S^3", "F", "L", "params", "fwd GFLOP", "fwd min s", "fwd med s", "fwd GF/s",
           "step GFLOP", "step min s", "step med s", "step GF/s", "faults/step", "RSS MiB", "clean/tries fwd;step")
    out = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in rows:
        tr = "train_min" in r
        cells = [r["config"], r["variant"], r["N"], f'{r["S"]}^3', r["F"], r["L"], f'{r["params"]:,}',
                 f'{r["fwd_gflop"]:.2f}', f'{r["fwd_min"]:.3f}', f'{r["fwd_med"]:.3f}',
                 f'{r["fwd_gflop"] / r["fwd_min"]:.1f}',
                 f'{r["train_gflop"]:.2f}' if tr else "-",
                 f'{r["train_min"]:.3f}' if tr else "-",
                 f'{r["train_med"]:.3f}' if tr else "-",
                 f'{r["train_gflop"] / r["train_min"]:.1f}' if tr else "-",
                 f'{r["train_minflt_med"]:.0f}' if tr else f'{r["fwd_minflt_med"]:.0f} (fwd)',
                 f'{r["maxrss_mib"]:.0f}',
                 f'{r["fwd_clean"]}/{r["fwd_attempts"]};' + (f'{r["train_clean"]}/{r["train_attempts"]}' if tr else "-")
                 + (" NOISY" if r.get("fwd_noisy") or r.get("train_noisy") else "")]
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    out.append("")
    out.append("Training-step phase medians (s):")
    for r in rows:
        if "phases_med" in r:
            ph = ", ".join(f"{k} {v:.3f}" for k, v in r["phases_med"].items())
            out.append(f'  {r["config"]}/{r["variant"]}: {ph}   (loss {r["loss_first"]:.5f} -> {r["loss_last"]:.5f})')
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="a,b,c,d")
    ap.add_argument("--variants", default="default,keep,keep+blas512",
                    help="comma list of: default (environment as given, glibc malloc defaults); "
                         "keep (+ glibc malloc keeps freed memory -> no page faults); "
                         "keep+blas512 (keep + OPENBLAS_CORETYPE unset so OpenBLAS autodetects its "
                         "AVX-512 kernels instead of the Haswell/AVX2 ones forced by this environment); "
                         "keep+bf16 (keep + bfloat16 autocast: mixed precision, not part of the default set); "
                         "keep+cl3d (keep + channels-last-3d weights and input, fp32)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print top ops (torch profiler) per config")
    ap.add_argument("--json", default=None)
    ap.add_argument("--wait-quiet", type=float, default=120.0,
                    help="max s to wait for other processes to go idle before each config / after a "
                         "disturbed sample; disturbed samples are retried (0 = no gating)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run a single config, print JSON
    args = ap.parse_args()

    if args.one:
        r = run_one(args.one, args.warmup, args.iters, args.threads, args.profile, gate=args.wait_quiet > 0)
        r["variant"] = os.environ.get("UNET3D_BENCH_VARIANT", "default")
        r["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE")
        print("@@JSON@@" + json.dumps(r))
        return

    print(f"torch {torch.__version__}, threads={args.threads}, warmup={args.warmup}, iters={args.iters}, "
          f"mkldnn={torch.backends.mkldnn.is_available()} openmp={torch.backends.openmp.is_available()}",
          flush=True)
    rows = []
    for name in args.configs.split(","):
        for variant in args.variants.split(","):
            env = {k: v for k, v in os.environ.items() if k not in MALLOC_KEEP_ENV}
            env["UNET3D_BENCH_VARIANT"] = variant
            if variant in ("keep", "keep+blas512", "keep+bf16", "keep+cl3d"):
                env.update(MALLOC_KEEP_ENV)
            elif variant != "default":
                sys.exit(f"unknown variant {variant}")
            if variant == "keep+blas512":
                env.pop("OPENBLAS_CORETYPE", None)
            if args.wait_quiet > 0:
                fc, waited = wait_quiet(args.wait_quiet)
                if waited > 1.5:
                    print(f"(waited {waited:.0f}s for a quiet machine; foreign load now {fc:.2f} cores)", flush=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--one", name, "--warmup", str(args.warmup),
                   "--iters", str(args.iters), "--threads", str(args.threads),
                   "--wait-quiet", str(args.wait_quiet)] + (["--profile"] if args.profile else [])
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                print(f"config {name}/{variant} FAILED rc={p.returncode}\n{p.stdout}\n{p.stderr}", flush=True)
                continue
            line = [l for l in p.stdout.splitlines() if l.startswith("@@JSON@@")][-1]
            r = json.loads(line[len("@@JSON@@"):])
            rows.append(r)
            msg = (f"config {name}/{r['variant']}: fwd min {r['fwd_min']:.3f}s med {r['fwd_med']:.3f}s "
                   f"({r['fwd_clean']} clean of {r['fwd_attempts']})")
            if "train_min" in r:
                msg += (f"; train step min {r['train_min']:.3f}s med {r['train_med']:.3f}s "
                        f"({r['train_clean']} clean of {r['train_attempts']}, {r['train_minflt_med']:.0f} faults/step)")
            print(msg, flush=True)
            if args.profile:
                for k in ("profile_train", "profile_fwd"):
                    if k in r:
                        print(f"--- {name}/{r['variant']} {k}\n{r[k]}")
    print()
    print(fmt_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

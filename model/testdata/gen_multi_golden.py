#!/usr/bin/python3
"""Golden forward pass of multi-channel U-Nets (not run in CI).

    /usr/bin/python3 model/testdata/gen_multi_golden.py
writes model/testdata/multi.{json,bin} for model/golden_test.go's
TestGoldenMultiChannel. Two small unet3d networks (F=4, 2 levels, 16^3,
batch 2, BatchNorm in training mode, dropout 0):

  sig/   4 input channels, 3 sigmoid outputs (the BraTS region layout:
         four modalities in, WT/TC/ET out)
  soft/  1 input channel, 5 softmax outputs (background + 4 classes)

For each: every parameter (engine names and layouts: conv DHWIO, transposed
conv [k,k,k,Co,Ci]), the input x (NDHWC), and PyTorch's logits and output
probabilities (sigmoid per channel, or softmax over the channel axis).
Weights are PyTorch's default initialisation, BatchNorm gamma/beta drawn away
from 1/0 so they matter; weights and input are rounded to float16 first so
the float16 storage is exact. The forward pass runs in float64 from those
values (the reference is then exact up to the engine's own float32
rounding). The network is written functionally, as gen_grad_golden.py's.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(11)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi")
FB, L, S, N = 4, 2, 16, 2
tensors, values, blob = {}, {}, bytearray()


def put(name, t, dtype="f32"):
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    a = a.astype("<f2" if dtype == "f16" else "<f4")
    tensors[name] = {"shape": list(a.shape), "dtype": dtype, "offset": len(blob)}
    blob.extend(a.tobytes())
    if len(blob) % 4:
        blob.extend(b"\0" * (4 - len(blob) % 4))


def half(t):
    return t.detach().half().double()


def build(cin, cout):
    P = {}

    def conv_param(name, ci, co, k):
        m = torch.nn.Conv3d(ci, co, k)
        P[name + ".w"] = half(m.weight.permute(2, 3, 4, 1, 0).contiguous())
        P[name + ".b"] = half(m.bias)

    def convt_param(name, ci, co):
        m = torch.nn.ConvTranspose3d(ci, co, 2, stride=2)
        P[name + ".w"] = half(m.weight.permute(2, 3, 4, 1, 0).contiguous())  # [k,k,k,Co,Ci]
        P[name + ".b"] = half(m.bias)

    def bn_param(name, c):
        P[name + ".gamma"] = half(torch.rand(c) + 0.5)
        P[name + ".beta"] = half(torch.randn(c) * 0.1)

    def block_param(name, ci, co):
        conv_param(name + ".conv", ci, co, 3)
        bn_param(name + ".bn", co)

    c = cin
    for i in range(L):
        co = FB * 2 ** i
        block_param(f"enc{i}.0", c, co)
        block_param(f"enc{i}.1", co, co)
        c = co
    cb = FB * 2 ** L
    block_param("bott.0", c, cb)
    block_param("bott.1", cb, cb)
    c = cb
    for i in reversed(range(L)):
        co = FB * 2 ** i
        convt_param(f"dec{i}.up", c, co)
        bn_param(f"dec{i}.upbn", co)
        block_param(f"dec{i}.0", 2 * co, co)
        block_param(f"dec{i}.1", co, co)
        c = co
    conv_param("final", c, cout, 1)
    return P


def forward(P, x):
    """x: NDHWC float64; returns logits NDHWC."""

    def conv(h, name, pad=1):
        return F.conv3d(h, P[name + ".w"].permute(4, 3, 0, 1, 2), P[name + ".b"], padding=pad)

    def bn(h, name):
        return F.batch_norm(h, None, None, P[name + ".gamma"], P[name + ".beta"], training=True, eps=1e-5)

    def block(h, name):
        return F.relu(bn(conv(h, name + ".conv"), name + ".bn"))

    h = x.permute(0, 4, 1, 2, 3)
    skips = []
    for i in range(L):
        h = block(block(h, f"enc{i}.0"), f"enc{i}.1")
        skips.append(h)
        h = F.max_pool3d(h, 2)
    h = block(block(h, "bott.0"), "bott.1")
    for i in reversed(range(L)):
        u = F.conv_transpose3d(h, P[f"dec{i}.up.w"].permute(4, 3, 0, 1, 2), P[f"dec{i}.up.b"], stride=2)
        h = torch.cat([bn(u, f"dec{i}.upbn"), skips[i]], 1)
        h = block(block(h, f"dec{i}.0"), f"dec{i}.1")
    return conv(h, "final", 0).permute(0, 2, 3, 4, 1)


for tag, cin, cout, softmax in [("sig", 4, 3, False), ("soft", 1, 5, True)]:
    P = build(cin, cout)
    for k, v in P.items():
        put(f"{tag}/param/{k}", v, "f16")
    x = half(torch.randn(N, S, S, S, cin))
    put(f"{tag}/x", x, "f16")
    with torch.no_grad():
        z = forward(P, x)
        p = torch.softmax(z, dim=-1) if softmax else torch.sigmoid(z)
    put(f"{tag}/logits", z)
    put(f"{tag}/probs", p)
    values[f"{tag}/config"] = [cin, cout, 1.0 if softmax else 0.0]
    print(tag, "logits", tuple(z.shape), "max |z|", float(z.abs().max()))

with open(OUT + ".bin", "wb") as f:
    f.write(bytes(blob))
with open(OUT + ".json", "w") as f:
    json.dump({"torch": torch.__version__, "tensors": tensors, "values": values}, f, indent=0, sort_keys=True)
print(f"wrote {OUT}.bin ({len(blob)} bytes)")

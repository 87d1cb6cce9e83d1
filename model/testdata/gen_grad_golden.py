#!/usr/bin/python3
"""Golden whole-network gradient (not run in CI).

    /usr/bin/python3 model/testdata/gen_grad_golden.py
writes model/testdata/grad.{json,bin}: a small unet3d (F=2, 2 levels, 8^3,
batch 2, BatchNorm in training mode, dropout 0) with PyTorch-initialised
float32 weights, an input and mask, and the batch Dice loss and its gradient
with respect to every parameter computed by PyTorch autograd in float64 from
those float32 values. The network is the same structure as gen_golden.py's,
written functionally on engine-layout weights (see autodiff/testdata).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(7)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grad")
FB, L, S, N = 2, 2, 8, 2
tensors, values, blob = {}, {}, bytearray()


def put(name, t):
    a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
    tensors[name] = {"shape": list(a.shape), "dtype": "f32", "offset": len(blob)}
    blob.extend(a.tobytes())


P = {}  # engine name -> float64 leaf in engine layout (DHWIO / [k,k,k,Co,Ci])


def conv_param(name, cin, cout, k):
    m = torch.nn.Conv3d(cin, cout, k)  # PyTorch default init
    P[name + ".w"] = m.weight.detach().permute(2, 3, 4, 1, 0).contiguous()
    P[name + ".b"] = m.bias.detach().clone()


def convt_param(name, cin, cout):
    m = torch.nn.ConvTranspose3d(cin, cout, 2, stride=2)
    P[name + ".w"] = m.weight.detach().permute(2, 3, 4, 1, 0).contiguous()  # [k,k,k,Co,Ci]
    P[name + ".b"] = m.bias.detach().clone()


def bn_param(name, c):
    P[name + ".gamma"] = torch.rand(c) + 0.5  # not 1, so gamma matters
    P[name + ".beta"] = torch.randn(c) * 0.1


def block_param(name, cin, cout):
    conv_param(name + ".conv", cin, cout, 3)
    bn_param(name + ".bn", cout)


c = 1
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
conv_param("final", c, 1, 1)

for k in P:
    P[k] = P[k].float().double().requires_grad_()
    put("param/" + k, P[k])
x = torch.randn(N, S, S, S, 1).float()
y = (torch.rand(N, S, S, S, 1) > 0.6).float()
put("x", x)
put("y", y)


def conv(h, name, pad=1):
    return F.conv3d(h, P[name + ".w"].permute(4, 3, 0, 1, 2), P[name + ".b"], padding=pad)


def bn(h, name):
    return F.batch_norm(h, None, None, P[name + ".gamma"], P[name + ".beta"], training=True, eps=1e-5)


def block(h, name):
    return F.relu(bn(conv(h, name + ".conv"), name + ".bn"))


h = x.double().permute(0, 4, 1, 2, 3)
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
p = torch.sigmoid(conv(h, "final", 0))
yt = y.double().permute(0, 4, 1, 2, 3)
loss = 1 - (2 * (p * yt).sum() + 1e-5) / (yt.sum() + p.sum() + 1e-5)
loss.backward()
values["loss"] = [float(loss)]
for k in P:
    put("grad/" + k, P[k].grad)
with open(OUT + ".bin", "wb") as f:
    f.write(bytes(blob))
with open(OUT + ".json", "w") as f:
    json.dump({"torch": torch.__version__, "tensors": tensors, "values": values}, f, indent=0, sort_keys=True)
print(f"wrote {OUT}.bin ({len(blob)} bytes), loss {float(loss)}")

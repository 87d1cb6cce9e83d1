#!/usr/bin/python3
"""Write PyTorch golden fixtures for the autodiff ops (not run in CI).

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 autodiff/testdata/gen_golden.py
Writes autodiff/testdata/ops.json (index) and ops.bin (little-endian float32).
Every volume is stored permuted to the engine's layouts: activations
NCDHW -> NDHWC, Conv3d weights [Co,Ci,kd,kh,kw] -> DHWIO [kd,kh,kw,Ci,Co],
ConvTranspose3d weights [Ci,Co,kd,kh,kw] -> [kd,kh,kw,Co,Ci].
For each op the scalar L = sum(r * y) with a stored random r is
back-propagated, so the stored gradients are dL/d(input).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")

tensors, values, blob = {}, {}, bytearray()


def put(name, t, act=False, wconv=False):
    a = t.detach().cpu()
    if act:
        a = a.permute(0, 2, 3, 4, 1)
    if wconv:
        a = a.permute(2, 3, 4, 1, 0)
    a = np.ascontiguousarray(a.numpy().astype("<f4"))
    tensors[name] = {"shape": list(a.shape), "dtype": "f32", "offset": len(blob)}
    blob.extend(a.tobytes())


def vol(*shape):
    return torch.randn(*shape, requires_grad=True)


def backprop(name, y):
    r = torch.rand_like(y) * 2 - 1
    (y * r).sum().backward()
    put(name + "/r", r, act=(y.dim() == 5))
    put(name + "/y", y, act=(y.dim() == 5))


# Conv3d: 3x3x3 'same' stride 1, and 3x3x3 stride 2 padding 1, with bias.
for tag, stride, pad, shape in [("conv_s1", 1, 1, (2, 3, 6, 7, 5)), ("conv_s2", 2, 1, (2, 3, 7, 6, 5))]:
    x = vol(*shape)
    w = (torch.randn(4, 3, 3, 3, 3) * 0.3).requires_grad_()
    b = torch.randn(4, requires_grad=True)
    y = F.conv3d(x, w, b, stride=stride, padding=pad)
    backprop(tag, y)
    put(tag + "/x", x, act=True)
    put(tag + "/w", w, wconv=True)
    put(tag + "/b", b)
    put(tag + "/gx", x.grad, act=True)
    put(tag + "/gw", w.grad, wconv=True)
    put(tag + "/gb", b.grad)
    values[tag + "/stride_pad"] = [stride, pad]

# ConvTranspose3d: kernel 2 stride 2, and kernel 3 stride 2 padding 1.
for tag, k, stride, pad in [("convt_k2s2", 2, 2, 0), ("convt_k3s2p1", 3, 2, 1)]:
    x = vol(2, 4, 3, 4, 3)
    w = (torch.randn(4, 3, k, k, k) * 0.3).requires_grad_()  # [Ci, Co, k, k, k]
    b = torch.randn(3, requires_grad=True)
    y = F.conv_transpose3d(x, w, b, stride=stride, padding=pad)
    backprop(tag, y)
    put(tag + "/x", x, act=True)
    put(tag + "/w", w, wconv=True)
    put(tag + "/b", b)
    put(tag + "/gx", x.grad, act=True)
    put(tag + "/gw", w.grad, wconv=True)
    put(tag + "/gb", b.grad)
    values[tag + "/k_stride_pad"] = [k, stride, pad]

# MaxPool3d 2x2x2 (odd trailing size dropped).
x = vol(2, 3, 6, 5, 4)
y = F.max_pool3d(x, 2)
backprop("maxpool", y)
put("maxpool/x", x, act=True)
put("maxpool/gx", x.grad, act=True)

# BatchNorm3d, training mode (one step from running stats 0/1 with momentum
# 0.1), then eval mode with the updated running statistics.
bn = torch.nn.BatchNorm3d(3, momentum=0.1, eps=1e-5)
with torch.no_grad():
    bn.weight.copy_(torch.rand(3) + 0.5)
    bn.bias.copy_(torch.randn(3))
put("bn/gamma", bn.weight)
put("bn/beta", bn.bias)
x = (vol(2, 3, 4, 5, 3).detach() * 2 + 1).requires_grad_()
bn.train()
y = bn(x)
backprop("bn_train", y)
put("bn_train/x", x, act=True)
put("bn_train/gx", x.grad, act=True)
put("bn_train/ggamma", bn.weight.grad)
put("bn_train/gbeta", bn.bias.grad)
put("bn_train/running_mean", bn.running_mean)
put("bn_train/running_var", bn.running_var)
bn.zero_grad()
bn.eval()
x2 = vol(2, 3, 4, 5, 3)
y2 = bn(x2)
backprop("bn_eval", y2)
put("bn_eval/x", x2, act=True)
put("bn_eval/gx", x2.grad, act=True)
put("bn_eval/ggamma", bn.weight.grad)
put("bn_eval/gbeta", bn.bias.grad)

with open(OUT + ".bin", "wb") as f:
    f.write(bytes(blob))
with open(OUT + ".json", "w") as f:
    json.dump({"torch": torch.__version__, "tensors": tensors, "values": values}, f, indent=0, sort_keys=True)
print(f"wrote {OUT}.bin ({len(blob)} bytes), {len(tensors)} tensors")

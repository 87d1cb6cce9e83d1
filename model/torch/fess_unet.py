"""PyTorch version of fess's 3-D U-Net (package model), for running weights
trained by fess in PyTorch and for handing PyTorch-trained weights back to
fess (`fess train --init`, `fess import`).

Axis order
----------
This module uses MONAI's order: a batch is N x C x X x Y x Z, where X, Y, Z
are the voxel axes of the NIfTI array as nibabel returns it
(np.asarray(img.dataobj)), X first. fess itself stores batches
channels-last as N x Z x Y x X x C; the two are related by
permute(0, 4, 3, 2, 1). Convolution kernels follow the same rule: a torch
Conv3d weight [Cout, Cin, kx, ky, kz] is fess's [kz, ky, kx, Cin, Cout]
with its axes reversed, a ConvTranspose3d weight [Cin, Cout, kx, ky, kz] is
fess's [kz, ky, kx, Cout, Cin] reversed. `fess export --format safetensors`
writes the weights already in this order, under the state_dict names below.

Network (config = fess's model.Config as JSON, e.g. the "model" object of a
run's config.json or the "config" metadata of an exported file):

    block = Conv3d 3x3x3 pad 1 (bias) -> BatchNorm3d -> ReLU -> Dropout
    enc.i      encoder level i = 0..L-1: two blocks (preset "seed": one)
               to F*2^i channels; the output is skip i, then MaxPool 2
    bott       two blocks to Cb channels (BottleneckChannels; default
               F*2^L, 1024 for "seed")
    dec.i      decoder level i (run for i = L-1..0): up = ConvTranspose3d
               2x2x2 stride 2 (bias) to F*2^i, upbn = BatchNorm3d (absent
               with NoUpBN), concat [up, skip i] on channels, blocks 0, 1
    final      Conv3d 1x1x1 to K = OutChannels

forward(x) returns the head's LOGITS N x K x X x Y x Z. Probabilities are
sigmoid(logits) per channel (independent regions), or with Softmax
softmax(logits, dim=1) with channel 0 the background; `probabilities(x)`
applies the right one. BatchNorm: momentum 0.1, eps 1e-5 ("unet3d"); Keras'
0.01 and 1e-3 ("seed"). Dropout is elementwise (nn.Dropout), as in fess, and
inactive in eval().

state_dict names (module order), per block b = enc.i.j, bott.j, dec.i.j:
    b.conv.weight b.conv.bias b.bn.weight b.bn.bias b.bn.running_mean
    b.bn.running_var b.bn.num_batches_tracked
and per decoder level dec.i.up.weight, dec.i.up.bias, dec.i.upbn.* (as bn),
then final.weight, final.bias. fess does not count BatchNorm batches, so
exported num_batches_tracked are 0 (momentum is fixed, so PyTorch does not
read them).

Only torch, numpy, json and struct are needed: load_safetensors and
save_safetensors read and write the safetensors format themselves.
"""
import collections
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["build", "resolve", "FessUNet3D", "load_safetensors", "save_safetensors", "load_fess"]


def resolve(config):
    """Return config with fess's defaults filled in (model.Resolve)."""
    c = dict(config or {})
    preset = c.get("Preset") or "unet3d"
    c["Preset"] = preset

    def default(key, value):
        if not c.get(key):
            c[key] = value

    if preset == "unet3d":
        default("Filters", 8)
        default("Levels", 3)
        default("InputSize", 32)
    elif preset == "seed":
        default("Filters", 32)
        default("Levels", 4)
        default("InputSize", 64)
        default("BottleneckChannels", 1024)
        if not c.get("Dropout"):
            c["Dropout"] = 0.2
    else:
        raise ValueError(f"unknown preset {preset!r} (want unet3d or seed)")
    if (c.get("Dropout") or 0) < 0:
        c["Dropout"] = 0.0
    c["Dropout"] = float(c.get("Dropout") or 0.0)
    default("InChannels", 1)
    default("OutChannels", 1)
    default("BottleneckChannels", c["Filters"] << c["Levels"])
    c["NoUpBN"] = bool(c.get("NoUpBN", False))
    c["Softmax"] = bool(c.get("Softmax", False))
    if c["Softmax"] and c["OutChannels"] < 2:
        raise ValueError("softmax outputs need OutChannels >= 2 (the background included)")
    return c


class Block(nn.Module):
    """Conv3d 3x3x3 'same' -> BatchNorm3d -> ReLU -> Dropout."""

    def __init__(self, cin, cout, eps, momentum, dropout):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm3d(cout, eps=eps, momentum=momentum)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(F.relu(self.bn(self.conv(x))))


class DecoderLevel(nn.Module):
    """up (ConvTranspose3d 2x2x2 s2) -> upbn -> concat [up, skip] -> blocks 0, 1."""

    def __init__(self, cin, cout, upbn, eps, momentum, dropout):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cout, 2, stride=2, bias=True)
        self.upbn = nn.BatchNorm3d(cout, eps=eps, momentum=momentum) if upbn else None
        self.add_module("0", Block(2 * cout, cout, eps, momentum, dropout))
        self.add_module("1", Block(cout, cout, eps, momentum, dropout))

    def forward(self, x, skip):
        u = self.up(x)
        if self.upbn is not None:
            u = self.upbn(u)
        h = torch.cat([u, skip], dim=1)
        return self._modules["1"](self._modules["0"](h))


class FessUNet3D(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = resolve(config)
        self.config = c
        self.softmax = c["Softmax"]
        seed = c["Preset"] == "seed"
        eps, momentum = (1e-3, 0.01) if seed else (1e-5, 0.1)
        p, fb, levels = c["Dropout"], c["Filters"], c["Levels"]
        per_level = 1 if seed else 2
        self.enc = nn.ModuleList()
        ch = c["InChannels"]
        for i in range(levels):
            co = fb << i
            lv = nn.ModuleList()
            for _ in range(per_level):
                lv.append(Block(ch, co, eps, momentum, p))
                ch = co
            self.enc.append(lv)
        cb = c["BottleneckChannels"]
        self.bott = nn.ModuleList([Block(ch, cb, eps, momentum, p), Block(cb, cb, eps, momentum, p)])
        self.dec = nn.ModuleList()
        for i in range(levels):
            cin = cb if i == levels - 1 else fb << (i + 1)
            self.dec.append(DecoderLevel(cin, fb << i, not c["NoUpBN"], eps, momentum, p))
        self.final = nn.Conv3d(fb, c["OutChannels"], 1, bias=True)
        if seed:  # Keras initialisation: glorot_uniform, zero bias
            for m in self.modules():
                if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        """x: N x C x X x Y x Z (X, Y, Z divisible by 2^Levels); returns logits N x K x X x Y x Z."""
        skips = []
        for lv in self.enc:
            for b in lv:
                x = b(x)
            skips.append(x)
            x = F.max_pool3d(x, 2)
        for b in self.bott:
            x = b(x)
        for i in reversed(range(len(self.dec))):
            x = self.dec[i](x, skips[i])
        return self.final(x)

    def probabilities(self, x):
        """sigmoid per channel, or softmax over the channels (channel 0 the background)."""
        z = self.forward(x)
        return torch.softmax(z, dim=1) if self.softmax else torch.sigmoid(z)


def build(config):
    """Build the network of a fess model config (dict; Go field names)."""
    return FessUNet3D(config)


_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def load_safetensors(path):
    """Read a safetensors file: (OrderedDict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = collections.OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        dt = info["dtype"]
        if dt == "BF16":
            a = np.frombuffer(body[start:end], dtype="<u2").astype(np.uint32) << 16
            a = a.view(np.float32)
        elif dt in _DTYPES:
            a = np.frombuffer(body[start:end], dtype=np.dtype(_DTYPES[dt]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dt}")
        out[name] = torch.from_numpy(a.reshape(shape).copy())
    return out, meta


_NAMES = {np.dtype(v).name: k for k, v in _DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    """Write name -> tensor (torch or numpy) as a safetensors file, in the given order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.asarray(t)  # (np.ascontiguousarray would turn a scalar into shape [1])
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[name] = {"dtype": _NAMES[a.dtype.name], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_fess(path):
    """Build the network from a fess-exported safetensors file's "config"
    metadata and load its weights (strict); returned in eval mode. A fess
    checkpoint (RUN/best.safetensors) works too: its training state, the
    entries named "fess/...", is left out."""
    sd, meta = load_safetensors(path)
    sd = collections.OrderedDict((k, v) for k, v in sd.items() if not k.startswith("fess/"))
    if "config" not in meta:
        raise ValueError(f"{path}: no 'config' metadata (build(config) and load_state_dict yourself)")
    m = build(json.loads(meta["config"]))
    m.load_state_dict(sd, strict=True)
    return m.eval()

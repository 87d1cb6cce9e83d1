#!/usr/bin/python3
"""Test helper for fess's Go tests (model/torch_py_test.go,
cmd/fess/torch_test.go): runs fess_unet.py's module on files the tests write.

    check_fess.py forward WEIGHTS INPUTS OUT
        load_fess(WEIGHTS) (strict load_state_dict), eval mode; for every
        tensor NAME in INPUTS (N x C x X x Y x Z) writes the logits as NAME
        to OUT (safetensors).
    check_fess.py firststep CONFIG_JSON SEED BATCH WEIGHTS [BARE_WEIGHTS]
        builds the module of CONFIG_JSON after torch.manual_seed(SEED), with
        BatchNorm gamma/beta drawn away from 1/0 and the head's weight
        scaled by 20; saves its state_dict to
        WEIGHTS with the "config" metadata (and to BARE_WEIGHTS without any);
        then prints {"loss": L}, the soft Dice loss of one training-mode
        forward (BatchNorm batch statistics, dropout as configured) on
        BATCH's "x" (N x C x X x Y x Z) against its "y" (N x K x X x Y x Z):
        fess's loss.Dice, per channel over the whole batch, eps 1e-5, mean
        over the channels; with Softmax over the foreground channels 1..K-1.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fess_unet  # noqa: E402

torch.set_num_threads(1)


def forward(weights, inputs, out):
    m = fess_unet.load_fess(weights)
    xs, _ = fess_unet.load_safetensors(inputs)
    res = {}
    with torch.no_grad():
        for name, x in xs.items():
            res[name] = m(x.float())
    fess_unet.save_safetensors(out, res)


def dice(p, y, eps=1e-5):
    dims = [0, 2, 3, 4]
    inter = (p * y).sum(dims)
    den = y.sum(dims) + p.sum(dims) + eps
    return 1 - ((2 * inter + eps) / den).mean()


def firststep(config_json, seed, batch, weights, bare=None):
    cfg = json.loads(config_json)
    torch.manual_seed(int(seed))
    m = fess_unet.build(cfg)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm3d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)
        # A steeper head, so the loss depends on the voxels' logits rather
        # than on probabilities all near 0.5.
        m.final.weight.mul_(20)
    sd = m.state_dict()
    fess_unet.save_safetensors(weights, sd, {"config": json.dumps(cfg)})
    if bare:
        fess_unet.save_safetensors(bare, sd)
    b, _ = fess_unet.load_safetensors(batch)
    m.train()
    z = m(b["x"].float())
    y = b["y"].float()
    if m.softmax:
        p = torch.softmax(z, dim=1)[:, 1:]
        y = y[:, 1:]
    else:
        p = torch.sigmoid(z)
    print(json.dumps({"loss": float(dice(p, y))}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"forward": forward, "firststep": firststep}[cmd](*args)

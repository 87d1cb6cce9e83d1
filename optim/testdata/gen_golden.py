#!/usr/bin/python3
"""Golden values for package optim from PyTorch (not run in CI).

    /usr/bin/python3 optim/testdata/gen_golden.py
writes optim/testdata/optim.json: for each optimiser setting, the parameter
after each of 4 steps, starting from p0 with the gradient sequence grads
(a fixed gradient list, so no model is involved), plus clip_grad_norm_ on
two tensors.
"""
import json
import os

import torch

p0 = [0.5, -1.25, 2.0, 0.0, -0.003]
grads = [[0.1, -0.2, 0.3, 1e-9, 0.0], [0.05, 0.4, -0.3, -1e-9, 0.0],
         [-0.2, 0.1, 0.0, 2e-9, 1e-3], [0.3, -0.05, 0.2, 0.0, -1e-3]]
cases = {
    "adam": (torch.optim.Adam, dict(lr=1e-2)),
    "adam_l2": (torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
}
out = {"p0": p0, "grads": grads}
for name, (cls, kw) in cases.items():
    p = torch.tensor(p0, dtype=torch.float32, requires_grad=True)
    opt = cls([p], **kw)
    traj = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        traj.append([float(v) for v in p.detach()])
    out[name] = {"options": kw, "trajectory": traj}

a = torch.tensor([3.0, 4.0], requires_grad=True)
b = torch.tensor([[1.0, 2.0], [2.0, 0.5]], requires_grad=True)
a.grad = torch.tensor([3.0, 4.0])
b.grad = torch.tensor([[1.0, 2.0], [2.0, 0.5]])
n = torch.nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
out["clip"] = {"norm": float(n), "a": a.grad.tolist(), "b": sum(b.grad.tolist(), [])}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.json"), "w") as f:
    json.dump(out, f, indent=1)
print("ok")

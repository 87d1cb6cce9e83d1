#!/usr/bin/python3
"""Write PyTorch golden fixtures for package loss (not run in CI).

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 loss/testdata/gen_golden.py
Writes loss/testdata/losses.json (index, read by internal/golden) and
losses.bin (little-endian float32). Volumes are stored channels-last
(NDHWC) as the engine uses them; each entry NAME/loss is the loss value and
NAME/g<input> the gradient of the loss with respect to that input.

Each reference below is the straightforward PyTorch formula (or the PyTorch
function where one exists), written independently of the Go code:
- FESS contrastive term: contrastive_loss of bench/peer/torch_unet3d.py
  (the PyTorch peer), on NCDHW tensors.
- NT-Xent: cosine-similarity matrix, diagonal masked with -inf,
  F.cross_entropy with the other view as the target.
- InfoNCE: MoCo's logits [q.k_batch, q.queue] and F.cross_entropy.
- BCE: F.binary_cross_entropy on clamped p; F.binary_cross_entropy_with_logits.
- focal: torchvision.ops.sigmoid_focal_loss's formula on probabilities.
- K channels: per-channel sums over (batch, voxels) and the mean over
  channels written out; softmax via torch.softmax over the channel axis,
  cross-entropy F.cross_entropy on the logits.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(20261127)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses")

tensors, values, blob = {}, {}, bytearray()


def put(name, t, ncdhw=False):
    a = t.detach().cpu()
    if ncdhw:
        a = a.permute(0, 2, 3, 4, 1)
    a = np.ascontiguousarray(a.numpy().astype("<f4"))
    tensors[name] = {"shape": list(a.shape), "dtype": "f32", "offset": len(blob)}
    blob.extend(a.tobytes())


def val(name, v):
    values[name] = [float(v)]


def leaf(t):
    return t.detach().clone().requires_grad_()


# ---------------------------------------------------------------- FESS term
def contrastive_loss(a, b, temp=0.5):
    # copied formula of the PyTorch peer (bench/peer/torch_unet3d.py)
    a = F.normalize(a.flatten(2), p=2, dim=2)
    b = F.normalize(b.flatten(2), p=2, dim=2)
    sim = (a * b).sum(dim=2)  # (N, C)
    return -(torch.log_softmax((sim / temp).flatten(), dim=0)).mean()


def soft_dice_loss(p, y, eps=1e-5):
    return 1 - (2 * (p * y).sum() + eps) / (y.sum() + p.sum() + eps)


# con: random ReLU-like maps (N=2, C=4, 3x3x2); con_zero: prev has an
# all-zero channel (n=0, c=1), so that pair has s = 0.
for tag, zero in [("con", False), ("con_zero", True)]:
    prev = torch.relu(torch.randn(2, 4, 3, 3, 2) + 0.3)
    pres = torch.relu(torch.randn(2, 4, 3, 3, 2) + 0.3)
    if zero:
        prev[0, 1] = 0
    prev, pres = leaf(prev), leaf(pres)
    L = contrastive_loss(prev, pres, 0.5)
    L.backward()
    put(tag + "/prev", prev, ncdhw=True)
    put(tag + "/pres", pres, ncdhw=True)
    put(tag + "/gprev", prev.grad, ncdhw=True)
    put(tag + "/gpres", pres.grad, ncdhw=True)
    val(tag + "/loss", L.item())

# fess: total = 0.5*dice + 0.5*1e-4*con (the peer's total_loss), the dice
# with the peer's soft_dice_loss; gradient w.r.t. probs and pres (prev
# detached, as in training).
probs = leaf(torch.sigmoid(torch.randn(2, 1, 4, 4, 4)))
target = (torch.rand(2, 1, 4, 4, 4) < 0.4).float()
prev = torch.relu(torch.randn(2, 4, 2, 2, 2))
pres = leaf(torch.relu(torch.randn(2, 4, 2, 2, 2) + 0.2))
d = soft_dice_loss(probs, target)
c = contrastive_loss(prev, pres, 0.5)
total = 0.5 * d + 0.5 * 1e-4 * c
total.backward()
for n, t in [("probs", probs), ("target", target), ("prev", prev), ("pres", pres)]:
    put("fess/" + n, t, ncdhw=True)
put("fess/gprobs", probs.grad, ncdhw=True)
put("fess/gpres", pres.grad, ncdhw=True)
val("fess/loss", total.item())
val("fess/dice", d.item())
val("fess/con", c.item())


# ---------------------------------------------------------------- NT-Xent
def ntxent(z1, z2, temp):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temp
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


z1, z2 = leaf(torch.randn(4, 8)), leaf(torch.randn(4, 8))
L = ntxent(z1, z2, 0.5)
L.backward()
for n, t in [("z1", z1), ("z2", z2), ("gz1", z1.grad), ("gz2", z2.grad)]:
    put("ntxent/" + n, t)
val("ntxent/loss", L.item())

# projection head: GAP -> Linear(4,16) -> ReLU -> Linear(16,8), then NT-Xent
# of the two views' projections; gradients w.r.t. the head's weights.
b1v = torch.randn(3, 4, 2, 2, 2)
b2v = torch.randn(3, 4, 2, 2, 2)
W1, B1 = leaf(torch.randn(16, 4) * 0.5), leaf(torch.randn(16) * 0.1)
W2, B2 = leaf(torch.randn(8, 16) * 0.25), leaf(torch.randn(8) * 0.1)


def head(x):
    return F.linear(torch.relu(F.linear(x.mean(dim=(2, 3, 4)), W1, B1)), W2, B2)


p1, p2 = head(b1v), head(b2v)
L = ntxent(p1, p2, 0.5)
L.backward()
put("head/x1", b1v, ncdhw=True)
put("head/x2", b2v, ncdhw=True)
put("head/w1", W1.t())  # engine Dense weights are [in,out]
put("head/b1", B1)
put("head/w2", W2.t())
put("head/b2", B2)
put("head/z1", p1)
put("head/gw1", W1.grad.t())
put("head/gb1", B1.grad)
put("head/gw2", W2.grad.t())
put("head/gb2", B2.grad)
val("head/loss", L.item())


# ---------------------------------------------------------------- InfoNCE
def infonce(q, k, queue, temp):
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = q @ k.t()
    if queue is not None:
        logits = torch.cat([logits, q @ F.normalize(queue, dim=1).t()], dim=1)
    return F.cross_entropy(logits / temp, torch.arange(q.shape[0]))


for tag, qlen in [("infonce", 6), ("infonce_noqueue", 0)]:
    q, k = leaf(torch.randn(4, 8)), leaf(torch.randn(4, 8))
    queue = torch.randn(qlen, 8) if qlen else None
    L = infonce(q, k, queue, 0.5)
    L.backward()
    for n, t in [("q", q), ("k", k), ("gq", q.grad), ("gk", k.grad)]:
        put(tag + "/" + n, t)
    if queue is not None:
        put(tag + "/queue", queue)  # raw rows, in push order
    val(tag + "/loss", L.item())


# ---------------------------------------------------------------- segmentation losses
def bce(p, y):
    return F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y)


def focal(p, y, alpha, gamma):
    # torchvision.ops.sigmoid_focal_loss, on probabilities
    ce = F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean()


def tversky(p, y, alpha, beta, eps):
    tp = (p * y).sum()
    fp = (p * (1 - y)).sum()
    fn = ((1 - p) * y).sum()
    return 1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)


def dice_per_sample(p, y, eps=1e-5):
    n = p.shape[0]
    p, y = p.reshape(n, -1), y.reshape(n, -1)
    return 1 - ((2 * (p * y).sum(1) + eps) / (y.sum(1) + p.sum(1) + eps)).mean()


logits = torch.randn(2, 1, 4, 4, 4) * 2
logits[0, 0, 0, 0, :2] = torch.tensor([30.0, -30.0])  # saturated: exercises the clamp
y = (torch.rand(2, 1, 4, 4, 4) < 0.35).float()
ysoft = torch.rand(2, 1, 4, 4, 4)
put("seg/logits", logits, ncdhw=True)
put("seg/p", torch.sigmoid(logits), ncdhw=True)
put("seg/y", y, ncdhw=True)
put("seg/ysoft", ysoft, ncdhw=True)
yempty = torch.zeros_like(y)
put("seg/yempty", yempty, ncdhw=True)

cases = {
    "bce": lambda p, y: bce(p, y),
    "dicebce": lambda p, y: soft_dice_loss(p, y) + bce(p, y),
    "dicebce_w": lambda p, y: 0.7 * soft_dice_loss(p, y) + 0.3 * bce(p, y),
    "focal": lambda p, y: focal(p, y, 0.25, 2.0),
    "focal_g15": lambda p, y: focal(p, y, 0.25, 1.5),
    "focal_noalpha": lambda p, y: focal(p, y, -1, 3.0),
    "tversky": lambda p, y: tversky(p, y, 0.3, 0.7, 1e-5),
    "dice": lambda p, y: soft_dice_loss(p, y),
    "dice_ps": lambda p, y: dice_per_sample(p, y),
}
for tname, tgt in [("y", y), ("ysoft", ysoft), ("yempty", yempty)]:
    for name, fn in cases.items():
        p = leaf(torch.sigmoid(logits))
        L = fn(p, tgt)
        L.backward()
        val("seg/%s/%s/loss" % (name, tname), L.item())
        put("seg/%s/%s/gp" % (name, tname), p.grad, ncdhw=True)
    z = leaf(logits)
    L = F.binary_cross_entropy_with_logits(z, tgt)
    L.backward()
    val("seg/bcelogits/%s/loss" % tname, L.item())
    put("seg/bcelogits/%s/gz" % tname, z.grad, ncdhw=True)

# ---------------------------------------------------------------- K output channels
# Appended after every earlier case, so the random draws above (and their
# fixture values) are unchanged. Tensors are NCDHW here, stored NDHWC.
def dice_mc(p, y, eps=1e-5):
    # per-channel Dice summed over batch and voxels, mean over channels
    dims = (0, 2, 3, 4)
    return (1 - (2 * (p * y).sum(dims) + eps) / (y.sum(dims) + p.sum(dims) + eps)).mean()


def dice_ps_mc(p, y, eps=1e-5):
    # per (sample, channel) Dice summed over voxels, mean over both
    dims = (2, 3, 4)
    return (1 - (2 * (p * y).sum(dims) + eps) / (y.sum(dims) + p.sum(dims) + eps)).mean()


def tversky_mc(p, y, alpha, beta, eps):
    dims = (0, 2, 3, 4)
    tp = (p * y).sum(dims)
    fp = (p * (1 - y)).sum(dims)
    fn = ((1 - p) * y).sum(dims)
    return (1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)).mean()


# mc: K = 3 sigmoid regions; channel 2's target is empty everywhere (its
# Dice then pushes p towards 0), the others about 35 % foreground.
mlogits = torch.randn(2, 3, 4, 4, 4) * 2
my = (torch.rand(2, 3, 4, 4, 4) < 0.35).float()
my[:, 2] = 0
put("mc/p", torch.sigmoid(mlogits), ncdhw=True)
put("mc/y", my, ncdhw=True)
mcases = {
    "dice": lambda p, y: dice_mc(p, y),
    "dice_ps": lambda p, y: dice_ps_mc(p, y),
    "tversky": lambda p, y: tversky_mc(p, y, 0.3, 0.7, 1e-5),
    "bce": lambda p, y: bce(p, y),
    "dicebce": lambda p, y: dice_mc(p, y) + bce(p, y),
    "focal": lambda p, y: focal(p, y, 0.25, 2.0),
}
for name, fn in mcases.items():
    p = leaf(torch.sigmoid(mlogits))
    L = fn(p, my)
    L.backward()
    val("mc/%s/loss" % name, L.item())
    put("mc/%s/gp" % name, p.grad, ncdhw=True)

# mcfess: FESS with K = 3 probabilities: the Dice part is the channel-mean
# batch Dice, the contrastive part the peer's contrastive_loss as above.
probs = leaf(torch.sigmoid(torch.randn(2, 3, 4, 4, 4)))
target = (torch.rand(2, 3, 4, 4, 4) < 0.4).float()
prev = torch.relu(torch.randn(2, 4, 2, 2, 2))
pres = leaf(torch.relu(torch.randn(2, 4, 2, 2, 2) + 0.2))
d = dice_mc(probs, target)
c = contrastive_loss(prev, pres, 0.5)
total = 0.5 * d + 0.5 * 1e-4 * c
total.backward()
for n, t in [("probs", probs), ("target", target), ("prev", prev), ("pres", pres)]:
    put("mcfess/" + n, t, ncdhw=True)
put("mcfess/gprobs", probs.grad, ncdhw=True)
put("mcfess/gpres", pres.grad, ncdhw=True)
val("mcfess/loss", total.item())
val("mcfess/dice", d.item())
val("mcfess/con", c.item())

# sm: softmax over K = 4 classes (channel 0 the background), one-hot
# targets from random labels. Gradients w.r.t. the logits z go through
# torch.softmax; the cross-entropy reference is F.cross_entropy on z.
K = 4
sz = torch.randn(2, K, 4, 4, 4) * 1.5
labels = torch.randint(0, K, (2, 4, 4, 4))
labels[1, 0] = 0  # some background-only rows
sy = F.one_hot(labels, K).permute(0, 4, 1, 2, 3).float()
put("sm/z", sz, ncdhw=True)
put("sm/y", sy, ncdhw=True)
smcases = {
    "dicefg": lambda z: dice_mc(torch.softmax(z, 1)[:, 1:], sy[:, 1:]),
    "ce": lambda z: F.cross_entropy(z, labels),
    "dicece": lambda z: dice_mc(torch.softmax(z, 1)[:, 1:], sy[:, 1:]) + F.cross_entropy(z, labels),
    "dicece_w": lambda z: 0.7 * dice_mc(torch.softmax(z, 1)[:, 1:], sy[:, 1:]) + 0.3 * F.cross_entropy(z, labels),
    "dicece_bg": lambda z: dice_mc(torch.softmax(z, 1), sy) + F.cross_entropy(z, labels),
}
for name, fn in smcases.items():
    z = leaf(sz)
    L = fn(z)
    L.backward()
    val("sm/%s/loss" % name, L.item())
    put("sm/%s/gz" % name, z.grad, ncdhw=True)

# smp: cross-entropy on probabilities (gradient w.r.t. p), one voxel
# saturated so its true-class probability (~e^-60) is clamped at 1e-7:
# -mean over voxels of sum_k y_k log(clamp(p_k, 1e-7, 1)).
zs = sz.clone()
zs[0, :, 0, 0, 0] = torch.tensor([30.0, -30.0, 0.0, 0.0])
ys = sy.clone()
ys[0, :, 0, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0])
p = leaf(torch.softmax(zs, 1))
L = -(ys * p.clamp(1e-7, 1).log()).sum(1).mean()
L.backward()
put("smp/p", p, ncdhw=True)
put("smp/y", ys, ncdhw=True)
val("smp/ce/loss", L.item())
put("smp/ce/gp", p.grad, ncdhw=True)

with open(OUT + ".bin", "wb") as f:
    f.write(bytes(blob))
with open(OUT + ".json", "w") as f:
    json.dump({"generator": "loss/testdata/gen_golden.py, torch " + torch.__version__,
               "tensors": tensors, "values": values}, f, indent=1, sort_keys=True)
print("wrote", OUT + ".json", len(blob), "bytes of tensors")

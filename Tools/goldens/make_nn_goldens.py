#!/usr/bin/env python3
"""Writes Tests/AxialNNTests/Fixtures/nn.safetensors: PyTorch goldens for AxialNN.

Layers and losses run in float64 on float32-representable inputs. For a case NAME:
  NAME.param.<state_dict key>   the layer's weights (Swift loads them with loadStateDict)
  NAME.in.<i>                   inputs (integer indices and masks stored as floats)
  NAME.out.<j>                  outputs;  NAME.R.<j> a fixed random weight of each output's shape
  NAME.grad.<i> / NAME.pgrad.<key>   d/d input_i and d/d param of sum_j (out_j * R_j).sum()
Optimizers (float32, torch's single-tensor CPU path) run 5 steps on fixed gradients:
  opt.<name>.init.<p>, opt.grads.<step>.<p>, opt.<name>.after.<step>.<p>.
Schedules: sched.cosine (lr per step of LambdaLR with the warmup-cosine lambda), sched.plateau.metrics
and sched.plateau.lrs (ReduceLROnPlateau).
End to end (float32): e2e.<model>.param.<key> initial weights, e2e.<model>.x / .y data,
e2e.<model>.losses the 50 per-step AdamW training losses.

Run: "$(Tools/python-env)" Tools/goldens/make_nn_goldens.py
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from _common import f32, randn

torch.manual_seed(20241)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialNNTests", "Fixtures", "nn.safetensors")
T = {}


def put(key, t):
    T[key] = t.detach().to(torch.float32).clone().contiguous()


def layer_case(name, module, inputs, fn, grad_inputs=None):
    """module in float64 with float32-representable weights; fn(module, *inputs) -> tuple of outputs."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32(p))
    for k, v in module.state_dict().items():
        put(f"{name}.param.{k}", v)
    grad_inputs = grad_inputs if grad_inputs is not None else [True] * len(inputs)
    xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_inputs)]
    for i, x in enumerate(inputs):
        put(f"{name}.in.{i}", x)
    outs = fn(module, *xs)
    if not isinstance(outs, tuple):
        outs = (outs,)
    total = 0
    for j, o in enumerate(outs):
        R = randn(*o.shape)
        put(f"{name}.out.{j}", o)
        put(f"{name}.R.{j}", R)
        total = total + (torch.nan_to_num(o) * R).sum()
    total.backward()
    for i, (x, g) in enumerate(zip(xs, grad_inputs)):
        if g:
            put(f"{name}.grad.{i}", x.grad if x.grad is not None else torch.zeros_like(x))
    for k, p in module.named_parameters():
        put(f"{name}.pgrad.{k}", p.grad if p.grad is not None else torch.zeros_like(p))


class MLP(nn.Module):
    """Axial's MLP layout: layers.<i> Linear, activation between them."""

    def __init__(self, i, hidden, o, act):
        super().__init__()
        w = [i] + hidden + [o]
        self.layers = nn.ModuleList([nn.Linear(w[k], w[k + 1]) for k in range(len(w) - 1)])
        self.act = act

    def forward(self, x):
        for k, l in enumerate(self.layers):
            x = l(x)
            if k < len(self.layers) - 1:
                x = self.act(x)
        return x


# ---------------------------------------------------------------- layers
layer_case("linear", nn.Linear(5, 3), [randn(2, 4, 5)], lambda m, x: m(x))
ln = nn.LayerNorm(6)
with torch.no_grad():
    ln.weight.copy_(torch.randn(6)); ln.bias.copy_(torch.randn(6))
layer_case("layernorm", ln, [randn(3, 6) * 2 + 1], lambda m, x: m(x))
layer_case("embedding", nn.Embedding(7, 4), [torch.tensor([[1, 3, 3], [6, 0, 2]], dtype=torch.float64)],
           lambda m, i: m(i.long()), grad_inputs=[False])
layer_case("mlp", MLP(5, [8, 6], 3, F.gelu), [randn(4, 5)], lambda m, x: m(x))

mha = nn.MultiheadAttention(8, 2, batch_first=True)
with torch.no_grad():
    mha.in_proj_bias.copy_(torch.randn(24) * 0.1); mha.out_proj.bias.copy_(torch.randn(8) * 0.1)
kpm = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float64)
layer_case("mha_cross", mha, [randn(2, 4, 8), randn(2, 5, 8), randn(2, 5, 8), kpm],
           lambda m, q, k, v, p: m(q, k, v, key_padding_mask=p.bool(), need_weights=True),
           grad_inputs=[True, True, True, False])
causal = torch.triu(torch.ones(4, 4), diagonal=1).double()
layer_case("mha_self", nn.MultiheadAttention(8, 4, batch_first=True), [randn(3, 4, 8), causal],
           lambda m, x, a: m(x, x, x, attn_mask=a.bool(), need_weights=True, average_attn_weights=False),
           grad_inputs=[True, False])
layer_case("gru", nn.GRUCell(5, 4), [randn(3, 5), randn(3, 4)], lambda m, x, h: m(x, h))
layer_case("lstm", nn.LSTMCell(5, 4), [randn(3, 5), randn(3, 4), randn(3, 4)], lambda m, x, h, c: m(x, (h, c)))

layer_case("conv1d", nn.Conv1d(2, 4, 3, stride=2, padding=1), [randn(2, 2, 7)], lambda m, x: m(x))
layer_case("conv1d_eca", nn.Conv1d(1, 1, 3, padding=1, bias=False), [randn(2, 1, 9)], lambda m, x: m(x))
layer_case("conv2d", nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), [randn(2, 4, 6, 7)],
           lambda m, x: m(x))
layer_case("conv_transpose2d", nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), [randn(2, 3, 4, 3)],
           lambda m, x: m(x))
bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.rand(3) + 0.5); bn.bias.copy_(torch.randn(3))
    bn.running_mean.copy_(torch.randn(3) * 0.1); bn.running_var.copy_(torch.rand(3) + 0.5)
layer_case("bn2d_train", bn, [randn(4, 3, 2, 3) * 2 + 1], lambda m, x: m(x))
for k in ["running_mean", "running_var", "num_batches_tracked"]:
    put(f"bn2d_train.after.{k}", getattr(bn, k))
bn1 = nn.BatchNorm1d(5)
with torch.no_grad():
    bn1.weight.copy_(torch.rand(5) + 0.5); bn1.bias.copy_(torch.randn(5))
    bn1.running_mean.copy_(torch.randn(5)); bn1.running_var.copy_(torch.rand(5) + 0.5)
bn1.eval()
layer_case("bn1d_eval", bn1, [randn(4, 5)], lambda m, x: m(x))


# ---------------------------------------------------------------- losses (value + input gradient)
def loss_case(name, inputs, fn, grad_inputs=None):
    grad_inputs = grad_inputs if grad_inputs is not None else [True] + [False] * (len(inputs) - 1)
    xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_inputs)]
    for i, x in enumerate(inputs):
        put(f"{name}.in.{i}", x)
    out = fn(*xs)
    R = randn(*out.shape) if out.dim() > 0 else torch.ones((), dtype=torch.float64)
    put(f"{name}.out.0", out)
    put(f"{name}.R.0", R)
    (out * R).sum().backward()
    for i, (x, g) in enumerate(zip(xs, grad_inputs)):
        if g:
            put(f"{name}.grad.{i}", x.grad)


def idx(*vals):
    return torch.tensor(vals, dtype=torch.float64)


tgt = idx(1, 4, 0, 2)
loss_case("ce", [randn(4, 5), tgt], lambda x, y: F.cross_entropy(x, y.long()))
cw = f32(torch.rand(5) + 0.5)
tgt_ign = idx(1, -100, 0, 3)
for red in ["mean", "sum", "none"]:
    loss_case(f"ce_full_{red}", [randn(4, 5), tgt_ign, cw],
              lambda x, y, w, red=red: F.cross_entropy(x, y.long(), weight=w, ignore_index=-100, label_smoothing=0.1, reduction=red))
loss_case("ce_smooth_ignore", [randn(4, 5), idx(2, 0, 7, 7)],
          lambda x, y: F.cross_entropy(x, y.long(), ignore_index=7, label_smoothing=0.2))
loss_case("ce_spatial", [randn(2, 4, 3), idx(0, 3, 1, 2, 2, 0).reshape(2, 3)], lambda x, y: F.cross_entropy(x, y.long()))

bx, by = randn(3, 4) * 2, (torch.rand(3, 4) > 0.5).double()
pw, bw = f32(torch.rand(4) * 3 + 0.2), f32(torch.rand(3, 4) + 0.5)
loss_case("bce", [bx, by], lambda x, y: F.binary_cross_entropy_with_logits(x, y))
loss_case("bce_pw", [bx, by, pw, bw], lambda x, y, p, w: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p))
loss_case("bce_pw_sum", [bx, by, pw], lambda x, y, p: F.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction="sum"))
loss_case("bce_big", [idx(-80, -30, 0.5, 30, 80), idx(1, 0, 1, 0, 1)], lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"))


def sigmoid_focal(x, y, alpha=0.25, gamma=2.0):
    # torchvision.ops.sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    pt = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - pt) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


loss_case("focal", [bx, by], lambda x, y: sigmoid_focal(x, y).mean())
loss_case("focal_g1", [bx, by], lambda x, y: sigmoid_focal(x, y, alpha=-1, gamma=1.5).sum())


def dice(x, y, smooth=1.0):
    p = torch.sigmoid(x).reshape(x.shape[0], -1)
    y = y.reshape(x.shape[0], -1)
    d = (2 * (p * y).sum(1) + smooth) / (p.sum(1) + y.sum(1) + smooth)
    return (1 - d).mean()


loss_case("dice", [randn(2, 3, 4), (torch.rand(2, 3, 4) > 0.6).double()], dice)
loss_case("mse", [randn(3, 4), randn(3, 4)], lambda x, y: F.mse_loss(x, y))


def asl(x, y, gamma_neg=2, gamma_pos=1, clip=0.05, eps=1e-6):
    """PsPG utils/losses.py AsymmetricLoss (3-D: softmax pair form; 2-D: sigmoid form), focal weight without grad."""
    if x.dim() == 3:
        s = torch.softmax(x, dim=1)
        xs_pos, xs_neg = s[:, 0, :], s[:, 1, :]
    else:
        s = torch.sigmoid(x)
        xs_pos, xs_neg = s, 1 - s
    y = y.reshape(-1)
    xs_pos, xs_neg = xs_pos.reshape(-1), xs_neg.reshape(-1)
    xs_pos, xs_neg, y = xs_pos[y != -1], xs_neg[y != -1], y[y != -1]
    xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps)) + (1 - y) * torch.log(xs_neg.clamp(min=eps))
    with torch.no_grad():
        pt = xs_pos * y + xs_neg * (1 - y)
        w = torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -(loss * w).sum()


asl_y = idx(1, 0, -1, 1, 0, 0, 1, -1, 0, 1, 1, 0).reshape(3, 4)
loss_case("asl_pair", [randn(3, 2, 4) * 2, asl_y], asl)
loss_case("asl_sigmoid", [randn(3, 4) * 2, asl_y], lambda x, y: asl(x, y, gamma_neg=4, gamma_pos=1, eps=1e-8))
mlm_t = idx(3, 0, -1, 1, 2, 1, 4, 0, -1, -1, -1, -1, -1, -1, -1).reshape(3, 5)
loss_case("mlm", [randn(3, 5), mlm_t], lambda x, y: F.multilabel_margin_loss(x, y.long()))
loss_case("mlm_1d", [randn(6), idx(5, 2, -1, 0, 0, 0)], lambda x, y: F.multilabel_margin_loss(x, y.long()))

# ---------------------------------------------------------------- optimizers (float32)
init = {"p0": torch.randn(3, 4), "p1": torch.randn(4)}
grads = [{k: torch.randn_like(v) for k, v in init.items()} for _ in range(5)]
for k, v in init.items():
    put(f"opt.init.{k}", v)
for s, g in enumerate(grads):
    for k, v in g.items():
        put(f"opt.grads.{s}.{k}", v)
opts = {
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
    "sgd_damp": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.05),
    "adamw_amsgrad": lambda ps: torch.optim.AdamW(ps, lr=0.02, weight_decay=0.01, amsgrad=True),
    # parameter groups with different lrs (ps = [p0, p1])
    "adamw_groups": lambda ps: torch.optim.AdamW([{"params": [ps[0]], "lr": 0.03},
                                                  {"params": [ps[1]], "lr": 0.001, "weight_decay": 0.2}], weight_decay=0.05),
}
for name, make in opts.items():
    ps = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = make(list(ps.values()))
    for s, g in enumerate(grads):
        for k in ps:
            ps[k].grad = g[k].clone()
        opt.step()
        for k in ps:
            put(f"opt.{name}.after.{s}.{k}", ps[k])

# ---------------------------------------------------------------- schedules
p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.5)
warm, total, floor = 3, 12, 0.1


def lam(s):
    if s < warm:
        return s / max(1, warm)
    prog = (s - warm) / max(1, total - warm)
    return floor + (1 - floor) * max(0.0, 0.5 * (1 + math.cos(math.pi * prog)))


sch = torch.optim.lr_scheduler.LambdaLR(opt, lam)
lrs = []
for s in range(total + 2):
    lrs.append(opt.param_groups[0]["lr"])
    opt.step(); sch.step()
T["sched.cosine"] = torch.tensor(lrs, dtype=torch.float64).to(torch.float32)
for mode, metrics in [("min", [1.0, 0.9, 0.95, 0.91, 0.9, 0.9, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]),
                      ("max", [0.1, 0.2, 0.2, 0.2001, 0.19, 0.19, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])]:
    opt = torch.optim.SGD([p], lr=1.0)
    sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.1)
    out = []
    for m in metrics:
        sch.step(m)
        out.append(opt.param_groups[0]["lr"])
    T[f"sched.plateau_{mode}.metrics"] = torch.tensor(metrics, dtype=torch.float32)
    T[f"sched.plateau_{mode}.lrs"] = torch.tensor(out, dtype=torch.float32)


# ---------------------------------------------------------------- end to end (float32, AdamW, 50 steps)
class Block(nn.Module):
    """Pre-norm transformer block + mean-pool + linear head (Axial's test model, same keys)."""

    def __init__(self, e=8, h=2, hidden=16, classes=3):
        super().__init__()
        self.norm1 = nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, h, batch_first=True)
        self.norm2 = nn.LayerNorm(e)
        self.mlp = MLP(e, [hidden], e, F.gelu)
        self.head = nn.Linear(e, classes)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        return self.head(x.mean(dim=1))


def train(name, model, x, y, lr):
    for k, v in model.state_dict().items():
        put(f"e2e.{name}.param.{k}", v)
    put(f"e2e.{name}.x", x)
    put(f"e2e.{name}.y", y.double())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    T[f"e2e.{name}.losses"] = torch.tensor(losses, dtype=torch.float32)


torch.manual_seed(7)
xm = torch.randn(32, 10)
ym = (xm[:, 0] + xm[:, 1] * xm[:, 2] > 0).long() + (xm[:, 3] > 1).long()
train("mlp", MLP(10, [16], 3, F.gelu), xm, ym, 1e-2)
xt = torch.randn(6, 5, 8)
yt = (xt[:, :, 0].mean(1) > 0).long() + (xt[:, 0, 1] > 0.5).long()
with torch.no_grad():
    blk = Block()
    blk.attn.in_proj_bias.copy_(torch.randn(24) * 0.1)
train("block", blk, xt, yt, 3e-3)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file(T, OUT)
print(f"wrote {len(T)} tensors to {OUT} ({os.path.getsize(OUT)} bytes)")

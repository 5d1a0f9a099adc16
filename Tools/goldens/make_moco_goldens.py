"""MoCo v3 + LeCL step goldens for Tests/AxialModelsTests (MoCoTests.swift).

Usage: "$(Tools/python-env)" Tools/goldens/make_moco_goldens.py
Writes Tests/AxialModelsTests/Fixtures/moco_step.safetensors.

Two consecutive MoCo v3 steps (facebookresearch/moco-v3 + KatherLab/CLEAR LeCL order) from fixed
weights and fixed views, for each encoder case:
  - "flat": Flatten -> Linear(3*8*8, 16) -> LayerNorm   (exercises only the MoCo machinery)
  - "vit":  timm VisionTransformer img 16, patch 4, dim 24, depth 2, heads 2, mlp_ratio 2,
            class-token pooling, num_classes 0 (the timm names a Swift tiny ViT loads)
Projector: 3-layer MLP (Linear no bias -> BN -> ReLU, ..., Linear -> BN(affine=False)), hidden 32,
out 16. Predictor: 2-layer (16 -> 32 -> 16) with last BN(affine=False), as MoCo_ViT.
Per step s (0-based, of `total`): lr = base_lr * WarmupCosine(s); m = 1 - (1 - m0)(cos(pi s/total)+1)/2;
q_i = predictor(base(x_i)) (train-mode BN); momentum update of base+projector parameters
(buffers untouched); k_i = momentum(x_i) (train-mode BN); loss = lecl(q1,k2) + lecl(q2,k1)
with w = 0.5, T = 0.2; backward; clip grad norm 1.0 ("vit" case; none for "flat"); AdamW.
A bias feeding the projector's first Linear -> BN has an exactly-zero true gradient (BN removes any
per-feature shift), and Adam would turn its float round-off into full-size, implementation-dependent
steps: "flat" uses LayerNorm(bias=False) and "vit" freezes the encoder's final `norm.bias`.
Conditioning: "flat" is well conditioned (torch float32 vs float64 agree to 2e-5 on every output),
so it is computed in float32 and compared at 1e-4. The tiny ViT is not: torch's own float32 step
is 1.3e-3 (cls/pos grads) to 5e-2 (block weights after Adam, tiny cancelling gradients scaled up)
away from float64. So "vit" is computed in float64 (saved as float32) and the Swift test compares
step 1 (loss, all gradients) against that truth; the AdamW/EMA arithmetic is covered by "flat".
The momentum encoder starts as base + noise so the EMA is visible.

Tensors: `<case>.x1`, `.x2` [N,3,H,W], `.lesion` [N] (0/1), `.init.<key>` (base model state:
`base_encoder.*` incl. `base_encoder.head.*` projector, `predictor.*`), `.init_momentum.<key>`,
`.loss` [2], `.lr` [2], `.m` [2], `.grad.<key>` (after step 1's backward, clipped), `.final.<key>`
(state after step 2 incl. BN running stats and `num_batches_tracked`, saved as float32), `.final_momentum.<key>`.
"""
import math, os, sys
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialModelsTests", "Fixtures", "moco_step.safetensors")


def mlp(layers, din, dhid, dout, last_bn=True):
    mods = []
    for l in range(layers):
        d1 = din if l == 0 else dhid
        d2 = dout if l == layers - 1 else dhid
        mods.append(nn.Linear(d1, d2, bias=False))
        if l < layers - 1:
            mods += [nn.BatchNorm1d(d2), nn.ReLU(inplace=True)]
        elif last_bn:
            mods.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*mods)


class Flat(nn.Module):
    def __init__(self, din, d):
        super().__init__()
        self.proj = nn.Linear(din, d)
        self.norm = nn.LayerNorm(d, bias=False)
        self.head = nn.Identity()

    def forward(self, x):
        return self.head(self.norm(self.proj(x.flatten(1))))


def make_encoder(case):
    if case == "flat":
        return Flat(3 * 8 * 8, 16), 16, 8
    import timm
    from timm.models.vision_transformer import VisionTransformer
    enc = VisionTransformer(img_size=16, patch_size=4, embed_dim=24, depth=2, num_heads=2, mlp_ratio=2.0,
                            num_classes=0, global_pool="token", class_token=True)
    with torch.no_grad():   # non-trivial cls/pos values
        enc.cls_token.normal_(0, 0.2); enc.pos_embed.normal_(0, 0.2)
    enc.norm.bias.requires_grad_(False)
    return enc, 24, 16


def momentum_at(step, total, m0):
    return 1.0 - (1.0 - m0) * (math.cos(math.pi * step / total) + 1.0) / 2.0


def lr_factor(step, warmup, total):
    if step < warmup:
        return step / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1 + math.cos(math.pi * p)))


def lecl(q, k, lesion, w, T):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    s = q @ k.t() / T
    N = s.shape[0]
    if w > 0 and lesion.any():
        idx = lesion.nonzero().squeeze(1).unsqueeze(0).repeat(N, 1)
        extra = (w * s).diagonal_scatter(torch.full((N,), -float("inf"), dtype=s.dtype)).gather(1, idx)
        allt = torch.cat((extra, s), dim=1)
    else:
        allt = s
    return -(s.diag().double() - allt.double().logsumexp(1)).mean().to(s.dtype) * (2 * T)


def run_case(case, out):
    torch.manual_seed({"flat": 1, "vit": 2}[case])
    enc, feat, img = make_encoder(case)
    last_bn = True
    enc.head = mlp(3, feat, 32, 16)
    pred = mlp(2, 16, 32, 16, last_bn=last_bn)
    with torch.no_grad():   # non-trivial BN affine and running stats
        for mod in list(enc.head) + list(pred):
            if isinstance(mod, nn.BatchNorm1d):
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5); mod.bias.normal_(0, 0.1)
                mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 1.5)
    import copy
    mom = copy.deepcopy(enc)
    with torch.no_grad():
        for p in mom.parameters():
            p.add_(torch.randn_like(p) * 0.05)
            p.requires_grad_(False)
    N = 6
    x1, x2 = torch.randn(N, 3, img, img), torch.randn(N, 3, img, img)
    lesion = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.bool)
    if case == "vit" or os.environ.get("MOCO_DOUBLE"):   # float64 reference (see module doc)
        enc.double(); pred.double(); mom.double(); x1, x2 = x1.double(), x2.double()
    T, w, m0, total, warmup, base_lr, wd = 0.2, 0.5, 0.9, 10, 2, 0.05, 0.1
    clip = 1.0 if case == "vit" else 0.0
    first_step = 3

    def state(prefix_model):
        d = {}
        for k, v in enc.state_dict().items():
            d[f"base_encoder.{k}"] = v.detach().clone()
        for k, v in pred.state_dict().items():
            d[f"predictor.{k}"] = v.detach().clone()
        return d

    def mstate():
        return {f"momentum_encoder.{k}": v.detach().clone() for k, v in mom.state_dict().items()}

    for k, v in state(enc).items(): out[f"{case}.init.{k}"] = v
    for k, v in mstate().items(): out[f"{case}.init_momentum.{k}"] = v
    out[f"{case}.x1"], out[f"{case}.x2"] = x1, x2
    out[f"{case}.lesion"] = lesion.float()

    params = [p for p in list(enc.parameters()) + list(pred.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=wd, betas=(0.9, 0.999), eps=1e-8)
    losses, lrs, ms = [], [], []
    enc.train(); pred.train(); mom.train()
    for it in range(2):
        s = first_step + it
        lr = base_lr * lr_factor(s, warmup, total)
        for g in opt.param_groups: g["lr"] = lr
        m = momentum_at(s, total, m0)
        q1, q2 = pred(enc(x1)), pred(enc(x2))
        with torch.no_grad():
            for pb, pm in zip(enc.parameters(), mom.parameters()):
                pm.data = pm.data * m + pb.data * (1.0 - m)
            k1, k2 = mom(x1), mom(x2)
        loss = lecl(q1, k2, lesion, w, T) + lecl(q2, k1, lesion, w, T)
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if it == 0:
            for name, p in list(("base_encoder." + n, p) for n, p in enc.named_parameters()) + \
                           list(("predictor." + n, p) for n, p in pred.named_parameters()):
                if p.grad is not None:
                    out[f"{case}.grad.{name}"] = p.grad.detach().clone()
        opt.step()
        losses.append(loss.item()); lrs.append(lr); ms.append(m)
    out[f"{case}.loss"] = torch.tensor(losses, dtype=torch.float32)
    out[f"{case}.lr"] = torch.tensor(lrs, dtype=torch.float64).float()
    out[f"{case}.m"] = torch.tensor(ms, dtype=torch.float64).float()
    for k, v in state(enc).items(): out[f"{case}.final.{k}"] = v
    for k, v in mstate().items(): out[f"{case}.final_momentum.{k}"] = v
    print(case, "losses", losses, "lr", lrs, "m", ms)


if __name__ == "__main__":
    out = {}
    cases = sys.argv[1:] or ["flat", "vit"]
    for c in cases:
        run_case(c, out)
    out = {k: v.contiguous().float() for k, v in out.items()}
    save_file(out, OUT, metadata={"T": "0.2", "w": "0.5", "m0": "0.9", "total": "10", "warmup": "2",
                                  "base_lr": "0.05", "eps": "1e-8", "weight_decay": "0.1", "first_step": "3",
                                  "clip_vit": "1.0", "hidden": "32", "dim": "16"})
    print("wrote", os.path.normpath(OUT), sum(v.numel() for v in out.values()), "floats")

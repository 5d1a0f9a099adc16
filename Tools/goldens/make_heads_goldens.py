"""Goldens for the MIL heads (AxialModels: ABMIL, gated ABMIL, PMA, PsPG).

Builds each head in PyTorch with the same structure and parameter names as the Swift heads,
runs a zero-padded batch of bags with a mask, and exports weights, inputs, outputs (logits,
attention), the loss, the gradient of every parameter, and the losses of a few optimizer steps.

    "$(Tools/python-env)" Tools/goldens/make_heads_goldens.py
    → Tests/AxialModelsTests/Fixtures/heads.safetensors
"""
import json, math, os
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/heads.safetensors")
B, N, D, C = 3, 7, 12, 3
LENGTHS = [7, 4, 2]


def masked_softmax(s, mask):
    return torch.softmax(s.masked_fill(mask == 0, float("-inf")), dim=-1)


class ABMIL(nn.Module):
    def __init__(s, cfg):
        super().__init__()
        h, ah = cfg["hidden"], cfg["attentionHidden"]
        s.encoder = nn.Linear(cfg["inputDimension"], h)
        s.attention = nn.ModuleDict(dict(V=nn.Linear(h, ah), w=nn.Linear(ah, 1)))
        s.head = nn.ModuleDict(dict(norm=nn.LayerNorm(h), fc1=nn.Linear(h, h), fc2=nn.Linear(h, cfg["classes"])))
        s.drop = nn.Dropout(cfg["headDropout"])

    def forward(s, x, mask):
        h = F.relu(s.encoder(x))
        a = masked_softmax(s.attention.w(torch.tanh(s.attention.V(h))).squeeze(-1), mask)
        z = (a.unsqueeze(1) @ h).squeeze(1)
        return s.head.fc2(F.silu(s.drop(s.head.fc1(s.head.norm(z))))), a


class GatedABMIL(nn.Module):
    def __init__(s, cfg):
        super().__init__()
        h, ah = cfg["hidden"], cfg["attentionHidden"]
        s.encoder = nn.Linear(cfg["inputDimension"], h)
        s.attention = nn.ModuleDict(dict(V=nn.Linear(h, ah), U=nn.Linear(h, ah), w=nn.Linear(ah, 1)))
        s.classifier = nn.Linear(h, cfg["classes"])

    def forward(s, x, mask):
        h = F.relu(s.encoder(x))
        g = torch.tanh(s.attention.V(h)) * torch.sigmoid(s.attention.U(h))
        a = masked_softmax(s.attention.w(g).squeeze(-1), mask)
        return s.classifier((a.unsqueeze(1) @ h).squeeze(1)), a


class PMA(nn.Module):
    def __init__(s, cfg):
        super().__init__()
        d, k = cfg["hidden"], cfg["seeds"]
        s.k, s.d = k, d
        s.encoder = nn.Linear(cfg["inputDimension"], d)
        s.seeds = nn.Parameter(torch.randn(k, d) * 0.02)
        s.mab = nn.ModuleDict(dict(attention=nn.MultiheadAttention(d, cfg["heads"], batch_first=True),
                                   norm0=nn.LayerNorm(d), ff=nn.Linear(d, d), norm1=nn.LayerNorm(d)))
        s.classifier = nn.Linear(k * d, cfg["classes"])

    def forward(s, x, mask):
        b = x.shape[0]
        h = F.relu(s.encoder(x))
        q = s.seeds.unsqueeze(0).expand(b, -1, -1)
        o, w = s.mab.attention(q, h, h, key_padding_mask=(mask == 0), need_weights=True)
        o = s.mab.norm0(q + o)
        o = s.mab.norm1(o + F.relu(s.mab.ff(o)))
        return s.classifier(o.reshape(b, -1)), w.mean(1)


class Decoder(nn.Module):
    def __init__(s, cfg):
        super().__init__()
        e, p, hd, nh = cfg["embeddingDimension"], cfg["hidden"], cfg["decoderHidden"], cfg["decoderHeads"]
        s.gru = nn.GRUCell(e, hd)
        s.self_attention = nn.MultiheadAttention(hd, nh, batch_first=True)
        s.cross_attention = nn.MultiheadAttention(hd, nh, batch_first=True)
        s.memory = nn.Linear(p, hd)
        s.fc = nn.Linear(hd, e)
        s.proj = nn.Linear(e, p)


class PsPG(nn.Module):
    def __init__(s, cfg, emb):
        super().__init__()
        s.cfg = cfg
        s.register_buffer("emb", emb)
        s.encoder = nn.Linear(cfg["inputDimension"], cfg["hidden"])
        s.eca = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        s.logit_scale = nn.Parameter(torch.tensor([math.log(1 / 0.07)]))
        s.decoder = nn.ModuleDict(dict(pos=Decoder(cfg), neg=Decoder(cfg)))

    def forward(s, x, mask, with_extras=False):
        b, n, _ = x.shape
        c, e, hd = s.emb.shape[0], s.cfg["embeddingDimension"], s.cfg["decoderHidden"]
        m3 = mask.unsqueeze(-1)
        f = F.normalize(s.encoder(x), dim=-1) * m3
        a = torch.sigmoid(s.eca(f.mean(2).unsqueeze(1)) + s.eca(f.amax(2).unsqueeze(1))).squeeze(1)
        am = a * mask
        pooled = (am.unsqueeze(1) @ f).squeeze(1) / mask.sum(1, keepdim=True)
        att = am / am.sum(1, keepdim=True)
        e0 = s.emb.unsqueeze(0).expand(b, c, e)
        prompts = []
        for name in ("pos", "neg"):
            dec = s.decoder[name]
            mem = dec.memory(f)
            xx, h, toks = e0, torch.zeros(b, c, hd), 0
            for _ in range(s.cfg["promptSteps"]):
                h = dec.gru(xx.reshape(b * c, e), h.reshape(b * c, hd)).reshape(b, c, hd)
                h = h + dec.self_attention(h, h, h, need_weights=False)[0]
                ctx = dec.cross_attention(h, mem, mem, key_padding_mask=(mask == 0), need_weights=False)[0]
                xx = dec.fc(h + ctx)
                toks = toks + dec.proj(xx)
            pr = toks / s.cfg["promptSteps"]
            if s.cfg["namePrefix"]:
                pr = pr + dec.proj(e0)
            prompts.append(F.normalize(pr, dim=-1))
        scale = s.logit_scale.exp()
        pos = (prompts[0] @ pooled.unsqueeze(-1)).squeeze(-1) * scale
        neg = (prompts[1] @ pooled.unsqueeze(-1)).squeeze(-1) * scale
        out = (pos - neg, att, torch.stack([pos, neg], 1))
        return out + ((prompts[0], pooled, scale),) if with_extras else out


def bce(logits, y, pw):
    known = (y >= 0)
    l = F.binary_cross_entropy_with_logits(logits, y.clamp(min=0), pos_weight=pw, reduction="none")
    return (l * known).sum() / known.sum()


def asl(pair, y, gn=2.0, gp=1.0, clip=0.05, eps=1e-8):
    p = torch.softmax(pair, dim=1)
    xp, xn = p[:, 0], (p[:, 1] + clip).clamp(max=1)
    yp, yn = (y == 1).float(), (y == 0).float()
    l = yp * torch.log(xp.clamp(min=eps)) + yn * torch.log(xn.clamp(min=eps))
    with torch.no_grad():
        w = torch.where(y == 1, (1 - xp) ** gp, torch.where(y == 0, (1 - xn) ** gn, torch.zeros_like(xp)))
    return -(l * w).sum()


def margin(s, y):
    b, c = s.shape
    m = F.relu(1 - s.unsqueeze(2) + s.unsqueeze(1))
    pair = (y == 1).float().unsqueeze(2) * (y == 0).float().unsqueeze(1)
    return (m * pair).sum() / (b * c)


def margin_torch_check(s, y):
    # Cross-check against torch.nn.MultiLabelMarginLoss where every label is known.
    tgt = torch.full_like(y, -1, dtype=torch.long)
    for i in range(y.shape[0]):
        pos = (y[i] == 1).nonzero().flatten()
        tgt[i, :len(pos)] = pos
    return F.multilabel_margin_loss(s, tgt)


def pair_term(prompts, pooled, scale, y):
    b, c, p = prompts.shape
    L, R, T = [], [], []
    for i in range(c):
        for j in range(i + 1, c):
            known = ((y[:, i] >= 0) & (y[:, j] >= 0)).any()
            if not known:
                continue
            L.append(i); R.append(j); T.append(float(((y[:, i] == 1) & (y[:, j] == 1)).any()))
    pr = F.normalize(prompts[:, L] + prompts[:, R], dim=-1)
    lg = (pr @ pooled.unsqueeze(-1)).squeeze(-1) * scale
    return F.binary_cross_entropy_with_logits(lg.amax(0, keepdim=True), torch.tensor([T]))


tensors, meta = {}, {}
x = torch.randn(B, N, D)
mask = torch.zeros(B, N)
for i, n in enumerate(LENGTHS):
    mask[i, :n] = 1
x = x * mask.unsqueeze(-1)
tensors["bags"], tensors["mask"] = x, mask
y_ml = torch.tensor([[1., 0., -1.], [0., 1., 1.], [1., 1., 0.]])
y_mc = torch.tensor([2, 0, 1])
tensors["targets_multilabel"], tensors["targets_multiclass"] = y_ml, y_mc.float()
pw = torch.tensor([0.5, 2.0, 1.5])
tensors["pos_weight"] = pw
tensors["class_weight"] = torch.tensor([1.0, 0.5, 2.0])
emb = torch.randn(C, 8)
tensors["class_embeddings"] = emb
# Loss cross-checks against torch's own losses.
s = torch.randn(B, C)
y_full = torch.tensor([[1., 0., 0.], [0., 1., 1.], [1., 1., 0.]])
tensors["margin_scores"], tensors["margin_targets"] = s, y_full
tensors["margin_loss"] = margin_torch_check(s, y_full).reshape(1)
assert torch.allclose(margin(s, y_full), margin_torch_check(s, y_full))

base = dict(inputDimension=D, classes=C, hidden=16, attentionHidden=8, inputDropout=0.0, headDropout=0.5,
            seeds=2, heads=4, embeddingDimension=8, decoderHidden=8, promptSteps=16, decoderHeads=2,
            promptDropout=0.2, namePrefix=True)
heads = {
    "abmil": (ABMIL, dict(base, kind="abmil"), "bce", dict(opt="adam", lr=1e-2, wd=0.0)),
    "abmil-gated": (GatedABMIL, dict(base, kind="abmil-gated"), "ce", dict(opt="adamw", lr=1e-2, wd=1e-2)),
    "pma": (PMA, dict(base, kind="pma"), "bce", dict(opt="adamw", lr=1e-2, wd=1e-4)),
    "pspg": (PsPG, dict(base, kind="pspg"), "pspg", dict(opt="adam", lr=1e-2, wd=1e-3)),
}
for name, (cls, cfg, loss_kind, optcfg) in heads.items():
    torch.manual_seed(1)
    model = cls(cfg, emb) if cls is PsPG else cls(cfg)
    with torch.no_grad():  # non-default values so LayerNorm / biases are exercised
        for n_, p in model.named_parameters():
            if n_.endswith("norm0.weight") or n_.endswith("norm1.weight") or n_.endswith("norm.weight") or "in_proj_bias" in n_ or "out_proj.bias" in n_:
                p.add_(0.1 * torch.randn_like(p))
    model.eval()  # dropout off: goldens are deterministic
    for n_, p in model.named_parameters():
        tensors[f"{name}/param/{n_}"] = p.detach().clone()

    def loss_fn():
        if cls is PsPG:
            logits, att, pair, (pr, pooled, sc) = model(x, mask, with_extras=True)
            loss = 0.1 * asl(pair, y_ml) + 0.07 * margin(logits, y_ml) + 0.5 * pair_term(pr, pooled, sc, y_ml)
            return loss, logits, att, pair
        logits, att = model(x, mask)
        if loss_kind == "bce":
            return bce(logits, y_ml, pw), logits, att, None
        return F.cross_entropy(logits, y_mc, weight=tensors["class_weight"]), logits, att, None

    loss, logits, att, pair = loss_fn()
    loss.backward()
    tensors[f"{name}/logits"], tensors[f"{name}/attention"] = logits.detach(), att.detach()
    if pair is not None:
        tensors[f"{name}/pair_logits"] = pair.detach()
    tensors[f"{name}/loss"] = loss.detach().reshape(1)
    for n_, p in model.named_parameters():
        tensors[f"{name}/grad/{n_}"] = p.grad.detach().clone()
    opt = (torch.optim.AdamW if optcfg["opt"] == "adamw" else torch.optim.Adam)(model.parameters(), lr=optcfg["lr"], weight_decay=optcfg["wd"])
    losses = []
    for _ in range(4):
        opt.zero_grad()
        l = loss_fn()[0]
        losses.append(l.item())
        l.backward()
        opt.step()
    tensors[f"{name}/step_losses"] = torch.tensor(losses)
    meta[f"{name}/config"] = json.dumps(cfg)
    meta[f"{name}/optimizer"] = json.dumps(optcfg)
    print(name, "loss", loss.item(), "steps", losses)

save_file({k: v.contiguous().float() for k, v in tensors.items()}, OUT, metadata=meta)
print("wrote", OUT, os.path.getsize(OUT), "bytes")

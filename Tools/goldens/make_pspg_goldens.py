"""Goldens for PsPG as the paper builds it (AxialModels: PsPGPromptGenerator, PsPGModel).

The frozen text tower is a tiny random-init CLIP text transformer written here in torch with
open_clip's / OpenAI CLIP's structure and key names (QuickGELU, causal mask, ln_final, EOT pooling,
text_projection); the Swift tower is checked against open_clip itself in make_clip_goldens.py.
(open_clip is not imported: on this machine torchvision cannot load next to a CPU torch.) The
image tokens are random [B, 10, Din] stand-ins for the RN50 dense tokens (CLIPModifiedResNet.encodeDense
has its own open_clip goldens). The PsPG parts are written here in torch from the facts of
REFERENCE.md §5 / fallingnight/PsPG@d12ef6f (model/rnn.py, transformer.py, mlp.py,
prompt_learner.py PsPG_LP, pspg.py ECA_combined + encode_pspglp, utils/losses.py LossRanking /
LossMixture / AsymmetricLoss, text_encoder.py TextEncoder), with the module names of the reference,
and with Axial's one deliberate change: the decoders' cross-attention looks at each sample's own
dense image tokens instead of across the batch ([Q]), so prompts are per sample. Prompts are run
through the text tower at its FULL context length, as the reference does (Axial trims after EOS).

Per variant (gru, lstm, transformer, mlp, gru_prefix, gru_pair — all with Axial's fusion order —
and gru_reference_fusion, the reference's order): the PsPG state dict (`<v>.sd.*`),
class features, pseudo-tokens, prompt features, logits, pair logits, loss, every gradient, and the
parameters and losses after 2 steps of SGD with Nesterov momentum (the reference's groups: no weight
decay on 1-d tensors, biases and logit_scale).

    python Tools/goldens/make_pspg_goldens.py   (torch 2.13 CPU, safetensors)
    → Tests/AxialModelsTests/Fixtures/pspg_model.safetensors
"""
import itertools, json, os
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/pspg_model.safetensors")
torch.set_default_dtype(torch.float64)   # the reference values in double; stored as float32

CTX, VOCAB, SOT, EOT, X, PERIOD = 24, 40, 38, 39, 7, 5
EMBED, TEXT_W = 24, 16           # Din (text projection / image token width), W (text width)
B, C = 3, 4
CFG = dict(hidden=12, heads=2, steps=3, layers=2, dropout=0.0, drop_path=0.0)


def trunc_init(module):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)


def perturb(module, scale=0.05):
    # The reference init leaves biases at 0 and LayerNorms at 1 / 0: perturb so each weight matters.
    # Values are rounded to float32 (what the fixture stores) before anything is computed in double.
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
            p.copy_(p.float().double())


def f32(t):
    return t.float().double()


# ------------------------------------------------------------------ decoders (per-sample attention)
class MultiHeadSelfAttention(nn.Module):
    """rnn.py's block: LN(x + MHA(x)) → fc → + x → the same LN. x [B, C, H] (classes attend to classes)."""
    def __init__(self, hidden, heads):
        super().__init__()
        self.self_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.fc = nn.Linear(hidden, hidden)
        self.layer_norm = nn.LayerNorm(hidden)

    def forward(self, x):
        x1 = x
        x = self.layer_norm(x + self.self_attention(x, x, x, need_weights=False)[0])
        x = self.fc(x)
        return self.layer_norm(x + x1)


class RecurrentDecoder(nn.Module):
    def __init__(self, kind, din, hidden, out, steps, heads, dropout):
        super().__init__()
        self.kind, self.steps, self.hidden = kind, steps, hidden
        if kind == "gru":
            self.gru = nn.GRUCell(din, hidden)
        else:
            self.lstm = nn.LSTMCell(din, hidden)
        self.encoder_proj = nn.Linear(din, hidden)
        self.self_attention = MultiHeadSelfAttention(hidden, heads)
        self.encoder_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.fc = nn.Linear(hidden, din)
        self.output_proj = nn.Linear(din, out)
        self.dropout = nn.Dropout(dropout)
        trunc_init(self)

    def forward(self, cls, tokens):                      # cls [C, Din], tokens [B, N, Din]
        b, c = tokens.shape[0], cls.shape[0]
        mem = self.encoder_proj(tokens)                  # [B, N, H]: this sample's tokens only
        x = cls.unsqueeze(0).expand(b, c, -1).reshape(b * c, -1)
        h = torch.zeros(b * c, self.hidden)
        cell = torch.zeros(b * c, self.hidden)
        outs = []
        for _ in range(self.steps):
            if self.kind == "gru":
                h = self.gru(x, h)
            else:
                h, cell = self.lstm(x, (h, cell))
            hs = self.self_attention(h.view(b, c, -1))
            ctx = self.encoder_attention(hs, mem, mem, need_weights=False)[0]
            out = self.fc(hs + ctx)
            outs.append(out)
            x = out.reshape(b * c, -1)
            h = hs.reshape(b * c, -1)
        return self.output_proj(self.dropout(torch.stack(outs, dim=2)))   # [B, C, T, W]


class TransformerDecoderBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))

    def forward(self, x, y):                             # drop path 0 in the goldens
        x1 = self.ln_1(x)
        x = x + self.self_attn(x1, x1, x1, need_weights=False)[0]
        x1 = self.ln_2(x)
        x = x + self.cross_attn(x1, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_3(x))


class TransformerDecoder(nn.Module):
    def __init__(self, din, width, layers, heads, out, steps, dropout):
        super().__init__()
        self.steps = steps
        self.encoder_proj = nn.Linear(din, width)
        self.input_proj = nn.Linear(din, width)
        self.resblocks = nn.ModuleList([TransformerDecoderBlock(width, heads) for _ in range(layers)])
        self.fc = nn.Linear(width, out)
        self.dropout = nn.Dropout(dropout)
        trunc_init(self)

    def forward(self, cls, tokens):
        b = tokens.shape[0]
        mem = self.encoder_proj(tokens)
        x = self.input_proj(cls).unsqueeze(0).expand(b, -1, -1)
        outs = []
        for _ in range(self.steps):
            for blk in self.resblocks:
                x = blk(x, mem)
            outs.append(x)
        return self.fc(self.dropout(torch.stack(outs, dim=2)))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class MLPDecoder(nn.Module):
    def __init__(self, din, hidden, out, steps):
        super().__init__()
        self.out, self.steps = out, steps
        self.mlp = nn.Sequential(nn.Linear(din, hidden), QuickGELU(), nn.Linear(hidden, steps * out))
        trunc_init(self)

    def forward(self, cls, tokens):
        return self.mlp(cls).reshape(1, cls.shape[0], self.steps, self.out)


class PromptLearner(nn.Module):
    def __init__(self, kind):
        super().__init__()
        def make():
            if kind in ("gru", "lstm"):
                return RecurrentDecoder(kind, EMBED, CFG["hidden"], TEXT_W, CFG["steps"], CFG["heads"], CFG["dropout"])
            if kind == "transformer":
                return TransformerDecoder(EMBED, CFG["hidden"], CFG["layers"], CFG["heads"], TEXT_W, CFG["steps"], CFG["dropout"])
            return MLPDecoder(EMBED, CFG["hidden"], TEXT_W, CFG["steps"])
        self.pos_decoder = make()
        self.neg_decoder = make()


class ECA_combined(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=3, padding=1, bias=False)   # ECA_combined(50): k = 3

    def forward(self, x):                                # x [B, N, D]
        avg = self.conv(x.mean(dim=2, keepdim=True).permute(0, 2, 1))
        mx = self.conv(x.amax(dim=2, keepdim=True).permute(0, 2, 1))
        return x * torch.sigmoid(avg + mx).permute(0, 2, 1)


class PsPG(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.prompt_learner = PromptLearner(kind)
        self.channel_attention = ECA_combined()
        self.logit_scale = nn.Parameter(torch.ones([]) * torch.log(torch.tensor(1 / 0.07)))


# ------------------------------------------------------------------ the frozen CLIP text tower
class QuickGELUAct(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, 4 * d))
        self.mlp.add_module("gelu", QuickGELUAct())
        self.mlp.add_module("c_proj", nn.Linear(4 * d, d))

    def forward(self, x, attn_mask):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(d, heads) for _ in range(layers)])

    def forward(self, x, attn_mask):
        for r in self.resblocks:
            x = r(x, attn_mask)
        return x


class TextTower(nn.Module):
    """open_clip CLIP's text half: keys token_embedding, positional_embedding, transformer.resblocks.*, ln_final, text_projection."""
    def __init__(self, embed, ctx, vocab, width, heads, layers):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(ctx, width))
        self.transformer = Transformer(width, layers, heads)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed) / width ** 0.5)
        self.attn_mask = torch.full((ctx, ctx), float("-inf")).triu(1)


def text_encoder(clip, ids, embed=None):
    """TextEncoder.forward: (embed or token_embedding(ids)) + positional, transformer, ln_final, EOT row @ proj."""
    x = clip.token_embedding(ids) if embed is None else embed
    x = x + clip.positional_embedding
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ clip.text_projection


def pad(rows):
    t = torch.zeros(len(rows), CTX, dtype=torch.long)
    for i, r in enumerate(rows):
        t[i, :len(r)] = torch.tensor(r)
    return t


def prompt_features(clip, out, names, prefix):
    """out [B', C, T, W] → normalised features [B', C, Din]: [SOS] + out + suffix at the full context."""
    bp, c, T, w = out.shape
    if prefix:
        ids = pad([[SOT] + [X] * T + n + [PERIOD, EOT] for n in names])           # "X … X name."
    else:
        ids = pad([[SOT] + [X] * T + [EOT]] * c)
    emb = clip.token_embedding(ids)                                              # [C, CTX, W]
    rows = torch.cat([emb[:, :1].unsqueeze(0).expand(bp, -1, -1, -1), out,
                      emb[:, 1 + T:].unsqueeze(0).expand(bp, -1, -1, -1)], dim=2)  # [B', C, CTX, W]
    f = text_encoder(clip, ids.repeat(bp, 1), rows.reshape(bp * c, CTX, w))
    return F.normalize(f, dim=-1).reshape(bp, c, -1)


def pair_features(clip, out):
    """Pair prompts (no prefix): [SOS] + out_j + out_k + [EOS] (+ padding) for j < k."""
    bp, c, T, w = out.shape
    pairs = list(itertools.combinations(range(c), 2))
    single = pad([[SOT] + [X] * T + [EOT]])
    suffix = clip.token_embedding(single)[0, 1 + T:-T]                            # [EOS] + padding
    sos = clip.token_embedding(single)[0, :1]
    rows = [torch.cat([sos, out[b, j], out[b, k], suffix], dim=0) for b in range(bp) for (j, k) in pairs]
    ids = pad([[SOT] + [X] * (2 * T) + [EOT]] * (bp * len(pairs)))
    f = text_encoder(clip, ids, torch.stack(rows))
    return F.normalize(f, dim=-1).reshape(bp, len(pairs), -1)


def asl(x, y, gamma_neg=2, gamma_pos=1, clip=0.05, eps=1e-6):
    x = torch.softmax(x, dim=1)
    xs_pos, xs_neg = x[:, 0].reshape(-1), x[:, 1].reshape(-1)
    y = y.reshape(-1)
    keep = y != -1
    xs_pos, xs_neg, y = xs_pos[keep], xs_neg[keep], y[keep]
    xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps)) + (1 - y) * torch.log(xs_neg.clamp(min=eps))
    with torch.no_grad():
        pt = xs_pos * y + xs_neg * (1 - y)
        w = torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -(loss * w).sum()


def loss_ranking(x, y):
    loss1 = 0.1 * asl(x, y)
    x_pos = torch.softmax(x, dim=1)[:, 0].reshape(-1)
    yy = y.reshape(-1)
    x_pos, yy = x_pos[yy != -1], yy[yy != -1]
    idx = torch.nonzero(yy).reshape(-1)
    target = torch.full_like(x_pos, -1)
    target[:len(idx)] = idx.to(target.dtype)
    return loss1 + 0.07 * nn.MultiLabelMarginLoss()(x_pos, target.long())


def loss_mixture(x, y, z):
    loss1 = 0.1 * asl(x, y)
    y = y.clone()
    y[y == -1] = 0
    mask = torch.triu(torch.ones(y.shape[1], y.shape[1]), diagonal=1).flatten()
    t = torch.triu(y.t() @ y, diagonal=1).flatten()[mask == 1]
    t[t > 1] = 1
    return loss1 + 1.0 * F.binary_cross_entropy_with_logits(z.max(dim=0)[0], t)


def forward(clip, model, cls, tokens, names, prefix, pairs, fusion):
    pos, neg = (d(cls, tokens) for d in (model.prompt_learner.pos_decoder, model.prompt_learner.neg_decoder))
    fp, fn = prompt_features(clip, pos, names, prefix), prompt_features(clip, neg, names, prefix)
    # encode_pspglp: token 0 ← normalised global, ECA, normalise, Σ over tokens of scale·⟨t, f⟩.
    feats = torch.cat([F.normalize(tokens[:, :1], dim=-1), tokens[:, 1:]], dim=1)
    if fusion == "reference":                          # pspg.py: ECA, then normalise (the weights cancel)
        feats = F.normalize(model.channel_attention(feats), dim=-1)
    else:                                              # Axial: normalise, then the ECA weights act
        feats = model.channel_attention(feats) / feats.norm(dim=-1, keepdim=True)
    scale = model.logit_scale.exp()
    text = torch.cat([fp, fn], dim=1).expand(tokens.shape[0], -1, -1)            # [B, 2C, Din]
    logits = (scale * torch.einsum("bnd,bkd->bnk", feats, text)).sum(1).view(tokens.shape[0], 2, -1)
    pair_logits = None
    if pairs:
        pf = pair_features(clip, pos).expand(tokens.shape[0], -1, -1)
        pair_logits = (scale * torch.einsum("bnd,bkd->bnk", feats, pf)).sum(1)
    return dict(pos_tokens=pos, neg_tokens=neg, pos_features=fp, neg_features=fn, logits=logits), pair_logits


def main():
    torch.manual_seed(0)
    clip = TextTower(EMBED, CTX, VOCAB, TEXT_W, heads=2, layers=2)
    with torch.no_grad():
        clip.token_embedding.weight.mul_(0.3)
    perturb(clip)
    clip.eval()
    for p in clip.parameters():
        p.requires_grad_(False)
    out, meta = {}, {}
    for k, v in clip.state_dict().items():
        out["clip." + k] = v

    # The text encoder as the reference calls it agrees with open_clip's encode_text.
    names = [[11, 12], [13], [14, 15, 16], [17]]
    cls_ids = pad([[SOT] + n + [EOT] for n in names])
    with torch.no_grad():
        cls = text_encoder(clip, cls_ids)
    # Stand-ins for the dense RN tokens (token 0 = the raw global feature, larger than the rest).
    tokens = f32(torch.randn(B, 10, EMBED) * torch.cat([torch.full((1, 1, 1), 3.0), torch.ones(1, 9, 1)], dim=1))
    targets = torch.tensor([[1., 0., -1., 1.], [0., 0., 1., 0.], [1., -1., 0., 0.]])
    out.update({"class_ids": cls_ids.double(), "class_features": cls, "tokens": tokens, "targets": targets})
    meta["config"] = dict(CFG, ctx=CTX, vocab=VOCAB, sot=SOT, eot=EOT, period=PERIOD, embed=EMBED, text_width=TEXT_W,
                          text_heads=2, text_layers=2,
                          names=names, batch=B, classes=C, lr=0.05, momentum=0.9, weight_decay=0.05, steps_sgd=2)

    variants = dict(gru=("gru", False, False, "weighted"), lstm=("lstm", False, False, "weighted"),
                    transformer=("transformer", False, False, "weighted"), mlp=("mlp", False, False, "weighted"),
                    gru_prefix=("gru", True, False, "weighted"), gru_pair=("gru", False, True, "weighted"),
                    gru_reference_fusion=("gru", False, False, "reference"))
    for seed, (name, (kind, prefix, pairs, fusion)) in enumerate(variants.items()):
        torch.manual_seed(100 + seed)
        model = PsPG(kind)
        perturb(model)
        for k, val in model.state_dict().items():
            out[f"{name}.sd.{k}"] = val.clone()          # the optimizer updates the parameters in place
        decay, no_decay = [], []
        for n, p in model.named_parameters():
            (no_decay if p.dim() <= 1 or n.endswith(".bias") or n == "logit_scale" else decay).append(p)
        opt = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.05, momentum=0.9,
                              nesterov=True, dampening=0, weight_decay=0.05)
        for step in range(2):
            opt.zero_grad()
            res, pair_logits = forward(clip, model, cls, tokens, names, prefix, pairs, fusion)
            loss = loss_mixture(res["logits"], targets, pair_logits) if pairs else loss_ranking(res["logits"], targets)
            loss.backward()
            if step == 0:
                for k, val in res.items():
                    out[f"{name}.{k}"] = val
                if pair_logits is not None:
                    out[f"{name}.pair_logits"] = pair_logits
                for n, p in model.named_parameters():
                    out[f"{name}.grad.{n}"] = p.grad
            out[f"{name}.loss{step}"] = loss.reshape(1)
            opt.step()
        change = 0.0
        for n, p in model.named_parameters():
            out[f"{name}.after.{n}"] = p.detach().clone()
            before = out[f"{name}.sd.{n}"]
            change = max(change, ((p - before).abs().max() / before.abs().max().clamp(min=1e-6)).item())
        assert change > 1e-2, (name, change)           # the two steps move the weights well beyond the tolerance
        meta[f"{name}.variant"] = dict(decoder=kind, prefix=prefix, pairs=pairs, fusion=fusion)
        print(name, "loss", [out[f"{name}.loss{s}"].item() for s in range(2)], "max relative weight change", round(change, 4))

    tensors = {k: t.detach().float().contiguous() for k, t in out.items()}
    save_file(tensors, OUT, metadata={k: json.dumps(v) for k, v in meta.items()})
    print(OUT, len(tensors), "tensors", os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()

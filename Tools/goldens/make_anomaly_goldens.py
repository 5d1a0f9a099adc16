"""Goldens for the frozen-CLIP anomaly model (AxialModels CLIP/CLIPAdapters.swift, CLIP/PromptLearner.swift,
CLIP/AnomalyMaps.swift): MVFA (MediaBrain-SJTU/MVFA-AD@a30bf7b) → MLA-LP (vvthai10/mla-pl@e674d02).

A tiny random-init open_clip CLIP (the shapes of the `clip_test` registry entry: image 32, patch 8,
vision width 64 × 4 blocks, text width 32 × 2 blocks, embed 48 = adapter bottleneck, adapters after
blocks 1/2/3/4) with its vocabulary compacted to the token ids the prompts use (the fixture stores
`vocab_ids`: compact id i ↔ CLIP BPE id vocab_ids[i], sorted, so EOT stays the largest id). The
reference computation below is written from the facts of the two public repositories:

- adapters (per level, seg and det): fc1 = Linear(width→bottleneck, no bias) + LeakyReLU(0.01),
  fc2 = Linear(bottleneck→width, no bias) + LeakyReLU; after the level's block
  x ← 0.8·x + 0.1·seg.fc2 + 0.1·det.fc2; the fc1 outputs (bottleneck, patch tokens 1:) are the features.
- MVFA text: 7 normal / 5 abnormal states × 35 templates with the object name, encode_text, L2 per
  sentence, mean, L2 → T [E, 2].
- MLA-LP text: "X X X X X X X X <descriptor>." per descriptor (10 normal / 11 abnormal), token
  embeddings with the 8 X rows replaced by the class-specific context ctx.{normal,abnormal}_end
  [n, 8, width], through the text transformer WITH the causal mask (Axial's choice: mla-pl's
  TextEncoder calls the transformer without attn_mask; CoOp and CLIP use the causal mask), EOT
  pooling, projection, unnormalised mean per class, L2 → T [E, 2].
- maps: per level 100·normalize(tokens)·T → [B, 2, g, g] → bilinear (align_corners=True) to the
  image size → softmax over the 2 channels → channel 1; summed over levels (the reference
  interpolates the logits and then takes the softmax, in training and test).
- det score: Σ_levels mean over patches of softmax(100·normalize(det tokens)·T)[..., 1].
- few-shot: the normal shots ×11 (utils.augment: rotations −π/8, −π/16, π/16, π/8 and translations
  (±0.1, ±0.1) by affine_grid + grid_sample(bilinear, reflection, align_corners=False), hflip, vflip);
  bank = their adapted PATCH tokens per level (the reference also puts each shot's CLS row into the
  bank; Axial keeps patches only); map = Σ_levels bilinear(min over the bank of 1 − cos);
  few-shot det score = mean of the det-branch map. Fusion: min-max over the image set, 0.5/0.5.
- loss: per level FocalLoss(γ 2, smooth 1e-5, alpha 1) on the softmax probabilities + BinaryDice
  (smooth 1) on channel 1, and for det BCE-with-logits on logit(score) with score the level's mean
  patch probability (the reference passes the probability itself to BCEWithLogits [Q]); seg + det.
- one Adam step, betas (0.5, 0.999): adapters lr 1e-4, prompt context lr 1e-3 (two groups).
- adapted slice embedding (`axial extract --adapters`): per level [mean over patches of the seg
  tokens, mean of the det tokens], levels concatenated → [B, 2·levels·bottleneck].

    python Tools/goldens/make_anomaly_goldens.py → Tests/AxialModelsTests/Fixtures/anomaly.safetensors
"""
import json, math, os, sys, types, importlib.util
import torch, torch.nn as nn, torch.nn.functional as F

try:
    import open_clip  # noqa: F401
except Exception:  # torch without a working torchvision (CPU wheel + CUDA torchvision): load only the model modules
    spec = importlib.util.find_spec("open_clip")
    pkg = types.ModuleType("open_clip"); pkg.__path__ = list(spec.submodule_search_locations); sys.modules["open_clip"] = pkg
    tv, ops, misc = (types.ModuleType(n) for n in ("torchvision", "torchvision.ops", "torchvision.ops.misc"))
    misc.FrozenBatchNorm2d = type("FrozenBatchNorm2d", (), {})
    tv.ops, ops.misc = ops, misc
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.misc": misc})
from open_clip.model import CLIP, CLIPVisionCfg, CLIPTextCfg
from open_clip.tokenizer import tokenize
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/anomaly.safetensors")
torch.manual_seed(0)

# ---------------------------------------------------------------- prompt facts (MVFA utils.py, mla-pl learnable_prompt.py)
STATES_NORMAL = ['{}', 'flawless {}', 'perfect {}', 'unblemished {}', '{} without flaw', '{} without defect', '{} without damage']
STATES_ABNORMAL = ['damaged {}', 'broken {}', '{} with flaw', '{} with defect', '{} with damage']
TEMPLATES = ['a bad photo of a {}.', 'a low resolution photo of the {}.', 'a bad photo of the {}.', 'a cropped photo of the {}.',
             'a bright photo of a {}.', 'a dark photo of the {}.', 'a photo of my {}.', 'a photo of the cool {}.',
             'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a bright photo of the {}.',
             'a cropped photo of a {}.', 'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.', 'a photo of the {}.',
             'a good photo of the {}.', 'a photo of one {}.', 'a close-up photo of the {}.', 'a photo of a {}.',
             'a low resolution photo of a {}.', 'a photo of a large {}.', 'a blurry photo of a {}.',
             'a jpeg corrupted photo of the {}.', 'a good photo of a {}.', 'a photo of the small {}.', 'a photo of the large {}.',
             'a black and white photo of a {}.', 'a dark photo of a {}.', 'a photo of a cool {}.', 'a photo of a small {}.',
             'there is a {} in the scene.', 'there is the {} in the scene.', 'this is a {} in the scene.',
             'this is the {} in the scene.', 'this is one {} in the scene.']
DESC_NORMAL = ["normal", "healthy", "negative", "unremarkable", "clear", "asymptomatic", "normal findings", "no findings",
               "in good health", "no evidence of disease"]
DESC_ABNORMAL = ["abnormal", "positive", "symptomatic", "disease", "lesion", "pathological", "impaired", "evidence of disease",
                 "abnormal finding", "pathological condition", "pathological abnormality"]
OBJECT = "Brain"
N_CTX = 8
assert len(TEMPLATES) == 35 and len(STATES_NORMAL) == 7 and len(STATES_ABNORMAL) == 5
assert len(DESC_NORMAL) == 10 and len(DESC_ABNORMAL) == 11

template_sentences = [[t.format(s.format(OBJECT)) for s in states for t in TEMPLATES] for states in (STATES_NORMAL, STATES_ABNORMAL)]
prompt_sentences = [[" ".join(["X"] * N_CTX) + " " + d + "." for d in descs] for descs in (DESC_NORMAL, DESC_ABNORMAL)]
all_ids = [tokenize(s) for s in template_sentences + prompt_sentences]                 # [n, 77] CLIP BPE ids
vocab_ids = torch.unique(torch.cat([t.flatten() for t in all_ids]))                     # sorted
compact = {int(v): i for i, v in enumerate(vocab_ids)}
remap = lambda t: t.clone().apply_(lambda v: compact[v])
ids = [remap(t) for t in all_ids]

# ---------------------------------------------------------------- tiny CLIP (clip_test shapes, compact vocab)
CFG = dict(embed_dim=48, quick_gelu=True,
           vision=dict(layers=4, width=64, head_width=16, patch_size=8, image_size=32, mlp_ratio=4.0),
           text=dict(context_length=77, vocab_size=len(vocab_ids), width=32, heads=4, layers=2))
LEVELS = [1, 2, 3, 4]
BOTTLENECK = 48
IMG = CFG["vision"]["image_size"]
clip = CLIP(CFG["embed_dim"], CLIPVisionCfg(**CFG["vision"]), CLIPTextCfg(**CFG["text"]), quick_gelu=True).eval()
with torch.no_grad():
    for n, p in clip.named_parameters():
        if n != "logit_scale":
            p.add_(0.05 * torch.randn_like(p))
for p in clip.parameters():
    p.requires_grad_(False)                                  # frozen; gradients still flow through to the adapters


class Adapter(nn.Module):
    def __init__(self, c_in, bottleneck):
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(c_in, bottleneck, bias=False), nn.LeakyReLU())
        self.fc2 = nn.Sequential(nn.Linear(bottleneck, c_in, bias=False), nn.LeakyReLU())

    def forward(self, x):
        mid = self.fc1(x)
        return mid, self.fc2(mid)


class Adapters(nn.Module):
    def __init__(self):
        super().__init__()
        w = CFG["vision"]["width"]
        self.seg_adapters = nn.ModuleList([Adapter(w, BOTTLENECK) for _ in LEVELS])
        self.det_adapters = nn.ModuleList([Adapter(w, BOTTLENECK) for _ in LEVELS])

    def forward(self, images):
        v = clip.visual
        x = v._embeds(images)
        assert v.transformer.batch_first
        seg, det = [], []
        for i, block in enumerate(v.transformer.resblocks[:max(LEVELS)]):
            x = block(x)
            if i + 1 in LEVELS:
                k = LEVELS.index(i + 1)
                sm, so = self.seg_adapters[k](x)
                dm, do = self.det_adapters[k](x)
                x = 0.8 * x + 0.1 * so + 0.1 * do
                seg.append(sm[:, 1:]); det.append(dm[:, 1:])
        return seg, det


class PromptLearner(nn.Module):
    def __init__(self):
        super().__init__()
        w = CFG["text"]["width"]
        self.ctx = nn.ParameterDict({
            "normal_end": nn.Parameter(torch.empty(len(DESC_NORMAL), N_CTX, w).normal_(std=0.02)),
            "abnormal_end": nn.Parameter(torch.empty(len(DESC_ABNORMAL), N_CTX, w).normal_(std=0.02)),
        })

    def forward(self):
        feats = []
        for cls, tok in (("normal", ids[2]), ("abnormal", ids[3])):
            with torch.no_grad():
                emb = clip.token_embedding(tok)
            x = torch.cat([emb[:, :1], self.ctx[f"{cls}_end"], emb[:, 1 + N_CTX:]], dim=1) + clip.positional_embedding
            x = clip.transformer(x, attn_mask=clip.attn_mask)
            x = clip.ln_final(x)
            f = x[torch.arange(x.shape[0]), tok.argmax(dim=-1)] @ clip.text_projection
            f = f.mean(dim=0)
            feats.append(f / f.norm())
        return torch.stack(feats, dim=1)                    # [E, 2]


def template_features():
    feats = []
    with torch.no_grad():
        for tok in ids[:2]:
            e = clip.encode_text(tok)
            e = e / e.norm(dim=-1, keepdim=True)
            e = e.mean(dim=0)
            feats.append(e / e.norm())
    return torch.stack(feats, dim=1)


def level_logits(tokens, text):
    """[B, N, E] → 100·P̂T as [B, 2, g, g] upsampled (bilinear, align_corners) to the image size."""
    B, N, _ = tokens.shape
    g = int(math.isqrt(N))
    t = tokens / tokens.norm(dim=-1, keepdim=True)
    logits = (100.0 * t @ text).permute(0, 2, 1).reshape(B, 2, g, g)
    return F.interpolate(logits, size=IMG, mode="bilinear", align_corners=True)


def seg_map(seg_tokens, text):
    return sum(torch.softmax(level_logits(t, text), dim=1)[:, 1] for t in seg_tokens)


def det_level_scores(det_tokens, text):
    out = []
    for t in det_tokens:
        tn = t / t.norm(dim=-1, keepdim=True)
        out.append(torch.softmax(100.0 * tn @ text, dim=-1)[:, :, 1].mean(dim=-1))   # [B]
    return out


def focal(probs, mask, gamma=2.0, smooth=1e-5):
    p = probs.permute(0, 2, 3, 1).reshape(-1, 2)
    idx = mask.reshape(-1, 1).long()
    one_hot = torch.zeros(p.shape[0], 2).scatter_(1, idx, 1).clamp(smooth, 1.0 - smooth)
    pt = (one_hot * p).sum(1) + smooth
    return (-1 * torch.pow(1 - pt, gamma) * pt.log()).mean()


def dice(p1, mask):
    N = mask.shape[0]
    i = (p1.reshape(N, -1) * mask.reshape(N, -1)).sum(1)
    d = (2 * i + 1) / (p1.reshape(N, -1).sum(1) + mask.reshape(N, -1).sum(1) + 1)
    return 1 - d.sum() / N


def loss_fn(seg_tokens, det_tokens, text, masks, labels):
    seg = 0
    for t in seg_tokens:
        probs = torch.softmax(level_logits(t, text), dim=1)
        seg = seg + focal(probs, masks) + dice(probs[:, 1], masks)
    det = 0
    for s in det_level_scores(det_tokens, text):
        s = s.clamp(1e-6, 1 - 1e-6)
        det = det + F.binary_cross_entropy_with_logits(torch.log(s) - torch.log(1 - s), labels)
    return seg + det, seg, det


def affine(x, theta):
    th = torch.tensor(theta, dtype=torch.float32)[None].repeat(x.shape[0], 1, 1)
    grid = F.affine_grid(th, list(x.size()), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def augment(x):
    out = [x]
    for a in [-math.pi / 8, -math.pi / 16, math.pi / 16, math.pi / 8]:
        out.append(affine(x, [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0]]))
    for a, b in [(0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1)]:
        out.append(affine(x, [[1, 0, a], [0, 1, b]]))
    out.append(torch.flip(x, dims=[3]))
    out.append(torch.flip(x, dims=[2]))
    return torch.cat(out, dim=0)


def few_shot_map(tokens, bank):
    total = 0
    for t, m in zip(tokens, bank):
        B, N, _ = t.shape
        g = int(math.isqrt(N))
        mn = m / m.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        tn = t / t.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        cos = tn @ mn.T                                         # [B, N, M]
        d = (1 - cos).min(dim=-1).values.reshape(B, 1, g, g)
        total = total + F.interpolate(d, size=IMG, mode="bilinear", align_corners=True)[:, 0]
    return total


def minmax(x):
    return (x - x.min()) / (x.max() - x.min())


# ---------------------------------------------------------------- run
def main():
    adapters = Adapters()
    prompts = PromptLearner()
    out = {}
    for k, v in clip.state_dict().items():
        out["clip." + k] = v
    for k, v in adapters.state_dict().items():
        out[k] = v.clone()                                     # state_dict() shares storage: the Adam step below would change it
    for k, v in prompts.state_dict().items():
        out["prompt_learner." + k] = v.clone()
    out["vocab_ids"] = vocab_ids.float()
    for i, name in enumerate(["template_ids.normal", "template_ids.abnormal", "prompt_ids.normal", "prompt_ids.abnormal"]):
        L = int(all_ids[i].argmax(dim=-1).max()) + 1
        out[name] = all_ids[i][:, :L].float()                  # CLIP BPE ids (not compacted), trimmed after the last EOT

    B = 3
    images = torch.randn(B, 3, IMG, IMG)
    masks = torch.zeros(B, IMG, IMG)
    masks[0, 4:14, 6:18] = 1
    masks[2, 18:30, 16:28] = 1
    labels = torch.tensor([1.0, 0.0, 1.0])
    shots = torch.randn(1, 3, IMG, IMG)
    out.update(images=images, masks=masks, labels=labels, shots=shots)

    t_templates = template_features()
    out["text.templates"] = t_templates
    seg, det = adapters(images)
    t_learned = prompts()
    out["text.learned"] = t_learned
    for k, (s, d) in enumerate(zip(seg, det)):
        out[f"seg_tokens.{k}"] = s
        out[f"det_tokens.{k}"] = d
    # `axial extract --adapters` (CLIPAdaptedEncoder): per level mean over patch tokens of seg, then det; levels concatenated
    out["adapted_embedding"] = torch.cat([torch.cat([s.mean(dim=1), d.mean(dim=1)], dim=1) for s, d in zip(seg, det)], dim=1)
    with torch.no_grad():
        for name, T in (("learned", t_learned), ("templates", t_templates)):
            out[f"map.{name}"] = seg_map(seg, T)
            out[f"det_score.{name}"] = sum(det_level_scores(det, T))
        aug = augment(shots)
        out["shots_augmented"] = aug
        bs, bd = adapters(aug)
        bank_seg = [t.reshape(-1, t.shape[-1]) for t in bs]
        bank_det = [t.reshape(-1, t.shape[-1]) for t in bd]
        out["few_map.seg"] = few_shot_map(seg, bank_seg)
        fd = few_shot_map(det, bank_det)
        out["few_map.det"] = fd
        out["few_score.det"] = fd.reshape(B, -1).mean(dim=1)
        out["fused_score"] = 0.5 * minmax(out["det_score.learned"]) + 0.5 * minmax(out["few_score.det"])
        out["fused_map"] = 0.5 * minmax(out["map.learned"]) + 0.5 * minmax(out["few_map.seg"])

    # loss with the template text (adapters only) and with learned prompts, one Adam step of both groups
    loss_t, _, _ = loss_fn(seg, det, t_templates.detach(), masks, labels)
    out["loss.templates"] = loss_t.detach().reshape(1)
    loss, seg_l, det_l = loss_fn(seg, det, t_learned, masks, labels)
    out["loss.learned"] = loss.detach().reshape(1)
    out["loss.learned_seg"] = seg_l.detach().reshape(1)
    out["loss.learned_det"] = det_l.detach().reshape(1)
    opt = torch.optim.Adam([{"params": list(adapters.parameters()), "lr": 1e-4},
                            {"params": list(prompts.parameters()), "lr": 1e-3}], betas=(0.5, 0.999))
    opt.zero_grad()
    loss.backward()
    for k, p in adapters.named_parameters():
        # the last level's fc2 feeds nothing (no block after it): no gradient, and Adam leaves it as it is
        out["grad." + k] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
    for k, p in prompts.named_parameters():
        out["grad.prompt_learner." + k] = p.grad.clone()
    opt.step()
    for k, v in adapters.state_dict().items():
        out["step1." + k] = v.clone()
    for k, v in prompts.state_dict().items():
        out["step1.prompt_learner." + k] = v.clone()

    tensors = {k: v.detach().float().contiguous() for k, v in out.items()}
    meta = {"config": json.dumps(dict(CFG, levels=LEVELS, bottleneck=BOTTLENECK, object=OBJECT, n_ctx=N_CTX)),
            "torch": torch.__version__}
    save_file(tensors, OUT, metadata=meta)
    print(OUT, len(tensors), "tensors", os.path.getsize(OUT), "bytes", "loss", float(loss.detach()), "templates loss", float(loss_t.detach()))


if __name__ == "__main__":  # Tools/bench/peers_anomaly.py imports the reference above at full size
    main()

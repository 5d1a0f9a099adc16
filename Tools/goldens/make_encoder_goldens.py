#!/usr/bin/env python3
"""Tiny encoder fixtures for AxialModels, built with the real libraries (timm, open_clip, transformers).

For each fixture NAME this writes, under Tests/AxialModelsTests/Fixtures/encoders/:
  NAME.weights.safetensors  the model's state dict under the library's own parameter names (F32)
  NAME.io.safetensors       inputs ("input.*") and outputs ("output.*"), incl. intermediate blocks
  NAME.json                 the configuration, the library versions and a description of every io key
All models are random-init with a fixed seed, then every floating parameter / persistent buffer is perturbed
(N(0, 0.05) added; BatchNorm running_var drawn from U(0.5, 1.5)) so that zero biases, unit norms and
identity BatchNorms cannot hide mistakes. Models run in eval mode, F32, on CPU. See README.md.

Run: "$(Tools/python-env)" Tools/goldens/make_encoder_goldens.py
"""
import json
import math
import os
import tempfile
from functools import partial

import open_clip
import timm
import torch
import torch.nn as nn
import transformers
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, CustomTextCLIP
from open_clip.modified_resnet import ModifiedResNet
from safetensors.torch import save_file
from timm.layers import to_2tuple
from timm.models.mambaout import MambaOut
from timm.models.vision_transformer import VisionTransformer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "AxialModelsTests", "Fixtures", "encoders")
FIXTURES = os.path.join(ROOT, "Tests", "AxialModelsTests", "Fixtures")
SEED = 20240607
VERSIONS = {"torch": torch.__version__, "timm": timm.__version__, "open_clip": open_clip.__version__,
            "transformers": transformers.__version__}


# ----------------------------------------------------------------------------------------------
# helpers

def perturb(model, skip=()):
    """Adds noise to the parameters and to the *persistent* floating buffers only. Non-persistent
    buffers (open_clip CLIP's causal `attn_mask`) are not in the state dict, so a model rebuilt from the
    saved weights recomputes them: perturbing them would make the outputs irreproducible from the
    weights (and would turn the causal mask's zeros into small nonzero biases)."""
    g = torch.Generator().manual_seed(SEED + 1)
    persistent = set(model.state_dict().keys())
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point() or name not in persistent or any(name.endswith(s) for s in skip):
                continue
            if name.endswith("running_var"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


class Recorder:
    """Forward hooks that keep each module's output (first element of a tuple)."""

    def __init__(self):
        self.outputs, self.handles = {}, []

    def add(self, key, module, transform=None):
        def hook(_m, _inp, out):
            t = out[0] if isinstance(out, (tuple, list)) else out
            self.outputs[key] = (transform(t) if transform else t).detach().clone()
        self.handles.append(module.register_forward_hook(hook))

    def remove(self):
        for h in self.handles:
            h.remove()


def write(name, model_state, io, config, describe):
    os.makedirs(OUT, exist_ok=True)
    weights = {k: v.detach().contiguous().clone() for k, v in model_state.items()}
    dropped = sorted(k for k, v in weights.items() if not v.is_floating_point())
    weights = {k: v.float() for k, v in weights.items() if v.is_floating_point()}
    io = {k: v.detach().contiguous().clone() for k, v in io.items()}
    for path, tensors in ((f"{name}.weights.safetensors", weights), (f"{name}.io.safetensors", io)):
        full = os.path.join(OUT, path)
        save_file(tensors, full + ".tmp", metadata={"fixture": name, "seed": str(SEED)})
        os.replace(full + ".tmp", full)
    meta = {
        "fixture": name, "seed": SEED, "versions": VERSIONS, "config": config,
        "weights": {k: list(v.shape) for k, v in weights.items()},
        "weights_dropped_non_float": dropped,
        "io": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                   "description": describe.get(k, "")} for k, v in io.items()},
    }
    with open(os.path.join(OUT, f"{name}.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(os.path.join(OUT, f"{name}.json.tmp"), os.path.join(OUT, f"{name}.json"))
    missing = [k for k in io if k not in describe]
    assert not missing, f"{name}: undocumented io keys {missing}"


def image(batch, size, seed):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------
# timm ViT (learned position embedding, class token)

VIT_CFG = dict(img_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
               qkv_bias=True, class_token=True, global_pool="token", num_classes=0,
               norm_layer="LayerNorm(eps=1e-6) (timm default)", act_layer="GELU (erf)")


def timm_vit(**overrides):
    cfg = {k: v for k, v in VIT_CFG.items() if k not in ("norm_layer", "act_layer")}
    cfg.update(overrides)
    return VisionTransformer(**cfg)


def vit_io(model, x, prefix=""):
    rec = Recorder()
    rec.add("output.patch_embed", model.patch_embed)
    rec.add("output.pos_embedded", model.norm_pre)  # tokens after cls concat + pos embed (+ norm_pre = Identity)
    for i, blk in enumerate(model.blocks):
        rec.add(f"output.blocks.{i}", blk)
    with torch.no_grad():
        feats = model.forward_features(x)
        feature = model.forward_head(feats, pre_logits=True)
    rec.remove()
    io = {"input.image": x, **rec.outputs, "output.forward_features": feats, "output.feature": feature}
    return io


VIT_DESCRIBE = {
    "input.image": "NCHW image batch, standard normal",
    "output.patch_embed": "patch_embed(x): conv PxP stride P, flattened → [B, N, D]",
    "output.pos_embedded": "[cls] + patches, plus pos_embed → [B, 1+N, D] (input of block 0)",
    "output.forward_features": "forward_features(x): blocks then final norm → [B, 1+N, D]",
    "output.feature": "forward_head(forward_features(x), pre_logits=True) → the class token [B, D]",
}


def make_vit():
    torch.manual_seed(SEED)
    model = timm_vit().eval()
    perturb(model)
    io = vit_io(model, image(2, 32, SEED + 10))
    d = dict(VIT_DESCRIBE, **{f"output.blocks.{i}": f"output of blocks[{i}] → [B, 1+N, D]" for i in range(2)})
    write("vit_timm", model.state_dict(), io, dict(VIT_CFG, library="timm VisionTransformer"), d)


# ----------------------------------------------------------------------------------------------
# MoCo v3 ViT: fixed 2D sin-cos position embedding (facebookresearch/moco-v3 vits.py)

def moco_sincos_pos_embed(grid_h, grid_w, embed_dim, temperature=10000.0):
    """VisionTransformerMoCo.build_2d_sincos_position_embedding, reproduced from the facts:

        grid_w, grid_h = torch.meshgrid(arange(w), arange(h))          # indexing 'ij'
        omega = 1 / temperature ** (arange(D/4) / (D/4))
        out_w = grid_w.flatten()[:, None] * omega[None];  out_h likewise
        pos = cat([sin(out_w), cos(out_w), sin(out_h), cos(out_h)], dim=1)   # [h*w, D]
        pos_embed = cat([zeros(1, D), pos])[None]                       # class token gets 0

    Note meshgrid(grid_w, grid_h) with 'ij' indexing: for token m (row-major over the h x w grid),
    grid_w.flatten()[m] = m // h and grid_h.flatten()[m] = m % h — so on a square grid the "w" half
    encodes the ROW index and the "h" half the COLUMN index.
    """
    assert embed_dim % 4 == 0
    gw = torch.arange(grid_w, dtype=torch.float32)
    gh = torch.arange(grid_h, dtype=torch.float32)
    gw, gh = torch.meshgrid(gw, gh, indexing="ij")
    pos_dim = embed_dim // 4
    omega = torch.arange(pos_dim, dtype=torch.float32) / pos_dim
    omega = 1.0 / (temperature ** omega)
    out_w = torch.einsum("m,d->md", gw.flatten(), omega)
    out_h = torch.einsum("m,d->md", gh.flatten(), omega)
    pos = torch.cat([torch.sin(out_w), torch.cos(out_w), torch.sin(out_h), torch.cos(out_h)], dim=1)[None]
    return torch.cat([torch.zeros(1, 1, embed_dim), pos], dim=1)


def moco_vit(**overrides):
    model = timm_vit(**overrides)
    h, w = model.patch_embed.grid_size
    pe = moco_sincos_pos_embed(h, w, model.embed_dim)
    del model.pos_embed
    model.pos_embed = nn.Parameter(pe, requires_grad=False)
    return model


class ConvStem(nn.Module):
    """MoCo v3's ConvStem (Xiao et al. 2021, "Early Convolutions Help Transformers See Better"),
    reproduced from the facts of moco-v3 vits.py: 4 × [conv3x3 stride 2 pad 1 no bias → BatchNorm2d →
    ReLU] with channels D/8, D/4, D/2, D, then a 1x1 conv (with bias) to D; flattened to [B, N, D];
    norm = Identity. Patch size must be 16. Parameter names: proj.{0,3,6,9} convs, proj.{1,4,7,10} BNs,
    proj.12 the 1x1 conv."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, norm_layer=None, flatten=True,
                 **_ignored):
        super().__init__()
        assert patch_size == 16 and embed_dim % 8 == 0
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        self.grid_size = (self.img_size[0] // 16, self.img_size[1] // 16)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.flatten = flatten
        stem, cin, cout = [], in_chans, embed_dim // 8
        for _ in range(4):
            stem += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin, cout = cout, cout * 2
        stem.append(nn.Conv2d(cin, embed_dim, 1))
        self.proj = nn.Sequential(*stem)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def feat_ratio(self, as_scalar=True):
        return 16 if as_scalar else (16, 16)

    def forward(self, x):
        x = self.proj(x)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        return self.norm(x)


def make_moco():
    torch.manual_seed(SEED)
    model = moco_vit().eval()
    perturb(model, skip=("pos_embed",))
    io = vit_io(model, image(2, 32, SEED + 11))
    d = dict(VIT_DESCRIBE, **{f"output.blocks.{i}": f"output of blocks[{i}] → [B, 1+N, D]" for i in range(2)})
    d["output.pos_embedded"] = "[cls] + patches, plus the FIXED sin-cos pos_embed (in weights as pos_embed) → [B, 1+N, D]"
    cfg = dict(VIT_CFG, library="timm VisionTransformer + MoCo v3 2D sin-cos pos_embed", pos_embed="sincos, temperature 10000",
               sincos_formula=moco_sincos_pos_embed.__doc__.strip())
    write("vit_moco_sincos", model.state_dict(), io, cfg, d)

    torch.manual_seed(SEED)
    conv = moco_vit(img_size=64, patch_size=16, depth=1, embed_layer=ConvStem).eval()
    perturb(conv, skip=("pos_embed",))
    io = vit_io(conv, image(2, 64, SEED + 12))
    rec = Recorder()
    for i in (0, 3, 6, 9, 12):
        rec.add(f"output.stem.{i}", conv.patch_embed.proj[i])
    with torch.no_grad():
        conv.patch_embed(io["input.image"])
    rec.remove()
    io.update(rec.outputs)
    d = dict(VIT_DESCRIBE, **{"output.blocks.0": "output of blocks[0] → [B, 1+N, D]"})
    d["output.patch_embed"] = "ConvStem(x) → [B, N, D] (N = (64/16)^2 = 16)"
    d["output.pos_embedded"] = "[cls] + stem tokens, plus the fixed sin-cos pos_embed → [B, 1+N, D]"
    for i in (0, 3, 6, 9):
        d[f"output.stem.{i}"] = f"stem conv proj[{i}] output, before its BatchNorm (NCHW)"
    d["output.stem.12"] = "final 1x1 conv proj[12] output (NCHW), before flattening"
    cfg = dict(VIT_CFG, img_size=64, patch_size=16, depth=1, embed_layer="MoCo v3 ConvStem",
               library="timm VisionTransformer + MoCo v3 ConvStem + sin-cos pos_embed",
               note="vit_conv_small/base use depth 11 (one block fewer than 12); this tiny one uses depth 1 "
                    "against the tiny plain ViT's 2",
               convstem=ConvStem.__doc__.strip(), sincos_formula=moco_sincos_pos_embed.__doc__.strip())
    write("vit_conv_moco", conv.state_dict(), io, cfg, d)


# ----------------------------------------------------------------------------------------------
# timm MambaOut

def make_mambaout():
    torch.manual_seed(SEED)
    cfg = dict(in_chans=3, num_classes=10, depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), global_pool="avg")
    model = MambaOut(**cfg).eval()
    perturb(model)
    x = image(2, 64, SEED + 13)
    rec = Recorder()
    rec.add("output.stem", model.stem)
    for i, st in enumerate(model.stages):
        rec.add(f"output.stages.{i}", st)
    with torch.no_grad():
        feats = model.forward_features(x)
        feature = model.forward_head(feats, pre_logits=True)
        logits = model.forward_head(feats)
        pooled = model.head.norm(feats.mean(dim=(1, 2)))
    rec.remove()
    io = {"input.image": x, **rec.outputs, "output.forward_features": feats, "output.pooled": pooled,
          "output.feature": feature, "output.logits": logits}
    d = {"input.image": "NCHW image batch, standard normal",
         "output.stem": "stem(x): conv3x3 s2 → LayerNorm(C, NCHW→NHWC) → GELU → conv3x3 s2 → LayerNorm → NHWC [B, H/4, W/4, C0]",
         "output.forward_features": "forward_features(x) = last stage output, NHWC [B, H/32, W/32, C3]",
         "output.pooled": "head.norm(mean over H, W of forward_features) → [B, C3] (= num_features; NOT the pre_logits feature)",
         "output.feature": "forward_head(forward_features(x), pre_logits=True) = head.pre_logits(pooled): fc(C3→4·C3) → GELU → "
                           "LayerNorm → [B, 4·C3] (timm's default MlpHead; mambaout_tiny: 2304, num_features 576)",
         "output.logits": "forward_head(forward_features(x)) with the tiny 10-class MlpHead [B, 10]"}
    for i in range(4):
        d[f"output.stages.{i}"] = f"stages[{i}] output (downsample then gated-conv blocks), NHWC"
    write("mambaout_timm", model.state_dict(), io, dict(cfg, library="timm MambaOut", kernel_size=7,
          expansion_ratio="8/3", conv_ratio=1.0, head_fn="default (MlpHead)", stem_mid_norm=True), d)


# ----------------------------------------------------------------------------------------------
# open_clip CLIP (ViT image tower + causal text transformer), QuickGELU

def batch_first_tokens(transformer):
    bf = getattr(transformer, "batch_first", True)
    return (lambda t: t) if bf else (lambda t: t.permute(1, 0, 2))


def make_clip():
    torch.manual_seed(SEED)
    vision = dict(layers=2, width=32, head_width=16, mlp_ratio=4.0, patch_size=8, image_size=32)
    text = dict(context_length=77, vocab_size=64, width=32, heads=2, layers=2)
    model = CLIP(embed_dim=16, vision_cfg=CLIPVisionCfg(**vision), text_cfg=CLIPTextCfg(**text), quick_gelu=True).eval()
    perturb(model)
    x = image(2, 32, SEED + 14)
    g = torch.Generator().manual_seed(SEED + 15)
    ids = torch.zeros(2, 77, dtype=torch.long)
    for row, n in enumerate((9, 30)):
        ids[row, 0] = 62                                    # "<start_of_text>" of this tiny vocab
        ids[row, 1:n + 1] = torch.randint(1, 62, (n,), generator=g)
        ids[row, n + 1] = 63                                # "<end_of_text>": the largest id (argmax pooling)
    rec = Recorder()
    vt = batch_first_tokens(model.visual.transformer)
    tt = batch_first_tokens(model.transformer)
    rec.add("output.visual.ln_pre", model.visual.ln_pre)
    for i, blk in enumerate(model.visual.transformer.resblocks):
        rec.add(f"output.visual.blocks.{i}", blk, vt)
    for i, blk in enumerate(model.transformer.resblocks):
        rec.add(f"output.text.blocks.{i}", blk, tt)
    rec.add("output.text.ln_final", model.ln_final)
    with torch.no_grad():
        img = model.encode_image(x)
        txt = model.encode_text(ids)
        li, lt = model.get_logits(x, ids)
    rec.remove()
    io = {"input.image": x, "input.text": ids, **rec.outputs, "output.encode_image": img, "output.encode_text": txt,
          "output.logits_per_image": li}
    d = {"input.image": "NCHW image batch, standard normal",
         "input.text": "token ids [B, 77] (int64): 62 = start, 63 = end (the row's argmax), 0 = padding",
         "output.visual.ln_pre": "visual: conv1 patches + class_embedding + positional_embedding, then ln_pre → [B, 1+N, W]",
         "output.text.ln_final": "text: ln_final over all positions → [B, 77, W]",
         "output.encode_image": "encode_image(x) (before L2 normalisation): ln_post(class token) @ visual.proj → [B, E]",
         "output.encode_text": "encode_text(t): ln_final at the argmax (end) position @ text_projection → [B, E]",
         "output.logits_per_image": "exp(logit_scale) * normalize(img) @ normalize(txt).T → [B, B]"}
    for i in range(2):
        d[f"output.visual.blocks.{i}"] = f"visual.transformer.resblocks[{i}] output, batch-first [B, 1+N, W]"
        d[f"output.text.blocks.{i}"] = f"transformer.resblocks[{i}] output (causal mask), batch-first [B, 77, W]"
    cfg = dict(embed_dim=16, vision_cfg=vision, text_cfg=text, quick_gelu=True, library="open_clip CLIP",
               attn_mask="causal (upper triangle -inf), text only", text_pool="argmax of token id",
               layer_norm_eps=1e-5)
    write("clip_vit", model.state_dict(), io, cfg, d)


# ----------------------------------------------------------------------------------------------
# open_clip ModifiedResNet (CLIP RN50 family) with attention pool; PsPG-style dense tokens

def make_resnet():
    torch.manual_seed(SEED)
    cfg = dict(layers=(1, 1, 1, 1), output_dim=16, heads=4, image_size=64, width=4)
    model = ModifiedResNet(**cfg).eval()
    perturb(model)
    x = image(2, 64, SEED + 16)
    rec = Recorder()
    rec.add("output.stem", model.avgpool)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        rec.add(f"output.{name}", getattr(model, name))
    with torch.no_grad():
        glob = model(x)
        feat = rec.outputs["output.layer4"]
        ap = model.attnpool
        tokens = feat.flatten(2).permute(0, 2, 1)                               # [B, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # [B, 1+HW, C]
        tokens = tokens + ap.positional_embedding[None]
        dense = ap.c_proj(ap.v_proj(tokens))                                    # [B, 1+HW, out]
    rec.remove()
    io = {"input.image": x, **rec.outputs, "output.global": glob, "output.dense": dense}
    d = {"input.image": "NCHW image batch, standard normal",
         "output.stem": "stem: 3 × (conv3x3 → BN → ReLU) (first stride 2), then AvgPool2d(2) → NCHW",
         "output.global": "forward(x) = attnpool(layer4): multi-head attention of the mean token over [mean; HW tokens] "
                          "+ positional_embedding, output row 0 after c_proj → [B, output_dim]",
         "output.dense": "PsPG dense tokens: c_proj(v_proj(tokens + positional_embedding)) for ALL 1+HW tokens "
                         "(index 0 = the mean token, 1… = spatial, row-major) → [B, 1+HW, output_dim]"}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        d[f"output.{name}"] = f"{name} output (Bottleneck blocks with anti-aliased AvgPool stride), NCHW"
    write("clip_resnet", model.state_dict(), io, dict(cfg, library="open_clip ModifiedResNet",
          note="keys sit under 'visual.' in a full CLIP checkpoint", embed_dim=cfg["width"] * 32), d)


# ----------------------------------------------------------------------------------------------
# BiomedCLIP-like: timm ViT image tower (CLS token, linear proj) + HF BERT text tower

def make_biomedclip():
    torch.manual_seed(SEED)
    vocab_path = os.path.join(FIXTURES, "wordpiece_vocab.txt")
    vocab_size = sum(1 for _ in open(vocab_path, encoding="utf-8"))
    bert = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=256, type_vocab_size=2, pad_token_id=0,
                hidden_act="gelu", layer_norm_eps=1e-12)
    with tempfile.TemporaryDirectory() as d:
        transformers.BertConfig(**bert).save_pretrained(d)
        vision_cfg = CLIPVisionCfg(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=False, timm_pool="",
                                   timm_proj="linear", image_size=32)
        text_cfg = CLIPTextCfg(hf_model_name=d, hf_tokenizer_name=d, hf_model_pretrained=False, hf_proj_type="mlp",
                               hf_pooler_type="cls_last_hidden_state_pooler", context_length=256)
        model = CustomTextCLIP(embed_dim=16, vision_cfg=vision_cfg, text_cfg=text_cfg)
    # The open_clip TimmModel builds timm's full-size trunk; swap in a tiny one with the same layout.
    model.visual.trunk = timm_vit()
    model.visual.trunk.reset_classifier(0)          # timm_pool '' → keep the ViT's own 'token' pooling
    model.visual.head.proj = nn.Linear(32, 16, bias=False)
    model = model.eval()
    perturb(model)

    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    tok = BertTokenizerLegacy(vocab_file=vocab_path, do_lower_case=True)
    texts = ["a chest CT scan", "3.5 cm spiculated mass in the right upper lobe, T2N1M0"]
    enc = tok(texts, max_length=256, padding="max_length", truncation=True, return_tensors="pt")
    ids = enc["input_ids"]
    x = image(2, 32, SEED + 17)
    rec = Recorder()
    rec.add("output.text.embeddings", model.text.transformer.embeddings)
    for i, layer in enumerate(model.text.transformer.encoder.layer):
        rec.add(f"output.text.layers.{i}", layer)
    for i, blk in enumerate(model.visual.trunk.blocks):
        rec.add(f"output.visual.blocks.{i}", blk)
    with torch.no_grad():
        img = model.encode_image(x)
        txt = model.encode_text(ids)
        pooled = model.text.transformer(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state[:, 0]
    rec.remove()
    io = {"input.image": x, "input.text": ids, "input.attention_mask": enc["attention_mask"], **rec.outputs,
          "output.text.cls": pooled, "output.encode_image": img, "output.encode_text": txt}
    dsc = {"input.image": "NCHW image batch, standard normal",
           "input.text": "BERT WordPiece ids [B, 256] of two phrases with Tests/.../wordpiece_vocab.txt "
                         "([CLS]=2 … [SEP]=3, [PAD]=0)",
           "input.attention_mask": "ids != pad (what HFTextEncoder passes)",
           "output.text.embeddings": "BertEmbeddings: word + position + token_type(0) embeddings, LayerNorm → [B, 256, H]",
           "output.text.cls": "last_hidden_state[:, 0] (cls_last_hidden_state_pooler) → [B, H]",
           "output.encode_image": "encode_image(x) before L2 norm: trunk class token after final norm → head.proj (linear, no bias) → [B, E]",
           "output.encode_text": "encode_text(ids) before L2 norm: CLS → proj MLP (Linear no bias → GELU → Linear no bias) → [B, E]"}
    for i in range(2):
        dsc[f"output.text.layers.{i}"] = f"BertLayer {i} output (padding masked as -inf… in attention) → [B, 256, H]"
        dsc[f"output.visual.blocks.{i}"] = f"visual.trunk.blocks[{i}] output → [B, 1+N, D]"
    cfg = dict(embed_dim=16, library="open_clip CustomTextCLIP (TimmModel + HFTextEncoder)",
               vision=dict(VIT_CFG, timm_pool="", timm_proj="linear", proj_bias=False,
                           note="real BiomedCLIP: vit_base_patch16_224, 224px"),
               text=dict(bert, hf_proj_type="mlp", hf_pooler_type="cls_last_hidden_state_pooler", context_length=256,
                         proj_hidden=(32 + 16) // 2,
                         note="real BiomedCLIP (open_clip_config.json): BiomedBERT-base-uncased-abstract, "
                              "hf_proj_type 'mlp', hf_pooler_type 'cls_last_hidden_state_pooler', context 256"),
               texts=texts)
    write("biomedclip", model.state_dict(), io, cfg, dsc)


def main():
    torch.set_num_threads(1)
    for fn in (make_vit, make_moco, make_mambaout, make_clip, make_resnet, make_biomedclip):
        fn()
    total = 0
    for f in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, f))
        total += size
        print(f"{size:>9,}  {f}")
    print(f"{total:>9,}  total")
    assert total < 4 * 1024 * 1024, "fixtures must stay under 4 MB"


if __name__ == "__main__":
    main()

"""Goldens for the slice encoders ViT (timm + MoCo v3 variants) and MambaOut (timm).

Tiny random-init models built with the real timm 1.0.x classes (and MoCo v3's fixed 2-D sin-cos
position embedding and ConvStem, re-implemented here from the facts of facebookresearch/moco-v3
vits.py), every parameter perturbed with noise so LayerNorm/BatchNorm affines and biases matter.
For each model the fixture holds its state dict under timm's own key names (`<model>/param/...`),
an input batch and the outputs: `features` = forward_head(forward_features(x), pre_logits=True),
`logits`, `forward_features`, and every block's (ViT) or stage's (MambaOut) output.

    "$(Tools/python-env)" Tools/goldens/make_vit_goldens.py
    → Tests/AxialModelsTests/Fixtures/encoders/vit.safetensors, mambaout.safetensors
"""
import json, math, os
import torch, torch.nn as nn
from functools import partial
from safetensors.torch import save_file
import timm
from timm.models.vision_transformer import VisionTransformer
from timm.layers import PatchEmbed
from timm.models.mambaout import MambaOut

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/encoders")
os.makedirs(OUT, exist_ok=True)


def sincos_2d(grid_h, grid_w, dim, temperature=10000.0):
    """MoCo v3 build_2d_sincos_position_embedding (meshgrid 'ij' over (w, h)), with a zero cls row."""
    gw, gh = torch.meshgrid(torch.arange(grid_w, dtype=torch.float32), torch.arange(grid_h, dtype=torch.float32), indexing="ij")
    pos_dim = dim // 4
    omega = 1.0 / (temperature ** (torch.arange(pos_dim, dtype=torch.float32) / pos_dim))
    out_w = torch.einsum("m,d->md", gw.flatten(), omega)
    out_h = torch.einsum("m,d->md", gh.flatten(), omega)
    pe = torch.cat([torch.sin(out_w), torch.cos(out_w), torch.sin(out_h), torch.cos(out_h)], dim=1)[None]
    return torch.cat([torch.zeros(1, 1, dim), pe], dim=1)


class ConvStemEmbed(PatchEmbed):
    """MoCo v3 ConvStem: 4 × [conv3×3 s2 (no bias), BN, ReLU] (widths D/8, D/4, D/2, D) then conv1×1 → D."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, **kw):
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, **kw)
        layers, cin, cout = [], in_chans, embed_dim // 8
        for _ in range(4):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin, cout = cout, cout * 2
        layers.append(nn.Conv2d(cin, embed_dim, 1))
        self.proj = nn.Sequential(*layers)


def perturb(model, scale=0.2):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def vit_case(name, img=32, patch=8, dim=32, depth=3, heads=4, classes=5, pool="token", sincos=False, conv_stem=False):
    kw = dict(img_size=img, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=4.0,
              qkv_bias=True, num_classes=classes, global_pool=pool, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    if conv_stem:
        kw["embed_layer"] = ConvStemEmbed
    m = VisionTransformer(**kw)
    perturb(m)
    if sincos:
        with torch.no_grad():
            m.pos_embed.copy_(sincos_2d(img // patch, img // patch, dim))
    m.eval()
    x = torch.randn(2, 3, img, img)
    out = {}
    with torch.no_grad():
        h = m.patch_embed(x)
        h = m._pos_embed(h)
        h = m.norm_pre(h)
        out["embed"] = h.clone()
        for i, blk in enumerate(m.blocks):
            h = blk(h)
            out[f"blocks.{i}"] = h.clone()
        ff = m.forward_features(x)
        out["forward_features"] = ff
        out["features"] = m.forward_head(ff, pre_logits=True)
        out["logits"] = m.forward_head(ff)
        assert torch.allclose(out["logits"], m(x))
    t = {f"{name}/param/{k}": v.detach().contiguous() for k, v in m.state_dict().items()}
    t[f"{name}/input"] = x
    for k, v in out.items():
        t[f"{name}/out/{k}"] = v.contiguous()
    cfg = dict(image_size=img, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads, num_classes=classes,
               global_pool=pool, pos_embed="sincos" if sincos else "learned", conv_stem=conv_stem)
    return t, {f"{name}/config": json.dumps(cfg)}


def mambaout_case(name, img=32, depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), classes=5):
    m = MambaOut(depths=depths, dims=dims, num_classes=classes)
    perturb(m)
    m.eval()
    x = torch.randn(2, 3, img, img)
    out = {}
    with torch.no_grad():
        h = m.stem(x)
        out["stem"] = h.clone()  # NHWC
        for i, st in enumerate(m.stages):
            h = st(h)
            out[f"stages.{i}"] = h.clone()
        ff = m.forward_features(x)
        out["forward_features"] = ff
        out["features"] = m.forward_head(ff, pre_logits=True)
        out["logits"] = m.forward_head(ff)
        # the pooled, normed width (num_features) before the MLP head's pre_logits block
        out["pooled"] = m.head.norm(ff.mean((1, 2)))
        assert torch.allclose(out["logits"], m(x))
    t = {f"{name}/param/{k}": v.detach().contiguous() for k, v in m.state_dict().items()}
    t[f"{name}/input"] = x
    for k, v in out.items():
        t[f"{name}/out/{k}"] = v.contiguous()
    cfg = dict(image_size=img, depths=list(depths), dims=list(dims), num_classes=classes,
               num_features=m.num_features, head_hidden_size=m.head_hidden_size)
    return t, {f"{name}/config": json.dumps(cfg)}


def main():
    tensors, meta = {}, {}
    for args in [
        dict(name="vit_test"),
        dict(name="vit_test_avg", pool="avg", img=24, patch=8, depth=2),
        dict(name="vit_moco_test", sincos=True, heads=2),
        dict(name="vit_conv_test", img=32, patch=16, dim=32, depth=2, heads=4, sincos=True, conv_stem=True),
    ]:
        t, md = vit_case(**args)
        tensors.update(t); meta.update(md)
    save_file(tensors, os.path.join(OUT, "vit.safetensors"), metadata=meta)

    tensors, meta = {}, {}
    t, md = mambaout_case("mambaout_test")
    tensors.update(t); meta.update(md)
    # record the true widths of the real variants (no weights): num_features vs pre_logits width
    widths = {}
    for v in ["mambaout_femto", "mambaout_kobe", "mambaout_tiny", "mambaout_small", "mambaout_base"]:
        m = timm.create_model(v, pretrained=False)
        widths[v] = dict(num_features=m.num_features, head_hidden_size=m.head_hidden_size,
                         params=sum(p.numel() for p in m.parameters()))
    meta["variants"] = json.dumps(widths)
    save_file(tensors, os.path.join(OUT, "mambaout.safetensors"), metadata=meta)
    print(json.dumps(widths, indent=1))
    for f in ["vit.safetensors", "mambaout.safetensors"]:
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()

"""Goldens for the CLIP family encoders (AxialModels: CLIP ViT, BiomedCLIP, CLIP ModifiedResNet).

Tiny random-init models built with the real libraries (open_clip 3.3, timm, transformers) from
fixed seeds. Each fixture file holds the state dict under its own names (prefix `sd.`), the inputs
and the outputs, including intermediate block outputs (taken with forward hooks on the blocks).

    "$(Tools/python-env)" Tools/goldens/make_clip_goldens.py
    → Tests/AxialModelsTests/Fixtures/clip/{clip_vit,clip_pos_embed,biomedclip,clip_resnet}.safetensors
"""
import json, os, types
import torch, torch.nn as nn, torch.nn.functional as F
import open_clip, timm
from open_clip.model import CLIP, CLIPVisionCfg, CLIPTextCfg, resize_pos_embed
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.hf_model import HFTextEncoder
from transformers import BertConfig
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/clip")
os.makedirs(OUT, exist_ok=True)
assert open_clip.__version__ == "3.3.0", open_clip.__version__


def save(name, tensors, meta):
    tensors = {k: v.detach().float().contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(OUT, name), metadata={k: json.dumps(v) for k, v in meta.items()})
    print(name, len(tensors), "tensors")


def block_hooks(blocks, store, prefix):
    for i, b in enumerate(blocks):
        def hook(m, inp, out, i=i):
            o = out[0] if isinstance(out, tuple) else out
            store[f"{prefix}.{i + 1}"] = o.detach().clone()
        b.register_forward_hook(hook)


# ---------------------------------------------------------------- CLIP ViT (image + text towers)
def clip_vit():
    out, meta = {}, {}
    configs = {
        # QuickGELU (as the OpenAI models), patch 8 at 32 → 4×4 grid.
        "q": dict(embed_dim=24, quick_gelu=True,
                  vision=dict(layers=4, width=64, head_width=16, patch_size=8, image_size=32, mlp_ratio=4.0),
                  text=dict(context_length=12, vocab_size=50, width=48, heads=4, layers=3)),
        # GELU (open_clip's non-quickgelu configs), patch 7 at 28 → 4×4 grid.
        "g": dict(embed_dim=16, quick_gelu=False,
                  vision=dict(layers=2, width=32, head_width=16, patch_size=7, image_size=28, mlp_ratio=4.0),
                  text=dict(context_length=10, vocab_size=40, width=32, heads=2, layers=2)),
    }
    for name, c in configs.items():
        torch.manual_seed(1 if name == "q" else 2)
        model = CLIP(c["embed_dim"], CLIPVisionCfg(**c["vision"]), CLIPTextCfg(**c["text"]), quick_gelu=c["quick_gelu"]).eval()
        # open_clip's init leaves some parameters at 0 / 1; perturb everything so each weight matters.
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n == "logit_scale":
                    continue
                p.add_(0.05 * torch.randn_like(p))
        sd = model.state_dict()
        for k, v in sd.items():
            out[f"{name}.sd.{k}"] = v
        B = 2
        img = torch.randn(B, 3, c["vision"]["image_size"], c["vision"]["image_size"])
        ctx, vocab = c["text"]["context_length"], c["text"]["vocab_size"]
        lengths = [ctx, 5, 3]
        text = torch.zeros(len(lengths), ctx, dtype=torch.long)
        for i, L in enumerate(lengths):
            ids = torch.randint(1, vocab - 2, (L,))
            ids[0] = vocab - 2          # SOT
            ids[L - 1] = vocab - 1      # EOT: the largest id (argmax pooling)
            text[i, :L] = ids
        store = {}
        block_hooks(model.visual.transformer.resblocks, store, "vision_block")
        block_hooks(model.transformer.resblocks, store, "text_block")
        with torch.no_grad():
            fi = model.encode_image(img)
            ft = model.encode_text(text)
        out[f"{name}.image"] = img
        out[f"{name}.text"] = text.float()
        out[f"{name}.image_features"] = fi
        out[f"{name}.text_features"] = ft
        for k, v in store.items():
            out[f"{name}.{k}"] = v
        meta[f"{name}.config"] = c

        # Other input size: open_clip's resize_pos_embed (bicubic, antialias) on load.
        big = c["vision"]["image_size"] + c["vision"]["patch_size"]          # grid + 1
        small = c["vision"]["image_size"] - c["vision"]["patch_size"]        # grid − 1
        for size in (big, small):
            c2 = json.loads(json.dumps(c)); c2["vision"]["image_size"] = size
            m2 = CLIP(c2["embed_dim"], CLIPVisionCfg(**c2["vision"]), CLIPTextCfg(**c2["text"]), quick_gelu=c2["quick_gelu"]).eval()
            sd2 = dict(sd)
            resize_pos_embed(sd2, m2)
            m2.load_state_dict(sd2)
            img2 = torch.randn(B, 3, size, size)
            with torch.no_grad():
                out[f"{name}.image{size}"] = img2
                out[f"{name}.image{size}_features"] = m2.encode_image(img2)
                out[f"{name}.pos_embed{size}"] = sd2["visual.positional_embedding"]
    save("clip_vit.safetensors", out, meta)


# ---------------------------------------------------------------- position-embedding resize alone
def pos_embed():
    out = {}
    torch.manual_seed(3)
    cases = [(24, 17), (16, 17), (4, 6), (7, 3), (14, 14 * 2 + 1)]
    for old, new in cases:
        pe = torch.randn(old * old + 1, 5)
        fake = types.SimpleNamespace(visual=types.SimpleNamespace(grid_size=(new, new)))
        sd = {"visual.positional_embedding": pe}
        resize_pos_embed(sd, fake)
        out[f"pe{old}"] = pe
        out[f"pe{old}_to{new}"] = sd["visual.positional_embedding"]
    save("clip_pos_embed.safetensors", out, {"cases": cases})


# ---------------------------------------------------------------- BiomedCLIP-like (timm ViT + BERT)
def biomedclip():
    out, meta = {}, {}
    torch.manual_seed(4)
    embed_dim = 24
    # open_clip's TimmModel as BiomedCLIP configures it (vit_base_patch16_224, pool '', proj 'linear'),
    # with the trunk swapped for a tiny timm ViT of the same family.
    visual = TimmModel("vit_base_patch16_224", embed_dim=embed_dim, image_size=32, pool="", proj="linear", pretrained=False)
    visual.trunk = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8,
                                     embed_dim=48, depth=3, num_heads=4)
    visual.head.proj = nn.Linear(48, embed_dim, bias=False)
    bert = BertConfig(vocab_size=120, hidden_size=40, num_hidden_layers=2, num_attention_heads=4, intermediate_size=72,
                      max_position_embeddings=32, pad_token_id=0, hidden_act="gelu")
    text = HFTextEncoder(None, output_dim=embed_dim, config=bert, pooler_type="cls_last_hidden_state_pooler", proj_type="mlp")
    visual.eval(); text.eval()
    with torch.no_grad():
        for m in (visual, text):
            for n, p in m.named_parameters():
                p.add_(0.05 * torch.randn_like(p))
    sd = {}
    for k, v in visual.state_dict().items(): sd["visual." + k] = v
    for k, v in text.state_dict().items():
        if ".pooler." in k:          # BiomedCLIP builds BERT without its pooler (add_pooling_layer=False)
            continue
        sd["text." + k] = v
    sd["logit_scale"] = torch.tensor(4.6052)
    for k, v in sd.items(): out["sd." + k] = v
    img = torch.randn(2, 3, 32, 32)
    ctx = 20
    lengths = [ctx, 7, 3]
    ids = torch.zeros(len(lengths), ctx, dtype=torch.long)
    for i, L in enumerate(lengths):
        t = torch.randint(5, 120, (L,)); t[0] = 2; t[L - 1] = 3       # [CLS] … [SEP], then [PAD] = 0
        ids[i, :L] = t
    store = {}
    block_hooks(visual.trunk.blocks, store, "vision_block")
    block_hooks(text.transformer.encoder.layer, store, "text_block")
    with torch.no_grad():
        fi = visual(img)
        ft = text(ids)
    out.update({"image": img, "text": ids.float(), "image_features": fi, "text_features": ft})
    out.update(store)
    meta["config"] = dict(embed_dim=embed_dim, vision=dict(image_size=32, patch_size=8, width=48, layers=3, heads=4),
                          text=dict(vocab_size=120, width=40, layers=2, heads=4, intermediate=72, max_positions=32, context_length=ctx))
    save("biomedclip.safetensors", out, meta)


# ---------------------------------------------------------------- CLIP ModifiedResNet (RN50 family)
def clip_resnet():
    out, meta = {}, {}
    torch.manual_seed(5)
    cfg = dict(layers=[1, 2, 1, 1], output_dim=24, heads=4, image_size=96, width=8)
    model = ModifiedResNet(**cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
        for n, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
                m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
    model.eval()
    for k, v in model.state_dict().items():
        out["sd.visual." + k] = v
    img = torch.randn(2, 3, 96, 96)
    feats = {}
    model.layer4.register_forward_hook(lambda m, i, o: feats.__setitem__("layer4", o.detach().clone()))
    with torch.no_grad():
        g = model(img)
        # PsPG's dense tokens: v_proj → c_proj on every token of the attention pool's input (with
        # position embeddings), token 0 replaced by the global feature.
        x = feats["layer4"]
        ap = model.attnpool
        x = x.flatten(2).permute(2, 0, 1)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0) + ap.positional_embedding[:, None, :]
        dense = ap.c_proj(ap.v_proj(x)).permute(1, 0, 2)            # [B, HW+1, out]
        dense_global = torch.cat([g.unsqueeze(1), dense[:, 1:]], dim=1)
    out.update({"image": img, "global": g, "layer4": feats["layer4"], "dense_raw": dense, "dense": dense_global})
    meta["config"] = cfg
    save("clip_resnet.safetensors", out, meta)


if __name__ == "__main__":
    clip_vit()
    pos_embed()
    biomedclip()
    clip_resnet()

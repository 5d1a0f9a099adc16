"""Goldens for ViT position-embedding resampling (timm 1.0.x `resample_abs_pos_embed`, what
timm's vision_transformer `checkpoint_filter_fn` applies when a checkpoint's pos_embed grid differs
from the model's: bicubic, align_corners False, antialias True by default in timm 1.0.31), plus the
antialias=False variant (plain PyTorch bicubic, A = -0.75).

    "$(Tools/python-env)" Tools/goldens/make_vit_posembed_goldens.py
    → Tests/AxialModelsTests/Fixtures/encoders/vit_posembed.safetensors
      pe [1, 1 + 14·14, 8] (random) and out/<h>x<w>/aa<0|1> [1, 1 + h·w, 8] for each grid below;
      vit/pe6 [1, 37, 16] + vit_test-at-32/aa1: a tiny timm ViT (img 48 → grid 6) pos_embed
      resampled by timm's checkpoint_filter_fn into a model at img 32 (grid 4).
"""
import os
import torch, timm
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/encoders")
os.makedirs(OUT, exist_ok=True)
pe = torch.randn(1, 1 + 14 * 14, 8)
t = {"pe": pe.contiguous()}
for h, w in [(16, 16), (10, 10), (12, 18), (14, 14), (7, 21)]:
    for aa in (0, 1):
        t[f"out/{h}x{w}/aa{aa}"] = resample_abs_pos_embed(pe, new_size=[h, w], num_prefix_tokens=1, antialias=bool(aa)).clone().contiguous()

# Through timm's own checkpoint filter: a checkpoint at 48 px (grid 6) loaded into a model at 32 px (grid 4).
src = VisionTransformer(img_size=48, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=0)
dst = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=0)
with torch.no_grad():
    src.pos_embed.normal_()
filtered = checkpoint_filter_fn(src.state_dict(), dst)
t["vit/pe6"] = src.pos_embed.detach().contiguous()
t["vit/pe4_filtered"] = filtered["pos_embed"].detach().contiguous()
save_file(t, os.path.join(OUT, "vit_posembed.safetensors"), metadata={"timm": timm.__version__, "torch": torch.__version__})
print("wrote", len(t), "tensors")

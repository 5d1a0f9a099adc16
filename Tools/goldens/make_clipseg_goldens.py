"""CLIPSeg + VLSM adapters goldens → Tests/AxialModelsTests/Fixtures/clipseg.safetensors.

Builds transformers' `CLIPSegForImageSegmentation` (float32 weights, computed in float64) (transformers 5.25, torch CPU) with a tiny random
configuration equal to Axial's `CLIPSegConfig.clipsegTest` (vision 24 wide, 5 layers, patch 16, trained
at 64 and run at 96 so the position embedding is interpolated; text 32 wide, 4 layers, vocab 99,
EOT id 98; projection 32; extract layers [1, 2, 3]; reduce 16; 2 decoder heads; FFN 20; refined
upsampler) and stores, in float32:

  ref.*                  the state dict (transformers key names), LayerNorms perturbed so they matter
  pixels, ids, attention_mask, cond_pixels, target
  text.logits / text.cond / text.act{0,1,2} / text.dec{0,1,2}   text-conditioned forward: logits,
                         conditional embedding, tapped vision states, each decoder layer's output
  image.logits / image.cond                                   conditioned on prompt images
  plain.* / plain.logits  ref's weights with the single ConvTranspose upsampler (plain.* = its weights)
  e2e.grad.<key>         gradients of a DiceCE loss (λ 1.5 / 1.0) with every CLIPSeg part trainable,
                         computed without transformers' no_grad (what Axial does when asked to
                         fine-tune the encoders)
  shallow.* / dense.*    VLSM adapters (the reference modules of naamiinepal/vlsm-adapter@d5b5a5e,
                         re-written below on top of the transformers model): the adapter state
                         dicts (reference names), logits, loss, gradients, and after one AdamW step
                         (lr 1e-3, wd 1e-3, adapters only, CLIPSeg frozen) every adapter parameter and
                         the logits; NAME.f32err.* = torch float32's own relative error vs this
                         float64 reference (the shallow model's first decoder layer is float32-sensitive)

Run: python Tools/goldens/make_clipseg_goldens.py   (torch ≥ 2.4 CPU, transformers 5.x, safetensors)
"""
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialModelsTests", "Fixtures", "clipseg.safetensors")


def config(refined=True):
    return CLIPSegConfig(
        text_config=dict(vocab_size=99, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                         max_position_embeddings=16, eos_token_id=98, bos_token_id=97, pad_token_id=1),
        vision_config=dict(image_size=64, patch_size=16, hidden_size=24, intermediate_size=40, num_hidden_layers=5,
                           num_attention_heads=4),
        projection_dim=32, extract_layers=[1, 2, 3], reduce_dim=16, decoder_num_attention_heads=2,
        decoder_intermediate_size=20, conditional_layer=0, use_complex_transposed_convolution=refined)


def build(refined=True):
    m = CLIPSegForImageSegmentation(config(refined)).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
        # Keep the logits O(1) (transformers' init gives |logits| ≈ 40: saturated sigmoids, and
        # gradients too small for a well-conditioned AdamW-step comparison).
        last = m.decoder.transposed_convolution[-1] if refined else m.decoder.transposed_convolution
        last.weight.mul_(0.05)
        last.bias.mul_(0.05)
    # Weights are float32 values; the reference computes in float64 on them (as the other goldens).
    return m.double()


def f32(d):
    return {k: v.detach().to(torch.float32).contiguous() for k, v in d.items()}


def dice_ce(logits, target, lambda_dice=1.5, lambda_ce=1.0, smooth=1e-5):
    """MONAI DiceCELoss(sigmoid=True) for one channel on logits: λd·mean_b(1 − (2Σpy + s)/(Σp + Σy + s)) + λc·BCE."""
    p = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    dice = 1 - (2 * (p * y).sum(1) + smooth) / (p.sum(1) + y.sum(1) + smooth)
    return lambda_dice * dice.mean() + lambda_ce * nn.functional.binary_cross_entropy_with_logits(logits, target)


T = {}
ref = build(True)
for k, v in ref.state_dict().items():
    T["ref." + k] = v

B, S = 2, 96
pixels = torch.randn(B, 3, S, S).double()
ids = torch.randint(2, 97, (B, 7))
ids[0, 6] = 98                      # EOT last
ids[1, 4] = 98                      # EOT then padding
ids[1, 5:] = 1
attention_mask = torch.ones(B, 7, dtype=torch.long)
attention_mask[1, 5:] = 0
cond_pixels = torch.randn(B, 3, S, S).double()
target = (torch.rand(B, S, S) > 0.6).double()
T.update(pixels=pixels, ids=ids.float(), attention_mask=attention_mask.float(), cond_pixels=cond_pixels, target=target)

# Decoder layer outputs through forward hooks.
dec_out = []
hooks = [layer.register_forward_hook(lambda mod, inp, out: dec_out.append(out[0] if isinstance(out, tuple) else out))
         for layer in ref.decoder.layers]
with torch.no_grad():
    out = ref(input_ids=ids, pixel_values=pixels, attention_mask=attention_mask, output_hidden_states=True)
for h in hooks:
    h.remove()
T["text.logits"] = out.logits
T["text.cond"] = out.conditional_embeddings
hs = out.vision_model_output.hidden_states
for i, layer in enumerate(ref.config.extract_layers):
    T[f"text.act{i}"] = hs[layer + 1]
for i, d in enumerate(dec_out):
    T[f"text.dec{i}"] = d

with torch.no_grad():
    out_img = ref(pixel_values=pixels, conditional_pixel_values=cond_pixels)
T["image.logits"] = out_img.logits
T["image.cond"] = out_img.conditional_embeddings

plain = build(False)
plain.load_state_dict({k: v for k, v in ref.state_dict().items() if "transposed_convolution" not in k}, strict=False)
for k, v in plain.state_dict().items():
    if "transposed_convolution" in k:
        T["plain." + k] = v
with torch.no_grad():
    T["plain.logits"] = plain(input_ids=ids, pixel_values=pixels, attention_mask=attention_mask).logits


# End-to-end gradients (no no_grad anywhere): the same computation as transformers' forward.
def e2e_forward(m):
    vo = m.clip.vision_model(pixel_values=pixels, output_hidden_states=True, interpolate_pos_encoding=True)
    acts = [vo.hidden_states[i + 1] for i in m.config.extract_layers]
    cond = m.clip.get_text_features(ids, attention_mask=attention_mask).pooler_output
    return m.decoder(acts, cond).logits


ref.zero_grad()
loss = dice_ce(e2e_forward(ref), target)
loss.backward()
T["e2e.loss"] = loss.detach().reshape(1)
for k in ["clip.vision_model.encoder.layers.0.mlp.fc1.weight", "clip.vision_model.embeddings.position_embedding.weight",
          "clip.vision_model.embeddings.patch_embedding.weight", "clip.text_model.encoder.layers.0.self_attn.q_proj.weight",
          "clip.text_model.embeddings.token_embedding.weight", "clip.text_projection.weight", "decoder.film_mul.weight",
          "decoder.transposed_convolution.0.weight", "decoder.reduces.2.weight"]:
    T["e2e.grad." + k] = dict(ref.named_parameters())[k].grad
ref.zero_grad()


# ---- VLSM adapters: reference modules (after naamiinepal/vlsm-adapter src/models/clipseg_adapter.py) ----
class Adapter(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return x + torch.relu(self.fc2(torch.relu(self.fc1(x))))


def text_mask(ids, attention_mask, dtype=torch.float64):
    L = ids.shape[1]
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    masked = causal[None] | (attention_mask[:, None, :] == 0)
    return torch.zeros(masked.shape, dtype=dtype).masked_fill(masked, torch.finfo(dtype).min)[:, None]


class ShallowAdapter(nn.Module):
    def __init__(self, clipseg, dim):
        super().__init__()
        self.clipseg = clipseg
        c = clipseg.config
        self.clipseg.requires_grad_(False)
        self.vision_extract_adapters = nn.ModuleList([Adapter(c.vision_config.hidden_size, dim) for _ in c.extract_layers])
        self.text_extract_adapters = nn.ModuleList([Adapter(c.text_config.hidden_size, dim) for _ in c.extract_layers])
        self.cond_adapter = Adapter(c.projection_dim, 256)

    def forward(self, pixels, ids, attention_mask):
        clip = self.clipseg.clip
        vo = clip.vision_model(pixel_values=pixels, output_hidden_states=True)
        acts = [a(vo.hidden_states[i + 1]) for a, i in zip(self.vision_extract_adapters, self.clipseg.config.extract_layers)]
        to = clip.text_model(input_ids=ids, attention_mask=attention_mask, output_hidden_states=True)
        cond = self.cond_adapter(clip.text_projection(to.pooler_output))
        eot = ids.argmax(-1)
        for i, a in zip(self.clipseg.config.extract_layers, self.text_extract_adapters):
            h = to.hidden_states[i + 1]
            cond = cond + a(h[torch.arange(h.shape[0]), eot])
        return self.clipseg.decoder(acts, cond).logits


class DenseAdapter(nn.Module):
    def __init__(self, clipseg, dim):
        super().__init__()
        self.clipseg = clipseg
        c = clipseg.config
        self.clipseg.requires_grad_(False)
        n = max(c.extract_layers)
        self.v_attn_adapters = nn.ModuleList([Adapter(c.vision_config.hidden_size, dim) for _ in range(n)])
        self.v_out_adapters = nn.ModuleList([Adapter(c.vision_config.hidden_size, dim) for _ in range(n)])
        self.l_attn_adapters = nn.ModuleList([Adapter(c.text_config.hidden_size, dim) for _ in range(n)])
        self.l_out_adapters = nn.ModuleList([Adapter(c.text_config.hidden_size, dim) for _ in range(n)])
        self.cond_adapter = Adapter(c.projection_dim, 256)

    def run_layers(self, x, layers, attn_adapters, out_adapters, mask=None):
        states = [x]
        for idx, layer in enumerate(layers):
            residual = x
            h, _ = layer.self_attn(layer.layer_norm1(x), attention_mask=mask)
            if idx < len(attn_adapters):
                h = attn_adapters[idx](h)
            x = residual + h
            residual = x
            h = layer.mlp(layer.layer_norm2(x))
            if idx < len(out_adapters):
                h = out_adapters[idx](h)
            x = residual + h
            states.append(x)
        return states

    def forward(self, pixels, ids, attention_mask):
        vm, tm = self.clipseg.clip.vision_model, self.clipseg.clip.text_model
        x = vm.pre_layrnorm(vm.embeddings(pixels, interpolate_pos_encoding=True))
        vs = self.run_layers(x, vm.encoder.layers, self.v_attn_adapters, self.v_out_adapters)
        acts = [vs[i + 1] for i in self.clipseg.config.extract_layers]
        t = tm.embeddings(input_ids=ids)
        ts = self.run_layers(t, tm.encoder.layers, self.l_attn_adapters, self.l_out_adapters, text_mask(ids, attention_mask, t.dtype))
        last = tm.final_layer_norm(ts[-1])
        pooled = last[torch.arange(last.shape[0]), ids.argmax(-1)]
        cond = self.cond_adapter(self.clipseg.clip.text_projection(pooled))
        return self.clipseg.decoder(acts, cond).logits


def rel_err(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-6))


def adapter_run(cls, dim, dtype):
    """Logits, loss, gradients and post-step state of the adapted model computed in `dtype`."""
    base = build(True)
    base.load_state_dict(ref.state_dict())
    torch.manual_seed(1000 + dim)  # the same adapters in both precisions
    model = cls(base, dim).float()  # adapters drawn in float32
    with torch.no_grad():  # make the adapters' second ReLU active on most units
        for n_, p in model.named_parameters():
            if not n_.startswith("clipseg.") and n_.endswith("bias"):
                p.add_(0.1)
    model.to(dtype)
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("clipseg.")}
    logits = model(pixels.to(dtype), ids, attention_mask)
    loss = dice_ce(logits, target.to(dtype))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-3)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
    opt.step()
    stepped = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("clipseg.")}
    with torch.no_grad():
        after = model(pixels.to(dtype), ids, attention_mask)
    return state, logits.detach(), loss.detach(), grads, stepped, after, len(params), sum(p.numel() for p in params)


# The reference is float64. Stored beside it: how far torch's own float32 run is from it
# (`NAME.f32err.grad.KEY`, `NAME.f32err.step.KEY`); the Swift test accepts max(1e-4, 2·that).
for name, cls, dim in [("shallow", ShallowAdapter, 16), ("dense", DenseAdapter, 8)]:
    state, logits, loss, grads, stepped, after, n_tensors, n_params = adapter_run(cls, dim, torch.float64)
    _, logits32, _, grads32, stepped32, _, _, _ = adapter_run(cls, dim, torch.float32)
    for k, v in state.items():
        T[f"{name}.{k}"] = v
    T[f"{name}.logits"] = logits
    T[f"{name}.loss"] = loss.reshape(1)
    for k, g in grads.items():
        T[f"{name}.grad.{k}"] = g
        T[f"{name}.f32err.grad.{k}"] = torch.tensor([rel_err(grads32[k], g)])
    for k, v in stepped.items():
        T[f"{name}.step.{k}"] = v
        T[f"{name}.f32err.step.{k}"] = torch.tensor([rel_err(stepped32[k], v)])
    T[f"{name}.step.logits"] = after
    worst_g = max(rel_err(grads32[k], g) for k, g in grads.items())
    worst_s = max(rel_err(stepped32[k], v) for k, v in stepped.items())
    print(f"{name}: {n_params} trainable, loss {float(loss):.6f}; torch float32 vs float64: logits {rel_err(logits32, logits):.2e}, "
          f"worst gradient {worst_g:.2e}, worst parameter after one AdamW step {worst_s:.2e}")

# ---- BiomedCLIPSeg (medvlsm src/models/biomedclipseg.py): BiomedCLIP towers → transformers' CLIPSeg decoder ----
# The towers' outputs come from the open_clip BiomedCLIP fixture (make_clip_goldens.py: tiny timm ViT,
# 3 blocks, width 48, patch 8 at 32²; BERT → CLS → mlp projection to 24): its per-block outputs and
# text features. The decoder is transformers' `CLIPSegDecoder` with extract_layers [0, 1]: CLIPSeg's
# taps are blocks 1, 2 (hidden_states[i + 1]); medvlsm's list has no embedding entry, so its
# hidden_states[i + 1] are blocks 2, 3.
from transformers.models.clipseg.modeling_clipseg import CLIPSegDecoder  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

bio = load_file(os.path.join(os.path.dirname(OUT), "clip", "biomedclip.safetensors"))
torch.manual_seed(7)
dcfg = CLIPSegConfig(vision_config=dict(image_size=32, patch_size=8, hidden_size=48, intermediate_size=40, num_hidden_layers=3,
                                        num_attention_heads=4),
                     text_config=dict(hidden_size=24, intermediate_size=30, num_hidden_layers=1, num_attention_heads=2),
                     projection_dim=24, extract_layers=[0, 1], reduce_dim=16, decoder_num_attention_heads=2,
                     decoder_intermediate_size=20, use_complex_transposed_convolution=True)
bdec = CLIPSegDecoder(dcfg).eval()
with torch.no_grad():
    for n_, p in bdec.named_parameters():
        if "layer_norm" in n_ or n_.endswith("bias"):
            p.add_(0.05 * torch.randn_like(p))
bdec = bdec.double()
for k, v in bdec.state_dict().items():
    T["biomed.decoder." + k] = v
cond = bio["text_features"][:2].double()
with torch.no_grad():
    for name, blocks in [("clipseg", [1, 2]), ("medvlsm", [2, 3])]:
        acts = [bio[f"vision_block.{b}"].double() for b in blocks]
        T[f"biomed.logits.{name}"] = bdec(acts, cond).logits

save_file(f32(T), OUT)
print("wrote", os.path.normpath(OUT), len(T), "tensors", os.path.getsize(OUT), "bytes")

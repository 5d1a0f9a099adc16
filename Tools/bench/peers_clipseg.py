"""CLIPSeg peer for Tools/bench/run: ../shared/peers/clipseg.py's transformers CLIPSegForImageSegmentation
(rd64-refined-like config, random init: ViT-B/16 with the position embedding interpolated to the input size,
CLIP text 12 layers × 512, reduce 64, taps [3, 6, 9], refined upsampler), batch 8 at 352 by default, one
77-token prompt per image (11 real tokens, the rest padded with the EOT id and masked, as the shared peer).
Timed like `axial bench`: 1 warm-up + median of BENCH_ITERS. Prints one JSON object.
Usage: python peers_clipseg.py infer|dense <threads> [batch] [size]
  infer  eval forward under inference_mode (the shared peer's `fwd`), fp32
  dense  one training step of VLSM-Adapter's dense adapters (dim 64, V+L+C: two adapters in each of the first
         9 vision and text layers before the residual adds, plus the 512→256→512 conditional adapter; CLIPSeg
         frozen — the module Tools/goldens/make_clipseg_goldens.py checks Axial against, restated here):
         forward, DiceCE λ 1.5 / 1.0 on the logits, backward, AdamW (lr 1e-3, wd 1e-3) over the adapters"""
import json, os, resource, sys, time
import torch
import torch.nn as nn
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

which, threads = sys.argv[1], int(sys.argv[2])
B = int(sys.argv[3]) if len(sys.argv) > 3 else 8
S = int(sys.argv[4]) if len(sys.argv) > 4 else 352
torch.set_num_threads(threads); torch.manual_seed(0)
cfg = CLIPSegConfig(vision_config=dict(patch_size=16, image_size=224), extract_layers=[3, 6, 9], reduce_dim=64,
                    conditional_layer=0, use_complex_transposed_convolution=True)
m = CLIPSegForImageSegmentation(cfg).eval()
px = torch.randn(B, 3, S, S)
ids = torch.randint(1, 49000, (B, 77)); ids[:, 0] = 49406; ids[:, 10] = 49407; ids[:, 11:] = 49407
mask = torch.zeros_like(ids); mask[:, :11] = 1


class Adapter(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return x + torch.relu(self.fc2(torch.relu(self.fc1(x))))


def text_mask(ids, attention_mask, dtype=torch.float32):
    L = ids.shape[1]
    masked = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)[None] | (attention_mask[:, None, :] == 0)
    return torch.zeros(masked.shape, dtype=dtype).masked_fill(masked, torch.finfo(dtype).min)[:, None]


class DenseAdapter(nn.Module):
    def __init__(self, clipseg, dim):
        super().__init__()
        self.clipseg = clipseg
        c = clipseg.config
        self.clipseg.requires_grad_(False)
        n = max(c.extract_layers)
        mk = lambda w, k: nn.ModuleList([Adapter(w, dim) for _ in range(k)])
        self.v_attn_adapters, self.v_out_adapters = mk(c.vision_config.hidden_size, n), mk(c.vision_config.hidden_size, n)
        self.l_attn_adapters, self.l_out_adapters = mk(c.text_config.hidden_size, n), mk(c.text_config.hidden_size, n)
        self.cond_adapter = Adapter(c.projection_dim, 256)

    def run_layers(self, x, layers, attn_adapters, out_adapters, mask=None):
        states = [x]
        for idx, layer in enumerate(layers):
            h, _ = layer.self_attn(layer.layer_norm1(x), attention_mask=mask)
            if idx < len(attn_adapters):
                h = attn_adapters[idx](h)
            x = x + h
            h = layer.mlp(layer.layer_norm2(x))
            if idx < len(out_adapters):
                h = out_adapters[idx](h)
            x = x + h
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


def dice_ce(logits, target, lambda_dice=1.5, lambda_ce=1.0, smooth=1e-5):
    p = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    dice = 1 - (2 * (p * y).sum(1) + smooth) / (p.sum(1) + y.sum(1) + smooth)
    return lambda_dice * dice.mean() + lambda_ce * nn.functional.binary_cross_entropy_with_logits(logits, target)


if which == "infer":
    def run():
        with torch.inference_mode():
            y = m(input_ids=ids, attention_mask=mask, pixel_values=px, interpolate_pos_encoding=True).logits
        assert tuple(y.shape) == (B, S, S) and torch.isfinite(y).all()
    detail = f"transformers CLIPSeg inference, batch {B} at {S}"
else:
    model = DenseAdapter(m, 64).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-3)
    target = (torch.arange(S)[None, :, None].expand(B, S, S) < S // 2).float()

    def run():
        opt.zero_grad()
        loss = dice_ce(model(px, ids, mask), target)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    detail = f"VLSM dense adapters (dim 64, VLC) training step, {sum(p.numel() for p in params)} trainable, batch {B} at {S}"

run()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); run(); runs.append((time.perf_counter() - t0) * 1e3)
import transformers  # noqa: E402
print(json.dumps(dict(peer=f"transformers-{threads}", median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"transformers {transformers.__version__} torch {torch.__version__} threads={threads} {detail}")))

"""CRIS goldens → Tests/AxialModelsTests/Fixtures/cris.safetensors.

A small re-statement in torch of CRIS as medvlsm runs it (DerrickWang005/CRIS.pytorch model/{clip,layers,
segmenter}.py, naamiinepal/medvlsm src/models/cris_model/): CLIP ModifiedResNet whose attention pool keeps
every position (no class token; positional embedding grid resized bicubically, align_corners=False, to the
feature map; `connect` 1×1 conv + BN residual; ReLU) and returns C3 / C4 / C5 = layer2, layer3, pool; the
CLIP text tower returning every word after ln_final (not projected) and the EOT state projected; the FPN
(conv+BN+ReLU blocks, CoordConv, bilinear ×2, avg-pool); the pre-norm transformer decoder (sin/cos 2D / 1D
positions, self_attn_norm / cross_attn_norm, key_padding_mask on id-0 words); the Projector (per-sample
3×3 kernel from the state, grouped conv); medvlsm's bicubic (align_corners=True) upsampling to the input.

Tiny configuration = Axial's `CRISConfig.crisTest` (RN layers [1,1,1,1], width 4, 2 pool heads, embed 32,
trained at 64 so the pool grid is 2×2 and is resized to 3×3 at 96; text width 24, 2 heads, 2 layers,
vocab 99, context 16; fpn_in [32,64,32], fpn_out [16,24,32]; vis_dim 24, 2 decoder layers, 4 heads,
FFN 40; input 96). Weights are float32 values, the reference computes in float64. Stored (float32):

  ref.*                the state dict under CRIS's key names (backbone.*, neck.*, decoder.*, proj.*), with
                       LayerNorm / BN affine perturbed, random biases and random BN running statistics
  pixels, ids, target  inputs, batch 3 (ids padded with 0 to the context, EOT 98 = the largest id)
  eval.{c3,c4,c5,words,state,fq,dec,pred,logits}   eval-mode intermediates and logits [B, 96, 96]
  train.logits / train.loss                        train mode (BN batch statistics, dropout 0),
                       DiceCE λ 1.0 / 0.2 on logits (medvlsm's weights)
  train.grad.<key>     gradient of every parameter after one backward
  train.f32err.<key>   torch float32's own relative error on that gradient vs this float64 reference
  train.running.<key>  BN running_mean / running_var after that forward (momentum 0.1, unbiased var)
  train.step.<key> / train.step.logits   after one AdamW step (lr 1e-3, wd 1e-3) on every parameter with a
                       gradient: ten parameters and the train-mode logits of a second forward;
                       train.step.f32err.<key>: torch float32's own relative error on them
  metadata full_keys   JSON {key: shape} of the full-size CRIS (RN50, medvlsm's word_len 77) state dict

Run: python Tools/goldens/make_cris_goldens.py   (torch ≥ 2.4 CPU, safetensors)
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialModelsTests", "Fixtures", "cris.safetensors")


# ---------------------------------------------------------------- backbone (CLIP RN + text)
def conv_bn(cin, cout, k=1, p=0):
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.stride = stride
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential()
            self.downsample.add_module("-1", nn.AvgPool2d(stride))
            self.downsample.add_module("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False))
            self.downsample.add_module("1", nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        if self.stride > 1:
            out = F.avg_pool2d(out, self.stride)
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class SpatialAttentionPool(nn.Module):
    """CRIS's AttentionPool2d: all HW positions attend to each other; + connect(x); ReLU."""

    def __init__(self, grid, dim, heads, out):
        super().__init__()
        self.grid = grid
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, dim) / dim ** 0.5)
        self.k_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, out)
        self.heads = heads
        self.connect = nn.Sequential(nn.Conv2d(dim, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        B, C, H, W = x.shape
        res = self.connect(x)
        g = self.grid
        pe = self.positional_embedding[1:].reshape(1, g, g, C).permute(0, 3, 1, 2)
        pe = F.interpolate(pe, size=(H, W), mode="bicubic", align_corners=False).flatten(2)  # [1, C, HW]
        t = (x.reshape(B, C, H * W) + pe).permute(0, 2, 1)  # [B, HW, C]
        hd = C // self.heads
        q = self.q_proj(t).reshape(B, H * W, self.heads, hd).transpose(1, 2)
        k = self.k_proj(t).reshape(B, H * W, self.heads, hd).transpose(1, 2)
        v = self.v_proj(t).reshape(B, H * W, self.heads, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
        y = self.c_proj(a.transpose(1, 2).reshape(B, H * W, C))  # [B, HW, out]
        y = y.permute(0, 2, 1).reshape(B, -1, H, W)
        return F.relu(y + res)


class ResNet(nn.Module):
    def __init__(self, layers, width, heads, out, image_size):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self._in = width
        self.layer1 = self._make(width, layers[0], 1)
        self.layer2 = self._make(width * 2, layers[1], 2)
        self.layer3 = self._make(width * 4, layers[2], 2)
        self.layer4 = self._make(width * 8, layers[3], 2)
        self.attnpool = SpatialAttentionPool(image_size // 32, width * 32, heads, out)

    def _make(self, planes, blocks, stride):
        out = [Bottleneck(self._in, planes, stride)]
        self._in = planes * 4
        out += [Bottleneck(self._in, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x):
        for conv, bn in [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]:
            x = F.relu(bn(conv(x)))
        x = F.avg_pool2d(x, 2)
        x = self.layer1(x)
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        return c3, c4, self.attnpool(self.layer4(c4))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, 4 * d))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * d, d))
        self.ln_2 = nn.LayerNorm(d)

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d, layers, h):
        super().__init__()
        self.resblocks = nn.Sequential(*[Block(d, h) for _ in range(layers)])

    def forward(self, x, mask):
        for b in self.resblocks:
            x = b(x, mask)
        return x


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.visual = ResNet(c["layers"], c["width"], c["pool_heads"], c["embed"], c["pretrain_size"])
        self.transformer = Transformer(c["text_width"], c["text_layers"], c["text_heads"])
        self.token_embedding = nn.Embedding(c["vocab"], c["text_width"])
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(c["context"], c["text_width"]))
        self.ln_final = nn.LayerNorm(c["text_width"])
        self.text_projection = nn.Parameter(torch.randn(c["text_width"], c["embed"]) / c["text_width"] ** 0.5)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.word_len = c["word_len"]

    def encode_text(self, ids):
        L = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:L]
        mask = torch.full((L, L), float("-inf"), dtype=x.dtype).triu(1)
        x = self.ln_final(self.transformer(x, mask))
        state = x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection
        return x, state


# ---------------------------------------------------------------- neck, decoder, projector
class CoordConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = conv_bn(cin + 2, cout, 3, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=x.dtype), torch.linspace(-1, 1, w, dtype=x.dtype), indexing="ij")
        return self.conv1(torch.cat([x, xs.expand(b, 1, h, w), ys.expand(b, 1, h, w)], 1))


class FPN(nn.Module):
    def __init__(self, fin, fout):
        super().__init__()
        self.txt_proj = nn.Sequential(nn.Linear(fin[2], fout[2], bias=False), nn.BatchNorm1d(fout[2]), nn.ReLU())
        self.f1_v_proj = conv_bn(fin[2], fout[2], 1, 0)
        self.norm_layer = nn.Sequential(nn.BatchNorm2d(fout[2]), nn.ReLU())
        self.f2_v_proj = conv_bn(fin[1], fout[1], 3, 1)
        self.f2_cat = conv_bn(fout[2] + fout[1], fout[1], 1, 0)
        self.f3_v_proj = conv_bn(fin[0], fout[0], 3, 1)
        self.f3_cat = conv_bn(fout[0] + fout[1], fout[1], 1, 0)
        self.f4_proj5 = conv_bn(fout[2], fout[1], 3, 1)
        self.f4_proj4 = conv_bn(fout[1], fout[1], 3, 1)
        self.f4_proj3 = conv_bn(fout[1], fout[1], 3, 1)
        self.aggr = conv_bn(3 * fout[1], fout[1], 1, 0)
        self.coordconv = nn.Sequential(CoordConv(fout[1], fout[1]), conv_bn(fout[1], fout[1], 3, 1))

    def forward(self, imgs, state):
        v3, v4, v5 = imgs
        state = self.txt_proj(state)[:, :, None, None]
        f5 = self.norm_layer(self.f1_v_proj(v5) * state)
        f4 = self.f2_cat(torch.cat([self.f2_v_proj(v4), F.interpolate(f5, scale_factor=2, mode="bilinear")], 1))
        f3 = self.f3_cat(torch.cat([F.avg_pool2d(self.f3_v_proj(v3), 2, 2), f4], 1))
        fq5 = F.interpolate(self.f4_proj5(f5), scale_factor=2, mode="bilinear")
        fq = self.aggr(torch.cat([self.f4_proj3(f3), self.f4_proj4(f4), fq5], 1))
        return self.coordconv(fq)


def pos1d(d, length, dtype):
    pe = torch.zeros(length, d, dtype=dtype)
    position = torch.arange(0, length, dtype=dtype)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=dtype) * -(math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe  # [L, d]


def pos2d(d, h, w, dtype):
    pe = torch.zeros(d, h, w, dtype=dtype)
    half = d // 2
    div = torch.exp(torch.arange(0.0, half, 2, dtype=dtype) * -(math.log(10000.0) / half))
    pw = torch.arange(0.0, w, dtype=dtype)[:, None]
    ph = torch.arange(0.0, h, dtype=dtype)[:, None]
    pe[0:half:2] = torch.sin(pw * div).T[:, None, :].repeat(1, h, 1)
    pe[1:half:2] = torch.cos(pw * div).T[:, None, :].repeat(1, h, 1)
    pe[half::2] = torch.sin(ph * div).T[:, :, None].repeat(1, 1, w)
    pe[half + 1::2] = torch.cos(ph * div).T[:, :, None].repeat(1, 1, w)
    return pe.reshape(d, h * w).T  # [HW, d]


class DecoderLayer(nn.Module):
    def __init__(self, d, h, ffn, dropout):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(d)
        self.cross_attn_norm = nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, h, dropout=dropout, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d, h, dropout=dropout, kdim=d, vdim=d, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Dropout(dropout), nn.LayerNorm(ffn), nn.Linear(ffn, d))
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout = dropout

    def forward(self, vis, txt, vis_pos, txt_pos, pad):
        v2 = self.norm1(vis)
        q = v2 + vis_pos
        v2 = self.self_attn_norm(self.self_attn(q, q, v2)[0])
        vis = vis + F.dropout(v2, self.dropout, self.training)
        v2 = self.norm2(vis)
        v2 = self.multihead_attn(v2 + vis_pos, txt + txt_pos, txt, key_padding_mask=pad)[0]
        vis = vis + F.dropout(self.cross_attn_norm(v2), self.dropout, self.training)
        return vis + F.dropout(self.ffn(self.norm3(vis)), self.dropout, self.training)


class Decoder(nn.Module):
    def __init__(self, layers, d, h, ffn, dropout):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(d, h, ffn, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)

    def forward(self, vis, txt, pad):
        B, C, H, W = vis.shape
        vp = pos2d(C, H, W, vis.dtype)[None]
        tp = pos1d(txt.shape[2], txt.shape[1], vis.dtype)[None]
        x = vis.reshape(B, C, H * W).transpose(1, 2)
        for layer in self.layers:
            x = layer(x, txt, vp, tp, pad)
        return self.norm(x).transpose(1, 2).reshape(B, C, H, W)


class Projector(nn.Module):
    def __init__(self, word_dim, in_dim, k=3):
        super().__init__()
        self.in_dim, self.k = in_dim, k
        self.vis = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), conv_bn(2 * in_dim, 2 * in_dim, 3, 1),
                                 nn.Upsample(scale_factor=2, mode="bilinear"), conv_bn(2 * in_dim, in_dim, 3, 1),
                                 nn.Conv2d(in_dim, in_dim, 1))
        self.txt = nn.Linear(word_dim, in_dim * k * k + 1)

    def forward(self, x, word):
        x = self.vis(x)
        B, C, H, W = x.shape
        word = self.txt(word)
        weight, bias = word[:, :-1].reshape(B, C, self.k, self.k), word[:, -1]
        out = F.conv2d(x.reshape(1, B * C, H, W), weight, padding=self.k // 2, groups=B, bias=bias)
        return out.transpose(0, 1)  # [B, 1, H, W]


class CRIS(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = Backbone(c)
        self.neck = FPN(c["fpn_in"], c["fpn_out"])
        self.decoder = Decoder(c["dec_layers"], c["vis_dim"], c["dec_heads"], c["ffn"], c["dropout"])
        self.proj = Projector(c["embed"], c["vis_dim"] // 2, 3)
        self.img_size = c["input"]

    def forward(self, pixels, ids, keep=None):
        pad = ids == 0
        c3, c4, c5 = self.backbone.visual(pixels)
        words, state = self.backbone.encode_text(ids)
        fq = self.neck((c3, c4, c5), state)
        dec = self.decoder(fq, words, pad)
        pred = self.proj(dec, state)
        logits = F.interpolate(pred, self.img_size, mode="bicubic", align_corners=True)[:, 0]
        if keep is not None:
            keep.update(c3=c3, c4=c4, c5=c5, words=words, state=state, fq=fq, dec=dec, pred=pred[:, 0])
        return logits


TINY = dict(layers=[1, 1, 1, 1], width=4, pool_heads=2, embed=32, pretrain_size=64, text_width=24, text_layers=2,
            text_heads=2, vocab=99, context=16, word_len=16, fpn_in=[32, 64, 32], fpn_out=[16, 24, 32], vis_dim=24,
            dec_layers=2, dec_heads=4, ffn=40, dropout=0.0, input=96)
FULL = dict(layers=[3, 4, 6, 3], width=64, pool_heads=32, embed=1024, pretrain_size=224, text_width=512, text_layers=12,
            text_heads=8, vocab=49408, context=77, word_len=77, fpn_in=[512, 1024, 1024], fpn_out=[256, 512, 1024],
            vis_dim=512, dec_layers=3, dec_heads=8, ffn=2048, dropout=0.2, input=416)


def dice_ce(logits, target, lambda_dice=1.0, lambda_ce=0.2, smooth=1e-5):
    p = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    dice = 1 - (2 * (p * y).sum(1) + smooth) / (p.sum(1) + y.sum(1) + smooth)
    return lambda_dice * dice.mean() + lambda_ce * F.binary_cross_entropy_with_logits(logits, target)


def rel_err(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-6))


if __name__ == "__main__":  # (Tools/bench/peers_cris.py imports the modules above)
    torch.manual_seed(0)
    base = CRIS(TINY)
    with torch.no_grad():
        for name, p in base.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.add_(0.1 * torch.randn_like(p))  # LayerNorm / BatchNorm scales
            elif p.dim() == 1:
                p.copy_(0.05 * torch.randn_like(p))  # biases
        for name, b in base.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
            elif name.endswith("num_batches_tracked"):
                b.fill_(3)
        base.proj.txt.weight.mul_(0.5)
    state0 = {k: v.clone() for k, v in base.state_dict().items()}

    B, S = 3, TINY["input"]
    pixels = torch.randn(B, 3, S, S)
    ids = torch.zeros(B, TINY["context"], dtype=torch.long)
    ids[:, 0] = 97
    ids[0, 1:9] = torch.randint(2, 97, (8,))
    ids[0, 9] = 98
    ids[1, 1:6] = torch.randint(2, 97, (5,))
    ids[1, 6] = 98
    ids[2, 1:14] = torch.randint(2, 97, (13,))
    ids[2, 14] = 98
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    target = torch.stack([((yy - 40) ** 2 + (xx - 50) ** 2 < 400), ((yy - 60) ** 2 + (xx - 30) ** 2 < 300),
                          (yy - xx).abs() < 12]).double()

    T = {"pixels": pixels, "ids": ids.float(), "target": target}
    for k, v in state0.items():
        T["ref." + k] = v


    def run(dtype, train):
        m = CRIS(TINY)
        m.load_state_dict(state0)
        m = m.to(dtype)
        m.train(train)
        keep = {}
        logits = m(pixels.to(dtype), ids, keep)
        return m, logits, keep


    # Eval mode: running statistics.
    with torch.no_grad():
        _, logits, keep = run(torch.float64, False)
    for k, v in keep.items():
        T["eval." + k] = v
    T["eval.logits"] = logits
    print("eval logits range", float(logits.min()), float(logits.max()))

    # Train mode: batch statistics, one backward through everything (medvlsm's CRIS: freeze_encoder false).
    grads, runs, stepped = {}, {}, {}
    STEP_KEYS = ["proj.txt.weight", "proj.vis.4.weight", "decoder.layers.0.multihead_attn.in_proj_weight",
                 "neck.f1_v_proj.0.weight", "neck.coordconv.0.conv1.0.weight", "backbone.visual.attnpool.connect.0.weight",
                 "backbone.visual.attnpool.positional_embedding", "backbone.visual.layer1.0.conv1.weight",
                 "backbone.transformer.resblocks.0.attn.in_proj_weight", "backbone.token_embedding.weight"]
    for dtype in (torch.float64, torch.float32):
        m, logits, _ = run(dtype, True)
        loss = dice_ce(logits, target.to(dtype))
        loss.backward()
        grads[dtype] = {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}
        if dtype == torch.float64:
            T["train.logits"] = logits.detach()
            T["train.loss"] = loss.detach().reshape(1)
            for k, v in m.state_dict().items():
                if "running_" in k or "num_batches" in k:
                    T["train.running." + k] = v.clone()
            print("train loss", float(loss.detach()), "parameters with grad", len(grads[dtype]), "of", len(list(m.parameters())))
        # One AdamW step (lr 1e-3, wd 1e-3) on every parameter with a gradient, then the train-mode logits again.
        opt = torch.optim.AdamW([p for p in m.parameters() if p.grad is not None], lr=1e-3, weight_decay=1e-3)
        opt.step()
        with torch.no_grad():
            stepped_logits = m(pixels.to(dtype), ids)
        stepped[dtype] = {k: p.detach().clone() for k, p in m.named_parameters() if k in STEP_KEYS}
        stepped[dtype]["logits"] = stepped_logits
    for k, v in stepped[torch.float64].items():
        T["train.step." + k] = v
        T["train.step.f32err." + k] = torch.tensor([rel_err(stepped[torch.float32][k], v)])
    print("after one AdamW step, torch float32 vs float64:",
          ", ".join(f"{k} {float(T['train.step.f32err.' + k]):.1e}" for k in ["logits"] + STEP_KEYS[:3]))
    worst = 0.0
    for k, g in grads[torch.float64].items():
        T["train.grad." + k] = g
        e = rel_err(grads[torch.float32][k], g)
        T["train.f32err." + k] = torch.tensor([e])
        worst = max(worst, e)
    print(f"torch float32 vs float64: worst gradient relative error {worst:.2e}")

    full = CRIS(FULL)
    full_keys = {k: list(v.shape) for k, v in full.state_dict().items()}
    print("full CRIS:", len(full_keys), "keys,", sum(p.numel() for p in full.parameters()), "parameters")

    T = {k: v.detach().to(torch.float32).contiguous() for k, v in T.items()}
    save_file(T, OUT, metadata={"full_keys": json.dumps(full_keys), "tiny_config": json.dumps(TINY)})
    print("wrote", os.path.normpath(OUT), len(T), "tensors", os.path.getsize(OUT), "bytes")

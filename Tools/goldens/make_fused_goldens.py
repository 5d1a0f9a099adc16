#!/usr/bin/env python3
"""Writes Tests/AxialTensorTests/Fixtures/fused.safetensors: goldens for AxialTensor's fused
transformer training ops (Ops/FusedTransformer.swift) against the *unfused* torch composition.

  attn_*      packedSelfAttention(qkv, heads): qkv [B, N, 3D] → reshape [B, N, 3, H, hd], permute,
              softmax(q·kᵀ/√hd)·v, heads back side by side → [B, N, D]
  attnres_*   preNormAttentionResidual: x + proj(attn(qkv(layer_norm(x)))) (eps 1e-6)
  mlpres_*    preNormMLPResidual: x + fc2(gelu(fc1(layer_norm(x)))) (exact GELU, eps 1e-6)

Same layout as make_tensor_goldens.py (`_common.case_recorder`): NAME.in<i>, NAME.out, NAME.R and
NAME.grad<i> = d/d in_i of (out * R).sum(); metadata "cases" {NAME: [differentiable per input]}
and "heads" {NAME: heads}. Inputs float32, computation float64. "attn_long" has 520 tokens so the
Swift kernel runs two query blocks (504 + 16 rows).

Run: "$(Tools/python-env)" Tools/goldens/make_fused_goldens.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from _common import case_recorder, f32, randn

torch.manual_seed(18)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialTensorTests", "Fixtures", "fused.safetensors")
EPS = 1e-6

tensors, cases, heads_of = {}, {}, {}
case = case_recorder(tensors, cases)


def attention(qkv, heads):
    b, n, d3 = qkv.shape
    d = d3 // 3
    hd = d // heads
    q, k, v = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
    p = (q @ k.transpose(-1, -2) / math.sqrt(hd)).softmax(-1)
    return (p @ v).transpose(1, 2).reshape(b, n, d)


def attn_res(heads, x, *ps, affine=True, qkv_bias=True):
    ps = list(ps)
    d = x.shape[-1]
    lw = ps.pop(0) if affine else None
    lb = ps.pop(0) if affine else None
    wq = ps.pop(0)
    bq = ps.pop(0) if qkv_bias else None
    wp, bp = ps
    h = F.layer_norm(x, (d,), lw, lb, EPS)
    return x + F.linear(attention(F.linear(h, wq, bq), heads), wp, bp)


def mlp_res(x, lw, lb, w1, b1, w2, b2):
    d = x.shape[-1]
    return x + F.linear(F.gelu(F.linear(F.layer_norm(x, (d,), lw, lb, EPS), w1, b1)), w2, b2)


def near1(*shape):
    return f32(1 + 0.3 * torch.randn(*shape))


def scaled(*shape, s=0.4):
    return f32(torch.randn(*shape) * s)


def add(name, heads, inputs, fn):
    case(name, inputs, fn)
    heads_of[name] = heads


# packed attention: several heads, one head, head dim 1, a long sequence (two query blocks)
add("attn_small", 2, [randn(2, 7, 24)], lambda q: attention(q, 2))
add("attn_onehead", 1, [randn(1, 5, 9)], lambda q: attention(q, 1))
add("attn_hd1", 4, [randn(2, 3, 12)], lambda q: attention(q, 4))
add("attn_long", 1, [scaled(1, 520, 12, s=1.0)], lambda q: attention(q, 1))

D, N, B = 8, 5, 2
add("attnres", 2, [randn(B, N, D), near1(D), scaled(D), scaled(3 * D, D), scaled(3 * D), scaled(D, D), scaled(D)],
    lambda *a: attn_res(2, *a))
add("attnres_plain", 4, [randn(B, N, D), scaled(3 * D, D), scaled(D, D), scaled(D)],
    lambda *a: attn_res(4, *a, affine=False, qkv_bias=False))
add("mlpres", 0, [randn(B, N, D), near1(D), scaled(D), scaled(16, D), scaled(16), scaled(D, 16), scaled(D)], mlp_res)
add("mlpres_2d", 0, [randn(6, D), near1(D), scaled(D), scaled(12, D), scaled(12), scaled(D, 12), scaled(D)], mlp_res)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file({k: v.contiguous() for k, v in tensors.items()}, OUT,
          metadata={"cases": json.dumps(cases), "heads": json.dumps(heads_of), "torch": torch.__version__})
print(f"{len(cases)} cases, {os.path.getsize(OUT)} bytes -> {OUT}")

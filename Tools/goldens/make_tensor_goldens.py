#!/usr/bin/env python3
"""Writes Tests/AxialTensorTests/Fixtures/ops.safetensors: PyTorch goldens for AxialTensor ops.

For each case NAME: inputs NAME.in0, NAME.in1, ... (float32; integer indices and masks are stored as
float values), the output NAME.out, a fixed random NAME.R of the output's shape, and NAME.grad<i> =
d/d in_i of (out * R).sum() for every differentiable input. The header metadata "cases" is a JSON
object {NAME: [bool per input: differentiable?]}. Computation runs in float64 on the float32 inputs.

Run: "$(Tools/python-env)" Tools/goldens/make_tensor_goldens.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from _common import case_recorder, f32, pos, randn

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialTensorTests", "Fixtures", "ops.safetensors")

tensors = {}
cases = {}


def away(*shape, lo=0.3, hi=2.0):
    """Random values with |x| in [lo, hi] (keeps away from kinks at 0)."""
    mag = torch.rand(*shape) * (hi - lo) + lo
    sign = torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0)
    return f32(mag * sign)


case = case_recorder(tensors, cases)


# Arithmetic with broadcasting
case("add_bcast", [randn(3, 1, 5), randn(4, 5)], lambda a, b: a + b)
case("sub_bcast", [randn(2, 3), randn(3)], lambda a, b: a - b)
case("mul_bcast", [randn(2, 3, 4), randn(3, 1)], lambda a, b: a * b)
case("div_bcast", [randn(3, 4), away(4)], lambda a, b: a / b)
case("add_scalar", [randn(2, 3)], lambda a: a + 1.5)
case("mul_scalar", [randn(2, 3)], lambda a: a * -2.5)
case("rsub_scalar", [randn(5)], lambda a: 2 - a)
case("rdiv_scalar", [away(5)], lambda a: 3 / a)
case("neg", [randn(3, 2)], lambda a: -a)
case("exp", [randn(3, 5)], torch.exp)
case("log", [pos(3, 5)], torch.log)
case("sqrt", [pos(7)], torch.sqrt)
case("rsqrt", [pos(7)], torch.rsqrt)
case("abs", [away(2, 5)], torch.abs)
case("square", [randn(6)], torch.square)
case("pow_scalar", [pos(2, 3)], lambda a: a ** 2.5)
case("pow_tensor", [pos(2, 3), randn(3)], lambda a, p: a ** p)
case("clamp", [f32(torch.tensor([-1.3, -0.62, -0.1, 0.3, 0.68, 0.9, 2.0]))], lambda a: a.clamp(-0.5, 0.7))
case("maximum", [randn(3, 4), randn(4)], torch.maximum)
case("minimum", [randn(2, 1, 3), randn(4, 3)], torch.minimum)

# Activations
case("relu", [away(3, 4)], F.relu)
case("leaky_relu", [away(3, 4)], lambda a: F.leaky_relu(a, 0.1))
case("sigmoid", [randn(3, 4) * 3], torch.sigmoid)
case("tanh", [f32(torch.linspace(-4, 4, 13))], torch.tanh)
case("tanh_small", [randn(9) * 0.1], torch.tanh)
case("silu", [randn(3, 4) * 2], F.silu)
case("quick_gelu", [randn(3, 4) * 2], lambda a: a * torch.sigmoid(1.702 * a))
case("gelu", [f32(torch.linspace(-5, 5, 21))], F.gelu)
case("gelu_tanh", [f32(torch.linspace(-5, 5, 21))], lambda a: F.gelu(a, approximate="tanh"))

# Reductions
case("sum_all", [randn(3, 4)], lambda a: a.sum())
case("sum_axes", [randn(2, 3, 4)], lambda a: a.sum(dim=(0, 2)))
case("sum_keep", [randn(2, 3, 4)], lambda a: a.sum(dim=1, keepdim=True))
case("mean_axis", [randn(2, 3, 5)], lambda a: a.mean(dim=-1))
case("var_unbiased", [randn(3, 5, 2)], lambda a: a.var(dim=1))
case("var_biased", [randn(3, 5, 2)], lambda a: a.var(dim=(0, 2), unbiased=False, keepdim=True))
case("max_axis", [randn(3, 5, 2)], lambda a: a.max(dim=1).values)
case("min_axis", [randn(4, 3)], lambda a: a.min(dim=0).values)

# Shape ops
case("reshape", [randn(2, 3, 4)], lambda a: a.reshape(4, 6) * 1.0)
case("permute", [randn(2, 3, 4)], lambda a: a.permute(2, 0, 1))
case("transpose", [randn(2, 3, 4)], lambda a: a.transpose(0, 1))
case("narrow", [randn(3, 5, 2)], lambda a: a.narrow(1, 1, 3))
case("concat", [randn(2, 1, 3), randn(2, 4, 3), randn(2, 2, 3)], lambda a, b, c: torch.cat([a, b, c], dim=1))
case("stack", [randn(3, 2), randn(3, 2)], lambda a, b: torch.stack([a, b], dim=1))
case("split", [randn(3, 5)], lambda a: torch.split(a, [2, 3], dim=1)[1])
case("pad", [randn(2, 3, 2)], lambda a: F.pad(a, (0, 1, 0, 0, 1, 2), value=0.5))
case("gather", [randn(3, 4), f32(torch.tensor([[0, 3, 3], [1, 1, 0], [2, 0, 3]]))],
     lambda a, i: torch.gather(a, 1, i.long()), grad=[True, False])
case("index_select", [randn(4, 3)], lambda a: torch.index_select(a, 0, torch.tensor([2, 0, 2, 3])))
case("masked_fill", [randn(3, 4), f32(torch.tensor([1, 0, 0, 1]))],
     lambda a, m: a.masked_fill(m.bool(), -1.0), grad=[True, False])
case("where", [f32(torch.tensor([[1, 0, 1], [0, 0, 1]])), randn(2, 3), randn(3)],
     lambda c, a, b: torch.where(c.bool(), a, b), grad=[False, True, True])
case("expand", [randn(3, 1)], lambda a: a.expand(2, 3, 4))

# Matrix products
case("matmul_2d", [randn(3, 5), randn(5, 4)], torch.matmul)
case("matmul_batched", [randn(2, 1, 3, 5), randn(3, 5, 4)], torch.matmul)
case("linear", [randn(2, 3, 5), randn(4, 5), randn(4)], F.linear)
case("linear_nobias", [randn(3, 5), randn(4, 5)], F.linear)

# NN ops
case("softmax", [randn(3, 5) * 2], lambda a: F.softmax(a, dim=-1))
case("softmax_axis1", [randn(2, 4, 3)], lambda a: F.softmax(a, dim=1))
case("log_softmax", [randn(3, 5) * 2], lambda a: F.log_softmax(a, dim=-1))
case("layer_norm", [randn(2, 3, 6), randn(6), randn(6)], lambda x, w, b: F.layer_norm(x, (6,), w, b, 1e-5))
case("layer_norm_noaffine", [randn(4, 7)], lambda x: F.layer_norm(x, (7,), None, None, 1e-6))
case("norm", [randn(3, 4)], lambda a: torch.linalg.vector_norm(a, dim=1))
case("l2_normalize", [randn(3, 4)], lambda a: F.normalize(a, dim=-1))
case("cosine_similarity", [randn(3, 5), randn(1, 5)], lambda a, b: F.cosine_similarity(a, b, dim=1))
case("embedding", [f32(torch.tensor([[1, 4, 1], [0, 5, 2]])), randn(6, 4)],
     lambda i, w: F.embedding(i.long(), w), grad=[False, True])
case("sdpa", [randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 6)], F.scaled_dot_product_attention)
bool_mask = torch.tensor([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)
case("sdpa_bool", [randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 3), bool_mask],
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m.bool()), grad=[True, True, True, False])
case("sdpa_additive", [randn(2, 1, 3, 4), randn(2, 1, 5, 4), randn(2, 1, 5, 3), randn(2, 1, 3, 5)],
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3), grad=[True, True, True, True])

# No-gradient ops: forward only.
case("argmax", [randn(3, 5)], lambda a: a.argmax(dim=1).to(torch.float64), grad=[False])
case("topk_values", [randn(2, 6)], lambda a: torch.topk(a, 3, dim=-1).values, grad=[False])
case("topk_indices", [randn(2, 6)], lambda a: torch.topk(a, 3, dim=-1).indices.to(torch.float64), grad=[False])

# clip_grad_norm_: two "parameters" with given gradients; out = [total_norm], grads = clipped.
p1, p2 = torch.zeros(3, 2, requires_grad=True), torch.zeros(4, requires_grad=True)
g1, g2 = torch.randn(3, 2), torch.randn(4)
p1.grad, p2.grad = g1.clone(), g2.clone()
total = torch.nn.utils.clip_grad_norm_([p1, p2], max_norm=1.0)
tensors.update({"clip.g0": g1, "clip.g1": g2, "clip.total": total.reshape(1), "clip.clipped0": p1.grad, "clip.clipped1": p2.grad})

os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file({k: v.contiguous() for k, v in tensors.items()}, OUT, metadata={"cases": json.dumps(cases), "torch": torch.__version__})

# A file exercising the reader: F16, BF16, I64, I32 and F64 tensors written by `safetensors`.
vals = torch.tensor([[0.0, -1.5, 3.140625, 65504.0], [1e-3, -2.0e-5, 0.333, 7.0]])
save_file({"f16": vals.to(torch.float16), "bf16": vals.to(torch.bfloat16), "f32": vals,
           "i64": torch.tensor([1, -2, 3], dtype=torch.int64), "i32": torch.tensor([[7], [-8]], dtype=torch.int32),
           "f64": vals.to(torch.float64)},
          os.path.join(os.path.dirname(OUT), "dtypes.safetensors"), metadata={"format": "pt", "note": "dtypes"})
# Expected Float32 values of the F16/BF16 tensors (after their rounding), stored as F32.
save_file({"f16": vals.to(torch.float16).to(torch.float32), "bf16": vals.to(torch.bfloat16).to(torch.float32)},
          os.path.join(os.path.dirname(OUT), "dtypes_expected.safetensors"))
print(f"{len(cases)} cases, {os.path.getsize(OUT)} bytes -> {OUT}")

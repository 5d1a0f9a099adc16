#!/usr/bin/env python3
"""Writes Tests/AxialTensorTests/Fixtures/spatial.safetensors: PyTorch goldens for AxialTensor's
spatial and recurrent ops (conv1d/conv2d incl. depthwise and groups, conv_transpose2d, pooling,
interpolate, batch norm, GRU/LSTM cells, reflect/replicate pad).

Same layout as make_tensor_goldens.py: for each case NAME, inputs NAME.in<i> (float32), the output
NAME.out, a fixed random NAME.R of the output's shape and NAME.grad<i> = d/d in_i of (out * R).sum()
for every differentiable input; metadata "cases" = {NAME: [bool per input]}. Computation runs in
float64 on float32-representable inputs, except 'nearest' (index math is float32 in PyTorch
either way; values are copies). Batch-norm training cases also store NAME.running_mean and
NAME.running_var after the in-place update.

Run: "$(Tools/python-env)" Tools/goldens/make_spatial_goldens.py
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from _common import case_recorder, f32, pos, randn

torch.manual_seed(4321)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialTensorTests", "Fixtures", "spatial.safetensors")

tensors = {}
cases = {}


def distinct(*shape):
    """Values at least 0.05 apart (no near-ties for max pooling)."""
    n = 1
    for s in shape:
        n *= s
    return f32((torch.randperm(n).to(torch.float64) * 0.05 - n * 0.025).reshape(*shape))


case = case_recorder(tensors, cases)


# conv2d: general (im2col + GEMM) path
case("conv2d_basic", [randn(2, 3, 7, 6), randn(4, 3, 3, 3), randn(4)], lambda x, w, b: F.conv2d(x, w, b, padding=1))
case("conv2d_stride_pad", [randn(2, 3, 9, 8), randn(5, 3, 3, 2), randn(5)],
     lambda x, w, b: F.conv2d(x, w, b, stride=(2, 3), padding=(1, 2)))
case("conv2d_dilation", [randn(1, 2, 9, 9), randn(3, 2, 3, 3)], lambda x, w: F.conv2d(x, w, dilation=2, padding=2))
case("conv2d_groups", [randn(2, 4, 6, 7), randn(6, 2, 3, 3), randn(6)],
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2))
case("conv2d_1x1", [randn(2, 5, 4, 3), randn(3, 5, 1, 1), randn(3)], lambda x, w, b: F.conv2d(x, w, b))
case("conv2d_nograd_w", [randn(1, 2, 5, 5), randn(2, 2, 2, 2)], lambda x, w: F.conv2d(x, w, stride=2), grad=[True, False])
# conv2d: depthwise direct kernel
case("conv2d_dw7", [randn(2, 4, 9, 11), randn(4, 1, 7, 7), randn(4)], lambda x, w, b: F.conv2d(x, w, b, padding=3, groups=4))
case("conv2d_dw_stride", [randn(1, 3, 8, 9), randn(3, 1, 3, 3), randn(3)],
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3))
case("conv2d_dw_dilation", [randn(2, 3, 10, 37), randn(3, 1, 3, 5)],
     lambda x, w: F.conv2d(x, w, padding=(2, 4), dilation=2, groups=3))
case("conv2d_dw_wide", [randn(1, 2, 5, 45), randn(2, 1, 7, 7), randn(2)], lambda x, w, b: F.conv2d(x, w, b, padding=3, groups=2))
# conv1d
case("conv1d_basic", [randn(2, 3, 10), randn(4, 3, 3), randn(4)], lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1))
case("conv1d_dw3", [randn(2, 6, 12), randn(6, 1, 3), randn(6)], lambda x, w, b: F.conv1d(x, w, b, padding=1, groups=6))
case("conv1d_dil_groups", [randn(1, 4, 11), randn(6, 2, 3)], lambda x, w: F.conv1d(x, w, dilation=2, groups=2))
# conv_transpose2d
case("convt_basic", [randn(2, 3, 4, 5), randn(3, 2, 3, 3), randn(2)],
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1))
case("convt_dilation", [randn(1, 2, 3, 4), randn(2, 3, 2, 3)],
     lambda x, w: F.conv_transpose2d(x, w, stride=(1, 2), padding=(0, 1), dilation=(2, 1)))
case("convt_groups", [randn(1, 4, 3, 3), randn(4, 1, 3, 3), randn(2)],
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, groups=2))
# pooling
case("avgpool", [randn(2, 3, 7, 8)], lambda x: F.avg_pool2d(x, 3, stride=2, padding=1))
case("avgpool_exclude_pad", [randn(2, 3, 7, 8)], lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False))
case("avgpool_k2", [randn(1, 2, 6, 7)], lambda x: F.avg_pool2d(x, 2))
case("maxpool", [distinct(2, 3, 7, 8)], lambda x: F.max_pool2d(x, 3, stride=2, padding=1))
case("maxpool_dilation", [distinct(1, 2, 9, 9)], lambda x: F.max_pool2d(x, 2, stride=1, dilation=2))
case("maxpool_k2", [distinct(1, 3, 6, 7)], lambda x: F.max_pool2d(x, 2))
case("adaptive_avg", [randn(2, 3, 7, 10)], lambda x: F.adaptive_avg_pool2d(x, (3, 4)))
case("adaptive_avg_up", [randn(1, 2, 3, 5)], lambda x: F.adaptive_avg_pool2d(x, (4, 7)))
case("global_avg", [randn(2, 3, 4, 5)], lambda x: x.mean((2, 3)))
# interpolate
for mode in ["bilinear", "bicubic"]:
    for ac in [False, True]:
        tag = f"{mode}_{'ac' if ac else 'noac'}"
        case(f"{tag}_up", [randn(2, 2, 4, 5)], lambda x, m=mode, a=ac: F.interpolate(x, size=(7, 9), mode=m, align_corners=a))
        case(f"{tag}_down", [randn(1, 2, 8, 9)], lambda x, m=mode, a=ac: F.interpolate(x, size=(3, 4), mode=m, align_corners=a))
        case(f"{tag}_mixed", [randn(1, 1, 5, 6)], lambda x, m=mode, a=ac: F.interpolate(x, size=(9, 4), mode=m, align_corners=a))
    case(f"{mode}_scale2", [randn(1, 2, 4, 5)], lambda x, m=mode: F.interpolate(x, scale_factor=2, mode=m, align_corners=False))
    case(f"{mode}_scale1p7", [randn(1, 1, 5, 6)], lambda x, m=mode: F.interpolate(x, scale_factor=1.7, mode=m, align_corners=False))
    case(f"{mode}_scale0p6", [randn(1, 1, 9, 7)], lambda x, m=mode: F.interpolate(x, scale_factor=0.6, mode=m, align_corners=False))


def nearest_case(name, x, **kw):
    # float32 throughout (nearest copies values; PyTorch's index math is float32 either way)
    case(name, [x.to(torch.float32)], lambda t: F.interpolate(t, mode="nearest", **kw))


nearest_case("nearest_up", randn(1, 2, 4, 5), size=(7, 9))
nearest_case("nearest_down", randn(1, 2, 8, 9), size=(3, 4))
nearest_case("nearest_scale2", randn(1, 2, 3, 4), scale_factor=2)
nearest_case("nearest_scale1p7", randn(1, 1, 5, 6), scale_factor=1.7)
# batch norm


def bn_case(name, x, affine, training, momentum=0.1, eps=1e-5):
    C = x.shape[1]
    rm0, rv0 = randn(C) * 0.3, pos(C, lo=0.5, hi=1.5)
    w, b = randn(C), randn(C)
    rm, rv = rm0.clone(), rv0.clone()
    if affine:
        case(name, [x, w, b, rm0, rv0],
             lambda x, w, b, m, v: F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps),
             grad=[True, True, True, False, False])
    else:
        case(name, [x, rm0, rv0], lambda x, m, v: F.batch_norm(x, rm, rv, None, None, training=training, momentum=momentum, eps=eps),
             grad=[True, False, False])
    tensors[f"{name}.running_mean"] = rm.to(torch.float32)
    tensors[f"{name}.running_var"] = rv.to(torch.float32)


bn_case("bn2d_train", randn(3, 4, 5, 6) * 2 + 0.5, affine=True, training=True)
bn_case("bn1d_train_ncl", randn(4, 3, 5), affine=True, training=True)
bn_case("bn1d_train_nc", randn(6, 4) - 1, affine=True, training=True)
bn_case("bn1d_train_noaffine", randn(5, 3), affine=False, training=True)
bn_case("bn2d_eval", randn(2, 3, 4, 4), affine=True, training=False)
bn_case("bn1d_eval_noaffine", randn(4, 3), affine=False, training=False)
case("bn_batchstats", [randn(3, 2, 4), randn(2), randn(2)], lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True))
# recurrent cells
B, I, H = 3, 5, 4
case("gru", [randn(B, I), randn(B, H), randn(3 * H, I) * 0.5, randn(3 * H, H) * 0.5, randn(3 * H), randn(3 * H)],
     lambda x, h, wi, wh, bi, bh: torch._VF.gru_cell(x, h, wi, wh, bi, bh))
case("gru_nobias", [randn(B, I), randn(B, H), randn(3 * H, I) * 0.5, randn(3 * H, H) * 0.5],
     lambda x, h, wi, wh: torch._VF.gru_cell(x, h, wi, wh, None, None))
case("lstm", [randn(B, I), randn(B, H), randn(B, H), randn(4 * H, I) * 0.5, randn(4 * H, H) * 0.5, randn(4 * H), randn(4 * H)],
     lambda x, h, c, wi, wh, bi, bh: torch.cat(torch._VF.lstm_cell(x, (h, c), wi, wh, bi, bh), 1))
# reflect / replicate padding
case("pad_reflect2d", [randn(2, 3, 5, 6)], lambda x: F.pad(x, (1, 3, 2, 1), mode="reflect"))
case("pad_replicate2d", [randn(2, 3, 5, 6)], lambda x: F.pad(x, (1, 3, 2, 1), mode="replicate"))
case("pad_reflect1d", [randn(2, 3, 7)], lambda x: F.pad(x, (3, 2), mode="reflect"))
case("pad_replicate1d", [randn(1, 2, 4)], lambda x: F.pad(x, (5, 2), mode="replicate"))

# Cross-check the cells against the nn modules (same gate order/equations).
with torch.no_grad():
    g = torch.nn.GRUCell(I, H).double()
    xx, hh = randn(B, I), randn(B, H)
    assert torch.allclose(g(xx, hh), torch._VF.gru_cell(xx, hh, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh))

save_file({k: v.contiguous() for k, v in tensors.items()}, OUT, metadata={"cases": json.dumps(cases)})
print(f"wrote {len(cases)} cases, {len(tensors)} tensors, {os.path.getsize(OUT)} bytes to {os.path.normpath(OUT)}")

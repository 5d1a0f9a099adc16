"""Goldens for the MIL heads' fused instance encoder `linearReLUMasked` (AxialModels
HeadKernels.swift): mask ⊙ ReLU(x·Wᵀ + b) against the unfused torch composition
`F.relu(F.linear(x, W, b)) * mask`, values and gradients (of (out · R).sum()) for x, W and b.

    "$(Tools/python-env)" Tools/goldens/make_head_kernel_goldens.py
    → Tests/AxialModelsTests/Fixtures/head_kernels.safetensors
"""
import os
import torch, torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(18)
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialModelsTests/Fixtures/head_kernels.safetensors")
tensors = {}


def case(name, x, w, b, mask):
    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, w, b))
    y = F.relu(F.linear(xs, ws, bs))
    if mask is not None:
        y = y * mask
    R = torch.randn(y.shape)
    (y * R).sum().backward()
    tensors.update({f"{name}.x": x, f"{name}.w": w, f"{name}.b": b, f"{name}.out": y.detach(), f"{name}.R": R,
                    f"{name}.dx": xs.grad, f"{name}.dw": ws.grad, f"{name}.db": bs.grad})
    if mask is not None:
        tensors[f"{name}.mask"] = mask


# [B, N, in] → [B, N, out]; about half the pre-activations negative; inverted-dropout mask p = 0.25.
x, w, b = torch.randn(2, 9, 12), torch.randn(7, 12) * 0.3, torch.randn(7) * 0.3
mask = (torch.rand(2, 9, 7) >= 0.25).float() / 0.75
case("dropout", x, w, b, mask)
case("nomask", torch.randn(5, 12), w, b, None)
save_file({k: v.to(torch.float32).clone().contiguous() for k, v in tensors.items()}, OUT)
print(f"wrote {OUT}: {len(tensors)} tensors")

"""Helpers shared by the golden scripts (make_tensor_goldens.py, make_spatial_goldens.py,
make_nn_goldens.py). The scripts import it as a sibling module (`python Tools/goldens/make_X.py`
puts this folder on sys.path).
"""
import torch


def f32(t):
    """t rounded to float32, held as float64 (goldens compute in float64 on float32-representable values)."""
    return t.to(torch.float32).to(torch.float64)


def randn(*shape):
    return f32(torch.randn(*shape))


def pos(*shape, lo=0.3, hi=2.0):
    """Uniform values in [lo, hi)."""
    return f32(torch.rand(*shape) * (hi - lo) + lo)


def case_recorder(tensors, cases):
    """Returns `case(name, inputs, fn, grad=None)`, which runs fn on the inputs and stores, into
    `tensors`: NAME.in<i> (float32), NAME.out, a fixed random NAME.R of the output's shape and
    NAME.grad<i> = d/d in_i of (out * R).sum() for every input with grad[i] (default: all); into
    `cases`: {NAME: grad}. The output is promoted to float64 before R is drawn and applied.
    """

    def case(name, inputs, fn, grad=None):
        grad = grad if grad is not None else [True] * len(inputs)
        xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad)]
        out = fn(*xs)
        if out.dtype != torch.float64:
            out = out.to(torch.float64)
        R = f32(torch.randn(out.shape))
        for i, x in enumerate(inputs):
            tensors[f"{name}.in{i}"] = x.to(torch.float32).contiguous()
        tensors[f"{name}.out"] = out.detach().to(torch.float32).contiguous()
        tensors[f"{name}.R"] = R.to(torch.float32).contiguous()
        if any(grad) and out.requires_grad:
            (out * R).sum().backward()
            for i, (x, g) in enumerate(zip(xs, grad)):
                if g:
                    gx = x.grad if x.grad is not None else torch.zeros_like(x)
                    tensors[f"{name}.grad{i}"] = gx.to(torch.float32).contiguous()
        cases[name] = grad

    return case

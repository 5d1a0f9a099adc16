"""Goldens for AxialImaging's PIL/torchvision-exact transforms and augmentations.

Run: "$(Tools/python-env)" Tools/goldens/make_transform_goldens.py
Writes Tests/AxialImagingTests/Fixtures/transforms.safetensors (uint8 images as U8, normalised
tensors as F32). Every augmentation is evaluated with FIXED parameters (a crop box, a brightness
factor, a blur sigma, ...) through the exact torchvision / PIL call that MoCo v3 / LeCL use, so the
Swift ops can be compared value for value (the random parameter sampling itself is Axial's own
seeded RNG and cannot match torch's stream).
Metadata key "cases" lists every case with its parameters (JSON).
"""
import json
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter, ImageOps
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/AxialImagingTests/Fixtures/transforms.safetensors")

rng = np.random.default_rng(1234)
H, W = 37, 53
# Smooth structure + noise so that interpolation, blur and colour ops all see gradients and edges.
yy, xx = np.mgrid[0:H, 0:W]
base = 127 + 90 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
gray = np.clip(base + rng.normal(0, 25, (H, W)), 0, 255).astype(np.uint8)
gray[5:12, 30:44] = 255  # a saturated block
gray[20:26, 3:9] = 0
rgb = np.stack([gray,
                np.clip(255 - base + rng.normal(0, 30, (H, W)), 0, 255).astype(np.uint8),
                rng.integers(0, 256, (H, W), dtype=np.uint8)], axis=-1)

tensors = {"input_gray": gray, "input_rgb": rgb}
cases = []
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])


def pil(name):
    return Image.fromarray(gray, "L") if name == "gray" else Image.fromarray(rgb, "RGB")


def add(name, op, src, out, **params):
    arr = np.asarray(out)
    if arr.dtype == np.uint8 and arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim == 3 and arr.shape[2] == 3 and src == "gray":
        # A gray source stays gray through every op (R = G = B): store one channel (size).
        assert (arr[:, :, 0] == arr[:, :, 1]).all() and (arr[:, :, 0] == arr[:, :, 2]).all(), name
        arr = arr[:, :, :1]
    tensors[name] = np.ascontiguousarray(arr)
    cases.append(dict(name=name, op=op, input=src, **params))


for src in ["gray", "rgb"]:
    img = pil(src)
    # Resize: shorter side (torchvision int size) and exact sizes, both filters, down and up.
    for interp, mode in [("bilinear", T.InterpolationMode.BILINEAR), ("bicubic", T.InterpolationMode.BICUBIC)]:
        for size in [24, 16, 48]:
            add(f"resize_short_{interp}_{size}_{src}", "resize_short", src, F.resize(img, size, mode), size=size, interpolation=interp)
        for (h, w) in [(24, 24), (19, 61), (37, 20), (60, 53)]:
            add(f"resize_exact_{interp}_{h}x{w}_{src}", "resize_exact", src, F.resize(img, [h, w], mode), height=h, width=w, interpolation=interp)
        # crop box + resize (RandomResizedCrop / resized_crop with given parameters)
        for (top, left, ch, cw, out) in [(3, 7, 30, 20, 24), (0, 0, 37, 53, 24), (10, 20, 9, 11, 24), (1, 2, 34, 49, 13)]:
            add(f"resized_crop_{interp}_{top}_{left}_{ch}_{cw}_{out}_{src}", "resized_crop", src,
                F.resized_crop(img, top, left, ch, cw, [out, out], mode), top=top, left=left, height=ch, width=cw, size=out, interpolation=interp)
    # CenterCrop (incl. odd margins and padding when the crop is larger than the image).
    for (ch, cw) in [(24, 24), (20, 31), (36, 52), (40, 60), (37, 10)]:
        add(f"center_crop_{ch}x{cw}_{src}", "center_crop", src, F.center_crop(img, [ch, cw]), height=ch, width=cw)
    # Encoder preprocessing chains: Resize(shorter, bicubic) + CenterCrop + ToTensor + Normalize.
    for tag, (mean, std), size, crop, interp, mode in [
        ("clip", CLIP, 24, 24, "bicubic", T.InterpolationMode.BICUBIC),
        ("imagenet", IMAGENET, 27, 24, "bicubic", T.InterpolationMode.BICUBIC),
        ("imagenet_bilinear", IMAGENET, 24, 24, "bilinear", T.InterpolationMode.BILINEAR),
    ]:
        tf = T.Compose([T.Resize(size, interpolation=mode), T.CenterCrop(crop), lambda im: im.convert("RGB"), T.ToTensor(), T.Normalize(mean, std)])
        t = tf(img).numpy().astype(np.float32)
        tensors[f"preprocess_{tag}_{src}"] = t
        cases.append(dict(name=f"preprocess_{tag}_{src}", op="preprocess", input=src, size=size, crop=crop, interpolation=interp, mean=mean, std=std))
    # ToTensor + Normalize alone.
    t = T.Normalize(*IMAGENET)(T.ToTensor()(img.convert("RGB"))).numpy().astype(np.float32)
    tensors[f"normalize_imagenet_{src}"] = t
    cases.append(dict(name=f"normalize_imagenet_{src}", op="normalize", input=src, mean=IMAGENET[0], std=IMAGENET[1]))

    # Augmentation sub-ops on the RGB-converted image, as MoCo v3 / LeCL run them (PIL path).
    im3 = img.convert("RGB")
    for f in [0.6, 1.3, 0.95]:
        add(f"brightness_{f}_{src}", "brightness", src, F.adjust_brightness(im3, f), factor=f)
        add(f"contrast_{f}_{src}", "contrast", src, F.adjust_contrast(im3, f), factor=f)
    for f in [0.8, 1.2, 0.93]:
        add(f"saturation_{f}_{src}", "saturation", src, F.adjust_saturation(im3, f), factor=f)
    for f in [-0.1, -0.05, 0.02, 0.0731, 0.1]:
        add(f"hue_{f}_{src}", "hue", src, F.adjust_hue(im3, f), factor=f)
    add(f"grayscale_{src}", "grayscale", src, F.rgb_to_grayscale(im3, num_output_channels=3))
    for s in [0.1, 1.0, 1.37, 2.0, 6.0]:
        add(f"blur_{s}_{src}", "blur", src, im3.filter(ImageFilter.GaussianBlur(radius=s)), sigma=s)
    add(f"solarize_{src}", "solarize", src, ImageOps.solarize(im3))
    add(f"hflip_{src}", "hflip", src, F.hflip(im3))
    # LeCL lesion crop as CLEAR does it: PIL crop (zero outside the image) then Resize([s, s]).
    for (top, left, ch, cw) in [(-5, 30, 20, 30), (20, -10, 25, 22), (4, 6, 12, 15)]:
        add(f"zero_crop_{top}_{left}_{ch}_{cw}_{src}", "zero_crop_resize", src,
            T.Resize([24, 24])(F.crop(im3, top, left, ch, cw)), top=top, left=left, height=ch, width=cw, size=24)

# One fixed-parameter view chain on RGB: resized_crop → jitter (given order) → grayscale? no → blur → solarize → flip → normalise.
im3 = pil("rgb")
v = F.resized_crop(im3, 2, 5, 30, 41, [24, 24], T.InterpolationMode.BILINEAR)
order = [3, 0, 2, 1]  # hue, brightness, saturation, contrast
fs = {0: lambda im: F.adjust_brightness(im, 1.21), 1: lambda im: F.adjust_contrast(im, 0.77),
      2: lambda im: F.adjust_saturation(im, 1.13), 3: lambda im: F.adjust_hue(im, -0.043)}
for i in order:
    v = fs[i](v)
v = v.filter(ImageFilter.GaussianBlur(radius=0.83))
v = ImageOps.solarize(v)
v = F.hflip(v)
t = T.Normalize(*IMAGENET)(T.ToTensor()(v)).numpy().astype(np.float32)
tensors["chain_rgb"] = t
cases.append(dict(name="chain_rgb", op="chain", input="rgb", top=2, left=5, height=30, width=41, size=24, order=order,
                  brightness=1.21, contrast=0.77, saturation=1.13, hue=-0.043, sigma=0.83))

meta = {"cases": json.dumps(cases), "torchvision": torchvision.__version__, "pillow": Image.__version__ if hasattr(Image, "__version__") else "",
        "torch": torch.__version__}
tmp = OUT + ".tmp"
save_file(tensors, tmp, metadata=meta)
os.replace(tmp, OUT)
print(f"wrote {OUT}: {len(cases)} cases, {os.path.getsize(OUT)} bytes")

"""CT volumes + label volumes → 2D image / mask PNG pairs and a medvlsm prompt JSON for `axial segment`.

Usage:
  python Tools/evidence/segment_slices.py pyradiomics SDIST.tar.gz OUT   the two real lung CTs of the pyradiomics
                                                                          3.1.0 sdist (data/lung{1,2}_image.nrrd + _label.nrrd)
  python Tools/evidence/segment_slices.py synthetic N OUT [SEED]          N synthetic chest CTs with spherical tumours
  python Tools/evidence/segment_slices.py cut IMAGE LABEL OUT NAME        one volume pair (any SimpleITK format)

Each volume pair is checked first: the label volume must lie on the image's grid (size, spacing, origin,
direction); otherwise the run stops with an error naming the label file and writes nothing (every output
goes to OUT.partial, renamed to OUT at the end and removed on any failure). Axial slices holding ≥ 20 label voxels are cut:
HU → 8-bit with Axial's lung window (W1500 / L−600: byte = clamp(round((HU − lower) · 255 / width), 0, 255),
as `CTWindow.byte`), written as gray PNGs; masks are 0 / 255 PNGs of the same size. The real CTs are 512²
with tumours of 0.1–1.3 % of a slice, so each tumour slice gives `CROPS` (4) crops of 192² whose seeded
random offsets keep the whole tumour inside (the tumour is not centred). Prompt JSON per source
(`<name>.json`): img_name, mask_name, bbox, cat "tumour", prompts p0 "" … p3.
"""
import json, os, shutil, sys, tarfile

import numpy as np
import SimpleITK as sitk
from PIL import Image

LOWER, WIDTH = -600 - 1500 / 2, 1500.0
CROP, CROPS, MIN_VOXELS = 192, 4, 20


def window(hu):
    t = (hu.astype(np.float32) - np.float32(LOWER)) * np.float32(255 / WIDTH)
    return np.floor(np.clip(t, 0, 255) + 0.5).astype(np.uint8)


def check_grid(image, label, label_path):
    problems = []
    if image.GetSize() != label.GetSize():
        problems.append(f"size {label.GetSize()} != image {image.GetSize()}")
    for what, a, b in [("spacing", label.GetSpacing(), image.GetSpacing()), ("origin", label.GetOrigin(), image.GetOrigin()),
                       ("direction", label.GetDirection(), image.GetDirection())]:
        if not np.allclose(a, b, atol=1e-4):
            problems.append(f"{what} {tuple(round(x, 4) for x in a)} != image {tuple(round(x, 4) for x in b)}")
    if problems:
        sys.exit(f"error: {label_path}: label volume is not on the image grid: " + "; ".join(problems))


def cut(image_path, label_path, out, name, rng, entries):
    image, label = sitk.ReadImage(image_path), sitk.ReadImage(label_path)
    check_grid(image, label, label_path)
    hu, lab = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(label) > 0   # [z, y, x]
    H, W = hu.shape[1:]
    crop = CROP if min(H, W) > CROP else 0
    for z in range(hu.shape[0]):
        m = lab[z]
        if m.sum() < MIN_VOXELS:
            continue
        ys, xs = np.nonzero(m)
        boxes = [(0, 0, H, W)]
        if crop:
            y0s = range(max(0, ys.max() - crop + 1), min(ys.min(), H - crop) + 1)
            x0s = range(max(0, xs.max() - crop + 1), min(xs.min(), W - crop) + 1)
            boxes = [(int(rng.choice(y0s)), int(rng.choice(x0s)), crop, crop) for _ in range(CROPS)]
        for k, (y0, x0, h, w) in enumerate(boxes):
            fname = f"{name}_z{z:03d}_{k}.png"
            Image.fromarray(window(hu[z, y0:y0 + h, x0:x0 + w])).save(os.path.join(out, "images", fname))
            mm = m[y0:y0 + h, x0:x0 + w]
            Image.fromarray((mm * 255).astype(np.uint8)).save(os.path.join(out, "masks", fname))
            yy, xx = np.nonzero(mm)
            entries.append(dict(img_name=fname, mask_name=fname, bbox=[int(xx.min()), int(yy.min()), int(xx.max()), int(yy.max())],
                                cat="tumour", prompts=dict(p0="", p1="tumour", p2="a lung tumour in a chest CT slice",
                                                           p3=["lung nodule", "a solid mass in the lung"])))


def synthetic_volume(rng, n=24, size=128):
    """Chest-like CT: soft-tissue body (40 HU) with two lungs (−850 HU), one tumour sphere (radius 10–16 mm, 20–60 HU) in a lung, noise σ 25."""
    zz, yy, xx = np.mgrid[0:n, 0:size, 0:size].astype(np.float32)
    hu = np.full((n, size, size), -1000, np.float32)
    body = ((xx - size / 2) / (size * 0.45)) ** 2 + ((yy - size / 2) / (size * 0.35)) ** 2 <= 1
    hu[body] = 40
    lungs = []
    for cx in (size * 0.3, size * 0.7):
        l = ((xx - cx) / (size * 0.14)) ** 2 + ((yy - size / 2) / (size * 0.22)) ** 2 <= 1
        hu[l] = -850
        lungs.append(cx)
    cx = lungs[rng.integers(2)] + rng.uniform(-6, 6)
    cy, cz, r = size / 2 + rng.uniform(-10, 10), rng.uniform(8, n - 8), rng.uniform(10, 16)
    tumour = (xx - cx) ** 2 + (yy - cy) ** 2 + ((zz - cz) * 2) ** 2 <= r * r   # slices 2 mm, pixels 1 mm
    hu[tumour] = rng.uniform(20, 60)
    hu += rng.normal(0, 25, hu.shape).astype(np.float32)
    im = sitk.GetImageFromArray(hu.astype(np.int16)); im.SetSpacing((1.0, 1.0, 2.0))
    lb = sitk.GetImageFromArray(tumour.astype(np.uint8)); lb.CopyInformation(im)
    return im, lb


def main():
    mode = sys.argv[1]
    out = sys.argv[3] if mode != "cut" else sys.argv[4]
    partial = out.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(os.path.join(partial, "images")); os.makedirs(os.path.join(partial, "masks"))
    try:
        fill(mode, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)   # nothing half-written is left behind
        raise
    shutil.rmtree(out, ignore_errors=True)
    os.replace(partial, out)


def fill(mode, partial):
    rng = np.random.default_rng(int(sys.argv[4]) if mode == "synthetic" and len(sys.argv) > 4 else 0)
    groups = {}
    if mode == "pyradiomics":
        src = os.path.join(partial, "src")
        with tarfile.open(sys.argv[2]) as t:
            for n in ("lung1", "lung2"):
                for part in ("image", "label"):
                    member = t.getmember(f"pyradiomics-3.1.0/data/{n}_{part}.nrrd")
                    member.name = os.path.basename(member.name)
                    t.extract(member, src, filter="data")
        for n in ("lung1", "lung2"):
            groups[n] = []
            cut(os.path.join(src, f"{n}_image.nrrd"), os.path.join(src, f"{n}_label.nrrd"), partial, n, rng, groups[n])
        shutil.rmtree(src)
    elif mode == "synthetic":
        vols = os.path.join(partial, "volumes"); os.makedirs(vols)
        groups["synthetic"] = []
        for i in range(int(sys.argv[2])):
            im, lb = synthetic_volume(rng)
            ip, lp = os.path.join(vols, f"ct{i:02d}.nrrd"), os.path.join(vols, f"ct{i:02d}_label.nrrd")
            sitk.WriteImage(im, ip); sitk.WriteImage(lb, lp)
            cut(ip, lp, partial, f"ct{i:02d}", rng, groups["synthetic"])
    elif mode == "cut":
        groups[sys.argv[5]] = []
        cut(sys.argv[2], sys.argv[3], partial, sys.argv[5], rng, groups[sys.argv[5]])
    else:
        sys.exit(f"error: unknown mode {mode!r} (pyradiomics, synthetic, cut)")
    for g, entries in groups.items():
        with open(os.path.join(partial, f"{g}.json"), "w") as f:
            json.dump(entries, f, indent=1)
        print(f"{g}: {len(entries)} image/mask pairs")


if __name__ == "__main__":
    main()

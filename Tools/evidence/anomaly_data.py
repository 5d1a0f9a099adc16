"""Data for Tools/evidence/anomaly_evidence.sh (the README's anomaly evidence table).

    python anomaly_data.py synth OUT_DIR [--patients 12] [--seed 0]
        synthetic CT volumes with lesions: OUT_DIR/ct/case<i>.nii.gz (int16 HU) and
        OUT_DIR/ct/masks/case<i>.nii.gz (uint8, 1 = lesion), written with SimpleITK on one grid.
    python anomaly_data.py pyradiomics SDIST_DATA_DIR OUT_DIR
        the two lung CTs of the pyradiomics 3.1.0 sdist (data/lung{1,2}_{image,label}.nrrd) as NIfTI:
        OUT_DIR/ct/lung<i>.nii.gz and OUT_DIR/ct/masks/lung<i>.nii.gz (SimpleITK, geometry kept).
    python anomaly_data.py bmad INGEST_DIR WINDOW OBJ_DIR split=patient,patient… [split=…]
        BMAD layout from an `axial ingest --masks` folder: every slice of a listed patient goes to
        OBJ_DIR/<split>/good/img/ (mask empty) or OBJ_DIR/<split>/Ungood/img/ + anomaly_mask/ (mask
        non-empty), named <patient>_<slice>.png; the window's PNG is the image, <slice>_mask.png the mask.
"""
import csv, os, shutil, sys
import numpy as np
import SimpleITK as sitk


def synth(out, patients=12, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "ct", "masks"), exist_ok=True)
    nx = ny = 64; nz = 20
    sp = (1.5, 1.5, 2.5)
    for p in range(patients):
        zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float32)
        hu = np.full((nz, ny, nx), -1000.0, np.float32)
        cx, cy = nx / 2 + rng.uniform(-3, 3), ny / 2 + rng.uniform(-3, 3)
        ax, ay = rng.uniform(24, 29), rng.uniform(18, 23)
        body = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
        hu[body] = 40
        # an organ (liver-like) and a spine-like bright disc
        organ = ((xx - cx + 8) / 12) ** 2 + ((yy - cy + 2) / 9) ** 2 <= 1
        hu[organ] = 60
        spine = ((xx - cx) / 4) ** 2 + ((yy - cy - ay + 6) / 4) ** 2 <= 1
        hu[spine] = 500
        mask = np.zeros((nz, ny, nx), np.uint8)
        for _ in range(rng.integers(1, 3)):
            r = rng.uniform(3.0, 6.0)                     # voxels in-plane
            lz, ly, lx = rng.uniform(4, nz - 4), cy + rng.uniform(-10, 10), cx + rng.uniform(-14, 14)
            d = ((xx - lx) ** 2 + (yy - ly) ** 2 + ((zz - lz) * sp[2] / sp[0]) ** 2) <= r * r
            d &= body
            hu[d] = rng.choice([-10.0, 130.0])           # hypodense or hyperdense lesion
            mask[d] = 1
        hu += rng.normal(0, 12, hu.shape) * body
        ct = sitk.GetImageFromArray(np.round(hu).astype(np.int16))
        m = sitk.GetImageFromArray(mask)
        for im in (ct, m):
            im.SetSpacing(sp); im.SetOrigin((-48.0, -48.0, -25.0 + 100 * p))
        sitk.WriteImage(ct, os.path.join(out, "ct", f"case{p:02d}.nii.gz"))
        sitk.WriteImage(m, os.path.join(out, "ct", "masks", f"case{p:02d}.nii.gz"))


def pyradiomics(data, out):
    os.makedirs(os.path.join(out, "ct", "masks"), exist_ok=True)
    for n in ("lung1", "lung2"):
        img = sitk.ReadImage(os.path.join(data, f"{n}_image.nrrd"))
        lab = sitk.ReadImage(os.path.join(data, f"{n}_label.nrrd"))
        lab = sitk.Cast(lab > 0, sitk.sitkUInt8)
        lab.CopyInformation(img) if lab.GetSize() == img.GetSize() else None
        sitk.WriteImage(img, os.path.join(out, "ct", f"{n}.nii.gz"))
        sitk.WriteImage(lab, os.path.join(out, "ct", "masks", f"{n}.nii.gz"))


def bmad(ingest, window, obj, splits):
    rows = list(csv.DictReader(open(os.path.join(ingest, "manifest.csv"))))
    if os.path.exists(obj):
        shutil.rmtree(obj)
    counts = {}
    for spec in splits:
        split, pats = spec.split("=", 1)
        pats = pats.split(",")
        for r in rows:
            if r["patient_id"] not in pats or r["window"] != window:
                continue
            img = os.path.join(ingest, r["path"])
            k = int(r["slice_index"])
            mask = os.path.join(os.path.dirname(img), f"{k:04d}_mask.png")
            if not os.path.exists(mask):
                sys.exit(f"{mask}: no mask PNG (ingest with --masks)")
            from PIL import Image
            m = np.array(Image.open(mask))
            cls = "Ungood" if (m > 0).any() else "good"
            name = f"{r['patient_id']}_{k:04d}.png"
            d = os.path.join(obj, split, cls, "img"); os.makedirs(d, exist_ok=True)
            shutil.copy(img, os.path.join(d, name))
            if cls == "Ungood":
                d = os.path.join(obj, split, cls, "anomaly_mask"); os.makedirs(d, exist_ok=True)
                shutil.copy(mask, os.path.join(d, name))
            counts[(split, cls)] = counts.get((split, cls), 0) + 1
    print(obj, " ".join(f"{s}/{c}={n}" for (s, c), n in sorted(counts.items())))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "synth":
        kw = dict(zip(a[2::2], a[3::2]))
        synth(a[1], patients=int(kw.get("--patients", 12)), seed=int(kw.get("--seed", 0)))
    elif a[0] == "pyradiomics":
        pyradiomics(a[1], a[2])
    elif a[0] == "bmad":
        bmad(a[1], a[2], a[3], a[4:])
    else:
        sys.exit(__doc__)

"""Real public scans through `axial inspect --json` / `axial ingest`, compared with SimpleITK.

Inputs: every file shipped with pydicom (pydicom/data/test_files, incl. dicomdirtests) and nibabel
(nibabel/tests/data, nibabel/nicom/tests/data), found through the installed packages, and NIfTI
variants written here with nibabel (datatypes, endianness, scaling, orientations, qform/sform). Each folder
through `axial inspect --json` must finish without crashing; then for every file:
  * `axial inspect --json FILE` must finish (timeout) without crashing (exit 0 with series, or exit 1
    with a `problem:` line on stderr: an unreadable or non-CT file must say why);
  * DICOM: where Axial reads a volume and SimpleITK reads the file too, SimpleITK's image reoriented
    with DICOMOrient(img, "LPS") (Axial's canonical order) must agree: shape, spacing, origin,
    direction (1e-4) and mean voxel value (rescale applied; 1e-3 relative);
  * NIfTI: the same against nibabel (first volume, reordered to the LPS-closest voxel order), and
    every voxel through `axial ingest` with one window spanning the file's range (PNG bytes vs the
    documented HU → byte formula on nibabel's voxels, ±1).
Then `axial ingest` over one folder holding all of them must exit 0 and list every file it did not
use in ingest_errors.csv with a reason.

    python Tools/check_real_data.py [--axial .build/release/axial] [--work /tmp/axial_real_data]
Exit status 1 when any check fails; one line per file.
"""
import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import SimpleITK as sitk


SYNTHETIC = []


def folders():
    import nibabel
    import pydicom
    return SYNTHETIC + [os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files"),
            os.path.join(os.path.dirname(nibabel.__file__), "tests", "data"),
            os.path.join(os.path.dirname(nibabel.__file__), "nicom", "tests", "data")]


def synthetic_nifti(folder):
    """NIfTI variants written with nibabel: every integer/float datatype, big-endian, scaled,
    oblique, permuted/flipped axes (NIfTI-1 and -2), qform-only, sform-only, 2-D; complex and RGB
    (must be refused with a reason)."""
    import nibabel as nib
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(-1000, 2000, size=(7, 6, 5)).astype(np.float64)
    aff = np.diag([0.8, 0.9, 2.5, 1.0]); aff[:3, 3] = [-10, 20, 30]
    th = 0.3
    rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    oblique = np.eye(4); oblique[:3, :3] = rot @ np.diag([0.8, 0.9, 2.5]); oblique[:3, 3] = [5, -3, 7]
    permuted = np.array([[0, 0, -2.5, 40], [-0.8, 0, 0, 10], [0, 0.9, 0, -5], [0, 0, 0, 1]], float)
    def save(img, name): nib.save(img, os.path.join(folder, name))
    for dt in ["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]:
        d = base + 1000 if dt.startswith("u") else base.copy()
        if dt == "uint8": d = np.clip(d / 20, 0, 255)
        if dt == "int8": d = np.clip(d / 20, -100, 100)
        save(nib.Nifti1Image(d.astype(dt), aff, dtype=dt), f"dt_{dt}.nii")
    save(nib.Nifti1Image(base.astype(np.int16), oblique), "oblique.nii.gz")
    save(nib.Nifti1Image(base.astype(np.int16), permuted), "permuted.nii")
    save(nib.Nifti2Image(base.astype(np.float32), permuted), "permuted_nifti2.nii")
    img = nib.Nifti1Image(base.astype(np.int16), aff); img.header.set_slope_inter(0.5, -100); save(img, "scaled.nii")
    img = nib.Nifti1Image(base.astype(np.int16), None); img.set_qform(permuted, code=1); img.set_sform(None, code=0); save(img, "qform_only.nii")
    img = nib.Nifti1Image(base.astype(np.int16), None); img.set_sform(oblique, code=2); img.set_qform(None, code=0); save(img, "sform_only.nii")
    save(nib.Nifti1Image(base.astype(">i2"), aff, header=nib.Nifti1Header(endianness=">")), "bigendian.nii")
    save(nib.Nifti1Image(base[:, :, 0].astype(np.int16), aff), "two_d.nii")
    save(nib.Nifti1Image(base.astype(np.complex64), aff), "complex.nii")
    save(nib.Nifti1Image(np.zeros((7, 6, 5), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), aff), "rgb.nii")
    return folder


def inputs():
    """Every file of the folders (DICOMDIRs, dumps, JSON, .gz … too: none may crash Axial)."""
    files = []
    for d in folders():
        files += sorted(f for f in glob.glob(os.path.join(d, "**", "*"), recursive=True) if os.path.isfile(f))
    return files


def sitk_reference(path):
    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    try:
        img = sitk.ReadImage(path)
    except Exception as e:  # noqa: BLE001
        return None, f"SimpleITK cannot read: {str(e).splitlines()[-1][:120] if str(e) else e}"
    if img.GetNumberOfComponentsPerPixel() != 1:
        return None, "SimpleITK: multi-component (colour) image"
    if img.GetDimension() == 2:
        img = sitk.JoinSeries(img)
    if img.GetDimension() != 3:
        return None, f"SimpleITK: {img.GetDimension()}-D image"
    img = sitk.DICOMOrient(img, "LPS")
    a = sitk.GetArrayViewFromImage(img).astype(np.float64)
    return {"shape": list(a.shape), "spacing": list(img.GetSpacing())[::-1], "origin": list(img.GetOrigin()),
            "direction": list(img.GetDirection()), "mean": float(a[np.isfinite(a)].mean())}, None


def nib_reference(path):
    """nibabel: first volume, reordered to Axial's canonical LPS-closest voxel order, as [z, y, x]
    (the same computation as Tools/fixtures/make_imaging_fixtures.py)."""
    import nibabel as nib
    from nibabel import orientations as ornt
    img = nib.load(path)
    if len(img.shape) == 2:
        img = nib.Nifti1Image(np.asarray(img.dataobj)[..., None], img.affine, img.header)
    if len(img.shape) < 3 or any(d > 1 for d in img.shape[4:]):
        return None
    data = img.get_fdata(dtype=np.float64)
    if data.ndim == 4:
        data = data[..., 0]
    data = np.nan_to_num(data, nan=0.0)   # libnifti (Axial) and SimpleITK read NaN voxels as 0 (resampled_anat_moved.nii)
    cur = ornt.io_orientation(img.affine)
    tr = ornt.ornt_transform(cur, ornt.axcodes2ornt(("L", "P", "S")))
    data = ornt.apply_orientation(data, tr)
    affine = img.affine @ ornt.inv_ornt_aff(tr, img.shape[:3])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    m = lps[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    arr = np.transpose(data, (2, 1, 0))
    return {"shape": list(arr.shape), "spacing": list(spacing[::-1]), "origin": list(lps[:3, 3]),
            "direction": list((m / spacing).reshape(-1)), "mean": float(arr[np.isfinite(arr)].mean()), "array": arr}


def nifti_voxels_via_ingest(axial, path, ref, work, timeout):
    """Ingests the file with one window spanning its whole range and compares every PNG byte with
    the HU → byte formula applied to nibabel's reordered voxels (±1 for float rounding at bin edges)."""
    from PIL import Image
    arr = ref["array"]
    finite = np.isfinite(arr)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    width = max(hi - lo, 1e-3) * 1.0001
    level = (hi + lo) / 2
    out = os.path.join(work, "voxels", os.path.basename(path))
    inp = os.path.join(work, "voxels_in", os.path.basename(path))
    os.makedirs(inp, exist_ok=True)
    shutil.copy(path, inp)
    r = subprocess.run([axial, "ingest", inp, "--out", out, "--windows", f"W{width:.9g}/L{level:.9g}"],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        return f"ingest exit {r.returncode}: {r.stderr[-200:]!r}"
    with open(os.path.join(out, "manifest.csv")) as fh:
        rows = sorted(csv.DictReader(fh), key=lambda row: int(row["slice_index"]))
    if len(rows) != arr.shape[0]:
        return f"ingest wrote {len(rows)} slices, nibabel has {arr.shape[0]}"
    w, lvl = float(f"{width:.9g}"), float(f"{level:.9g}")
    expected = np.floor(np.clip((arr - (lvl - w / 2)) / w, 0, 1) * 255 + 0.5)
    worst = 0
    for row in rows:
        got = np.asarray(Image.open(os.path.join(out, row["path"])), dtype=np.float64)
        z = int(row["slice_index"])
        if got.shape != expected[z].shape:
            return f"slice {z}: PNG {got.shape} vs {expected[z].shape}"
        worst = max(worst, float(np.abs(got - expected[z])[finite[z]].max(initial=0)))   # NaN voxels: not compared
    return None if worst <= 1 else f"voxels differ from nibabel's LPS reorder (max byte difference {worst:.0f})"


def close(a, b, tol):
    return len(a) == len(b) and all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--axial", default=".build/release/axial")
    p.add_argument("--work", default="/tmp/axial_real_data")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    failures = 0
    shutil.rmtree(a.work, ignore_errors=True)
    mixed = os.path.join(a.work, "mixed")
    os.makedirs(mixed)
    SYNTHETIC.append(synthetic_nifti(os.path.join(a.work, "synthetic_nifti")))
    for d in folders():
        try:
            r = subprocess.run([a.axial, "inspect", "--json", d], capture_output=True, text=True, timeout=10 * a.timeout)
            ok = r.returncode in (0, 1) and (r.returncode == 0 or "problem:" in r.stderr)
            n = len(json.loads(r.stdout)["series"]) if ok else 0
            print(f"{'ok  ' if ok else 'FAIL'} folder {d}: exit {r.returncode}, {n} series" + ("" if ok else f" {r.stderr[-300:]!r}"))
            failures += not ok
        except subprocess.TimeoutExpired:
            print(f"FAIL folder {d}: axial inspect hung"); failures += 1
    for f in inputs():
        name = os.path.relpath(f, os.path.dirname(os.path.dirname(f))).replace(os.sep, "_")
        shutil.copy(f, os.path.join(mixed, name))
        try:
            r = subprocess.run([a.axial, "inspect", "--json", f], capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            print(f"FAIL {name}: axial inspect hung (> {a.timeout:.0f} s)"); failures += 1; continue
        if r.returncode not in (0, 1) or (r.returncode == 1 and "problem:" not in r.stderr):
            print(f"FAIL {name}: axial inspect exit {r.returncode}: {(r.stderr or r.stdout)[-300:]!r}"); failures += 1; continue
        is_nifti = f.endswith((".nii", ".nii.gz"))
        if is_nifti:
            try:
                ref, why = nib_reference(f), "nibabel: not a 2-D/3-D/4-D volume"
            except Exception as e:  # noqa: BLE001
                ref, why = None, f"nibabel: {e}"
        else:
            try:
                ref, why = sitk_reference(f)
            except Exception as e:  # noqa: BLE001
                ref, why = None, f"SimpleITK: {str(e).strip().splitlines()[-1][:120]}"
        if r.returncode == 1:
            reason = r.stderr.strip().splitlines()[-1]
            print(f"skip {name}: axial: {reason[:200]}" + (f" | SimpleITK reads it: {ref['shape']}" if ref else f" | {why}"))
            continue
        series = json.loads(r.stdout)["series"]
        if ref is None:
            print(f"note {name}: axial reads {[s['shape'] for s in series]}, {why}"); continue
        s = series[0]
        bad = []
        if s["shape"] != ref["shape"]: bad.append(f"shape {s['shape']} vs {ref['shape']}")
        for k in ("spacing", "origin", "direction"):
            if not close(s[k], ref[k], 1e-4): bad.append(f"{k} {s[k]} vs {ref[k]}")
        if not (abs(s["hu_mean"] - ref["mean"]) <= 1e-3 * max(1.0, abs(ref["mean"]))):
            bad.append(f"mean {s['hu_mean']} vs {ref['mean']}")
        if len(series) != 1: bad.append(f"{len(series)} series")
        if is_nifti and not bad:
            problem = nifti_voxels_via_ingest(a.axial, f, ref, a.work, a.timeout)
            if problem: bad.append(problem)
        if bad:
            print(f"FAIL {name}: " + "; ".join(bad)); failures += 1
        else:
            print(f"ok   {name}: {s['shape']} mean {s['hu_mean']:.6g}" + (f" warnings {s['warnings']}" if s["warnings"] else ""))
    out = os.path.join(a.work, "ingest")
    try:
        r = subprocess.run([a.axial, "ingest", mixed, "--out", out, "--windows", "abdomen"], capture_output=True, text=True,
                           timeout=20 * a.timeout)
        if r.returncode != 0:
            print(f"FAIL ingest (mixed folder): exit {r.returncode}: {r.stderr[-500:]!r}"); failures += 1
        else:
            with open(os.path.join(out, "ingest_errors.csv")) as fh:
                rows = list(csv.DictReader(fh))
            unclear = [row for row in rows if not row.get("reason", "").strip()]
            print(f"ok   ingest (mixed folder): {len(rows)} files/series in ingest_errors.csv" if not unclear else
                  f"FAIL ingest: {len(unclear)} rows without a reason")
            failures += bool(unclear)
    except subprocess.TimeoutExpired:
        print("FAIL ingest (mixed folder) hung"); failures += 1
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

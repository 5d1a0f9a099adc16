"""Peers for Tools/bench/run, timed in-process like `axial bench`: 1 warm-up + median of N.
Prints one JSON object {"peer", "median_ms", "runs_ms", "rss_mb", "detail"}.

The workload code is copied from ../shared/peers/ingest.py (without its torch import, so the
peers' RSS is their own). Usage: python peers.py <peer> <dicom-folder> [scratch-folder]
  pydicom   read + sort by position + stack + HU float32
  sitk      SimpleITK ImageSeriesReader (+GetArrayFromImage)
  dcm2niix  `dcm2niix -z n` (uncompressed .nii) into the scratch folder
"""
import glob, json, os, resource, shutil, subprocess, sys, time
import numpy as np

ITERS = int(os.environ.get("BENCH_ITERS", "3"))
peer, SRC = sys.argv[1], sys.argv[2]
SCRATCH = sys.argv[3] if len(sys.argv) > 3 else "/tmp/axial-bench-peer"


def pydicom_load():
    import pydicom
    dss = [pydicom.dcmread(f) for f in glob.glob(os.path.join(SRC, "*.dcm"))]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
    vol = np.stack([d.pixel_array for d in dss])
    slope, icpt = float(dss[0].RescaleSlope), float(dss[0].RescaleIntercept)
    return vol.astype(np.float32) * slope + icpt


def sitk_load():
    import SimpleITK as sitk
    r = sitk.ImageSeriesReader()
    r.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(SRC))
    return sitk.GetArrayFromImage(r.Execute())


def dcm2niix():
    shutil.rmtree(SCRATCH, ignore_errors=True); os.makedirs(SCRATCH)
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "vol", "-o", SCRATCH, SRC],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


fn = {"pydicom": pydicom_load, "sitk": sitk_load, "dcm2niix": dcm2niix}[peer]
out = fn()
detail = f"shape {list(out.shape)} mean {float(out.mean()):.4f}" if out is not None else ""
runs = []
for _ in range(ITERS):
    t0 = time.perf_counter(); fn(); runs.append((time.perf_counter() - t0) * 1e3)
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
rss = (child_kb if peer == "dcm2niix" else self_kb) / 1024
print(json.dumps({"peer": peer, "median_ms": sorted(runs)[len(runs) // 2], "runs_ms": runs,
                  "rss_mb": rss, "detail": detail}))

"""Extraction peer for Tools/bench/run (workload extract-vit-b16): what `axial extract --encoder
vit_base` does, written the usual PyTorch way, on the same ingest folder and weights file:

  load timm vit_base_patch16_224 (num_classes=0) + the .safetensors weights (strict), sha256 of the
  weights; per patient (manifest.csv order → slice, window order), batches of 32: PIL open →
  convert("RGB") → Resize(248, bicubic) → CenterCrop(224) → ToTensor → Normalize(0.5, 0.5)
  (timm's pretrained_cfg for vit_base_patch16_224.augreg2_in21k_ft_in1k: crop_pct 0.9, bicubic,
  inception mean/std), forward_head(forward_features(x), pre_logits=True) under inference_mode;
  one <patient>.h5 per patient with h5py (feats, slice_index, z_mm, window + attributes), written
  to a temporary name and renamed.

1 warm-up + median of BENCH_ITERS (each run starts from an empty output folder; removing it is
not timed). Prints one JSON line: median_ms, runs_ms, rss_mb, img_per_s, and the time split of the
last run (load / decode+preprocess / forward / write).
Usage: python peers_extract.py <threads> <ingest-dir> <weights.safetensors> <out-dir> [batch]"""
import csv, hashlib, json, os, resource, shutil, sys, time
import h5py, numpy as np, torch, timm
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms as T

threads, ingest, weights, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 32
torch.set_num_threads(threads)
pre = T.Compose([T.Resize(int(224 / 0.9), interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                 T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])


def run():
    split = dict(load=0.0, preprocess=0.0, forward=0.0, write=0.0)
    t = time.perf_counter()
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).eval()
    model.load_state_dict(load_file(weights), strict=True)
    with open(weights, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(ingest, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    windows = list(dict.fromkeys(r["window"] for r in rows))
    patients = {}
    for r in rows:
        patients.setdefault(r["patient_id"], []).append(r)
    os.makedirs(out, exist_ok=True)
    split["load"] += time.perf_counter() - t
    images = 0
    for p in sorted(patients):
        rs = sorted(patients[p], key=lambda r: (int(r["slice_index"]), windows.index(r["window"])))
        feats = []
        for i in range(0, len(rs), batch):
            t = time.perf_counter()
            x = torch.stack([pre(Image.open(os.path.join(ingest, r["path"])).convert("RGB")) for r in rs[i:i + batch]])
            t1 = time.perf_counter()
            with torch.inference_mode():
                feats.append(model.forward_head(model.forward_features(x), pre_logits=True).numpy())
            t2 = time.perf_counter()
            split["preprocess"] += t1 - t; split["forward"] += t2 - t1
        t = time.perf_counter()
        final = os.path.join(out, f"{p}.h5"); tmp = final + ".tmp"
        with h5py.File(tmp, "w") as h:
            h.create_dataset("feats", data=np.concatenate(feats).astype(np.float32))
            h.create_dataset("slice_index", data=np.array([int(r["slice_index"]) for r in rs], np.int32))
            h.create_dataset("z_mm", data=np.array([float(r["z_mm"]) for r in rs], np.float32))
            h.create_dataset("window", data=np.array([windows.index(r["window"]) for r in rs], np.int32))
            h.attrs.update(encoder="vit_base", encoder_sha256=sha, windows=json.dumps(windows), patient_id=p,
                           study_uid=rs[0]["study_uid"], series_uid=rs[0]["series_uid"], feat_dim=768,
                           preprocessing=json.dumps(dict(resize=248, crop=224, interpolation="bicubic")))
        os.replace(tmp, final)
        split["write"] += time.perf_counter() - t
        images += len(rs)
    return images, split


def clean():
    shutil.rmtree(out, ignore_errors=True)


clean(); run()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    clean()
    t0 = time.perf_counter(); images, split = run(); runs.append((time.perf_counter() - t0) * 1e3)
med = sorted(runs)[len(runs) // 2]
print(json.dumps(dict(peer=f"timm-{threads}", median_ms=med, runs_ms=runs, img_per_s=images * 1e3 / med,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      split_s={k: round(v, 3) for k, v in split.items()},
                      detail=f"timm {timm.__version__} torch {torch.__version__} threads={threads} batch={batch} images={images}")))

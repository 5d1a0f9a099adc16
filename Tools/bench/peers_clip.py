"""CLIP peer for Tools/bench/run: ../shared/peers/clip_enc.py's open_clip ViT-B-16 (random init, eval,
inference_mode, fp32), timed like `axial bench`: 1 warm-up + median of BENCH_ITERS. Prints one JSON object.
Usage: python peers_clip.py text|image|image-rn50 <threads> [batch]
  text        encode_text of the 14 "a CT slice showing the <organ>" prompts, [14, 77] ids (workload c)
  image       visual(x) of `batch` (32) random 224×224 images (workload a)
  image-rn50  the same through open_clip's RN50 visual (ModifiedResNet, eval BatchNorm) → [batch, 1024]"""
import json, os, resource, sys, time
import torch, open_clip

which, threads = sys.argv[1], int(sys.argv[2])
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 32
rn50 = which == "image-rn50"
torch.set_num_threads(threads); torch.manual_seed(0)
clip = open_clip.create_model("RN50" if rn50 else "ViT-B-16", pretrained=None).eval()
if which == "text":
    organs = ["liver", "spleen", "kidney", "pancreas", "lung", "heart", "aorta", "bladder",
              "stomach", "gallbladder", "colon", "bone", "brain", "prostate"]
    ids = open_clip.get_tokenizer("ViT-B-16")([f"a CT slice showing the {o}" for o in organs])
    fn, shape, detail = (lambda: clip.encode_text(ids)), (len(organs), 512), f"{len(organs)} prompts, ids {list(ids.shape)}"
else:
    del clip.transformer, clip.token_embedding  # image tower only (RSS)
    x = torch.randn(batch, 3, 224, 224)
    fn, shape, detail = (lambda: clip.visual(x)), (batch, 1024 if rn50 else 512), f"{which} batch {batch} at 224"
def run():
    with torch.inference_mode():
        y = fn()
    assert tuple(y.shape) == shape
run()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); run(); runs.append((time.perf_counter() - t0) * 1e3)
print(json.dumps(dict(peer=f"open_clip{'-rn50' if rn50 else ''}-{threads}", median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"open_clip {open_clip.__version__} torch {torch.__version__} threads={threads} {detail}")))

"""ViT peer for Tools/bench/run: timm vit_base_patch16_224 (random init, num_classes=0, eval,
inference_mode) forward of 32 random 224×224 images — the same feature as Axial's `encode`
(forward_head(pre_logits=True)); torch at a given thread count; 1 warm-up + median of BENCH_ITERS.
Usage: python peers_vit.py <threads> [batch]"""
import json, os, resource, sys, time
import torch, timm

threads = int(sys.argv[1]); batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
torch.set_num_threads(threads); torch.manual_seed(0)
model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).eval()
x = torch.randn(batch, 3, 224, 224)
def run():
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (batch, 768)
run()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); run(); runs.append((time.perf_counter() - t0) * 1e3)
med = sorted(runs)[len(runs) // 2]
print(json.dumps(dict(peer=f"timm-{threads}", median_ms=med, runs_ms=runs, img_per_s=batch * 1e3 / med,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"timm {timm.__version__} torch {torch.__version__} threads={threads} batch={batch}")))

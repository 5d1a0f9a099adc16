"""PyTorch peers for Tools/bench/run (engine workloads), timed in-process like `axial bench`:
1 warm-up + median of BENCH_ITERS. Prints one JSON object {"peer", "median_ms", "runs_ms", "rss_mb", "detail"}.

Modelled on ../shared/peers/gemm.py and moco.py (torch at BENCH_THREADS=2 threads, fp32).
Usage: python peers_torch.py <peer>
  torch-mm-4096   torch.mm 4096×4096 @ 4096×4096 (out= preallocated)
  torch-mm-6304   torch.mm 6304×768 @ 768×3072
  timm-vit-s16    timm vit_small_patch16_224 (num_classes=0), batch BENCH_BATCH (64) at 224:
                  forward, loss = mean(features²), backward, AdamW step
"""
import json, os, resource, sys, time
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("BENCH_THREADS", "2"))
import torch

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
ITERS = int(os.environ.get("BENCH_ITERS", "3"))
torch.set_num_threads(THREADS)
torch.manual_seed(0)
peer = sys.argv[1]


def gemm(m, k, n):
    a, b = torch.rand(m, k), torch.rand(k, n)
    out = torch.empty(m, n)
    return (lambda: torch.mm(a, b, out=out)), f"torch.mm {m}x{k}@{k}x{n}"


def vit():
    import timm
    batch = int(os.environ.get("BENCH_BATCH", "64"))
    model = timm.create_model("vit_small_patch16_224", num_classes=0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.randn(batch, 3, 224, 224)

    def step():
        f = model(x)
        loss = (f * f).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step, f"timm {timm.__version__} vit_small_patch16_224 batch {batch} fp32"


fn, detail = {"torch-mm-4096": lambda: gemm(4096, 4096, 4096), "torch-mm-6304": lambda: gemm(6304, 768, 3072),
              "timm-vit-s16": vit}[peer]()
fn()
runs = []
for _ in range(ITERS):
    t0 = time.perf_counter(); fn(); runs.append((time.perf_counter() - t0) * 1e3)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peer": peer, "median_ms": sorted(runs)[len(runs) // 2], "runs_ms": runs, "rss_mb": rss,
                  "detail": f"{detail}; torch {torch.__version__} threads {torch.get_num_threads()}"}))

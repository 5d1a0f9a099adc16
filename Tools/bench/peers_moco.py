"""Peer for the moco-vit-s16 workload: ../shared/peers/moco.py's MoCo v3 ViT-S/16 step (timm
vit_small_patch16_224, projector 384-4096-4096-256, predictor 256-4096-256, m 0.99, T 0.2, AdamW),
timed like `axial bench` (1 warm-up + median of BENCH_ITERS). Usage: peers_moco.py <threads> [batch] [size]
Prints one JSON object {"peer", "median_ms", "runs_ms", "rss_mb", "detail"}."""
import json, os, resource, sys, time
threads = int(sys.argv[1]); B = int(sys.argv[2]) if len(sys.argv) > 2 else 32; img = int(sys.argv[3]) if len(sys.argv) > 3 else 224
os.environ["BENCH_THREADS"] = str(threads)
sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "peers")))
import torch
from moco import build, ctr   # sets torch threads from BENCH_THREADS
torch.set_num_threads(threads)
base, pred, mom = build(img)
base.train(); pred.train(); mom.train()
opt = torch.optim.AdamW(list(base.parameters()) + list(pred.parameters()), lr=1.5e-4, weight_decay=0.1)
x1, x2 = torch.randn(B, 3, img, img), torch.randn(B, 3, img, img)
def step():
    q1, q2 = pred(base(x1)), pred(base(x2))
    with torch.no_grad():
        for pb, pm in zip(base.parameters(), mom.parameters()):
            pm.mul_(0.99).add_(pb.detach(), alpha=0.01)
        k1, k2 = mom(x1), mom(x2)
    loss = ctr(q1, k2) + ctr(q2, k1)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return loss.item()
first = step()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); step(); runs.append((time.perf_counter() - t0) * 1e3)
med = sorted(runs)[len(runs) // 2]
print(json.dumps({"peer": f"torch-{threads}", "median_ms": med, "runs_ms": runs,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "detail": f"2x{B}@{img} first loss {first:.4f} images/s {2 * B / med * 1e3:.2f} torch {torch.__version__}"}))

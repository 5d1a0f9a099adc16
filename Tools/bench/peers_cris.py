"""CRIS peer for Tools/bench/run: the torch re-statement of medvlsm's CRIS in
Tools/goldens/make_cris_goldens.py at full size (RN50, FPN, 3 decoder layers, random init, train mode,
dropout 0.2, everything trainable but logit_scale), one training step: forward at 416², DiceCE λ 1.0 / 0.2
on the logits, backward, AdamW (lr 2e-5, wd 1e-3). Timed like `axial bench`: 1 warm-up + median of BENCH_ITERS.
Usage: python peers_cris.py <threads> [batch] [size]"""
import json, os, resource, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "goldens"))
from make_cris_goldens import CRIS, FULL, dice_ce  # noqa: E402

threads = int(sys.argv[1])
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 4
size = int(sys.argv[3]) if len(sys.argv) > 3 else 416
torch.set_num_threads(threads); torch.manual_seed(0)
cfg = dict(FULL, input=size)
m = CRIS(cfg).train()
m.backbone.logit_scale.requires_grad_(False)
opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-5, weight_decay=1e-3)
px = torch.randn(batch, 3, size, size)
ids = torch.zeros(batch, 77, dtype=torch.long)
ids[:, 0] = 49406; ids[:, 1:15] = torch.randint(1000, 41000, (batch, 14)); ids[:, 15] = 49407
rows = torch.arange(size)[None, :, None].expand(batch, size, size)
target = (rows < size // 2).float()


def step():
    opt.zero_grad()
    loss = dice_ce(m(px, ids), target)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


step()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); step(); runs.append((time.perf_counter() - t0) * 1e3)
print(json.dumps(dict(peer=f"torch-cris-{threads}", median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"torch {torch.__version__} threads={threads} batch {batch} at {size}")))

"""MIL peer for Tools/bench/run: ../shared/peers/mil.py's ABMIL / PMA, 100 train steps on 300×768
bags, torch at a given thread count; 1 warm-up + median of BENCH_ITERS. Prints one JSON object.
Usage: python peers_mil.py abmil|pma <threads>"""
import json, os, resource, sys, time
sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/peers")))
os.environ.setdefault("BENCH_RESULTS", "/tmp/peers-results.jsonl")
import torch, torch.nn.functional as F
from mil import ABMIL, PMA

which, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads); torch.manual_seed(0)
model = ABMIL() if which == "abmil" else PMA()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
steps = 100
bags = torch.randn(steps, 300, 768); ys = torch.randint(0, 2, (steps, 1))
def epoch():
    for i in range(steps):
        loss = F.cross_entropy(model(bags[i]), ys[i])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
epoch()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); epoch(); runs.append((time.perf_counter() - t0) * 1e3)
print(json.dumps(dict(peer=f"torch-{threads}", median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, detail=f"{which} threads={threads}")))

"""PsPG peer for Tools/bench/run (workload pspg-train-b64): one training step of PsPG on RN50
dense-token input, with the committed PyTorch reference of the generator, fusion and losses
(Tools/goldens/make_pspg_goldens.py, imported; float32 here) at bench sizes:

    batch 64 × 50 tokens × 1024 (random stand-ins for RN50 encodeDense output), 4 classes,
    GRU decoders hidden 512, 16 steps, 8 heads, dropout 0.2, token width 512,
    frozen text tower: width 512, 8 heads, 2 blocks (RN50 CLIP has 12: cut to fit 2 cores), vocab 64,
    prompts [SOS] + 16 + [EOS] at context 77 (the reference's full context) or 18 (`trim`: what Axial runs),
    LossRanking (0.1·ASL + 0.07·margin), SGD Nesterov (lr 0.002, momentum 0.9, wd 1e-4, reference groups).

1 warm-up + median of BENCH_ITERS steps. Prints one JSON object.
Usage: python peers_pspg.py <threads> [full|trim]"""
import json, os, resource, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../goldens"))
import torch
import make_pspg_goldens as ref

threads = int(sys.argv[1]); mode = sys.argv[2] if len(sys.argv) > 2 else "full"
torch.set_num_threads(threads)
torch.set_default_dtype(torch.float32)          # the goldens script computes in double; the bench in float32
B, N, DIN, C, W = 64, 50, 1024, 4, 512
ref.EMBED, ref.TEXT_W, ref.VOCAB, ref.SOT, ref.EOT, ref.X, ref.PERIOD = DIN, W, 64, 62, 63, 7, 5
ref.CFG = dict(hidden=512, heads=8, steps=16, layers=2, dropout=0.2, drop_path=0.0)
ref.CTX = 77 if mode == "full" else 1 + 16 + 1
torch.manual_seed(0)
clip = ref.TextTower(DIN, ref.CTX, ref.VOCAB, W, heads=8, layers=2)
clip.eval()
for p in clip.parameters():
    p.requires_grad_(False)
names = [[11], [12, 13], [14], [15, 16]]
with torch.no_grad():
    cls = ref.text_encoder(clip, ref.pad([[ref.SOT] + n + [ref.EOT] for n in names]))
model = ref.PsPG("gru")
model.train()
decay, no_decay = [], []
for n, p in model.named_parameters():
    (no_decay if p.dim() <= 1 or n.endswith(".bias") or n == "logit_scale" else decay).append(p)
opt = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.002, momentum=0.9,
                      nesterov=True, dampening=0, weight_decay=1e-4)
tokens = torch.randn(B, N, DIN)
targets = (torch.rand(B, C) < 0.4).float()


def step():
    opt.zero_grad(set_to_none=True)
    res, _ = ref.forward(clip, model, cls, tokens, names, False, False, "weighted")
    loss = ref.loss_ranking(res["logits"], targets)
    loss.backward()
    opt.step()
    return loss.item()


step()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); step(); runs.append((time.perf_counter() - t0) * 1e3)
params = sum(p.numel() for p in model.parameters())
print(json.dumps(dict(peer=f"torch-{threads}-{mode}", median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"pspg gru step B={B} N={N} C={C} ctx={ref.CTX} threads={threads} params={params}")))

"""MVFA / MLA-LP anomaly peer for Tools/bench/run (issue 12): the torch reference of
Tools/goldens/make_anomaly_goldens.py (the module Axial's goldens are checked against: adapters,
learned CoOp prompts, maps, focal + dice + BCE-on-logits loss, Adam β (0.5, 0.999)) imported and
run at full size on open_clip's CLIP ViT-L/14 at 240² (24 × 1024, head width 64, patch 14 → 17²
grid, QuickGELU, text 12 × 768, embed 768 = the adapter bottleneck, adapters after blocks
6/12/18/24), random init. Timed like `axial bench`: 1 warm-up + median of BENCH_ITERS. Prints one
JSON object.
Usage: python peers_anomaly.py train|infer <threads> [batch] [trim]
  train  one training step: adapters + learned prompts forward (text tower over the 10 + 11
         prompts at context 77, as mla-pl), focal + dice on the seg maps at 240² (half the images
         carry a square lesion mask), BCE on the det logits, backward, Adam step of both groups
  infer  zero-shot inference under inference_mode: the adapted tower, the 240² anomaly map and the
         det score; the text embeddings are computed once before timing (MVFA's test loop)
  trim   (train only) the text tower runs over the first max(EOT)+1 positions instead of 77, as Axial
         does: the same numbers (the text mask is causal, EOT pooling reads no later position), so
         the ratio against this peer is the one of equal work"""
import importlib.util, json, os, resource, sys, time
import torch

which, threads = sys.argv[1], int(sys.argv[2])
B = int(sys.argv[3]) if len(sys.argv) > 3 else 8
trim = len(sys.argv) > 4 and sys.argv[4] == "trim"
torch.set_num_threads(threads)

spec = importlib.util.spec_from_file_location(
    "anomaly_reference", os.path.join(os.path.dirname(__file__), "../goldens/make_anomaly_goldens.py"))
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)           # builds the golden's tiny CLIP (cheap); main() is not run

torch.manual_seed(0)
R.CFG = dict(embed_dim=768, quick_gelu=True,
             vision=dict(layers=24, width=1024, head_width=64, patch_size=14, image_size=240, mlp_ratio=4.0),
             text=dict(context_length=77, vocab_size=49408, width=768, heads=12, layers=12))
R.LEVELS, R.BOTTLENECK, R.IMG = [6, 12, 18, 24], 768, 240
R.clip = R.CLIP(R.CFG["embed_dim"], R.CLIPVisionCfg(**R.CFG["vision"]), R.CLIPTextCfg(**R.CFG["text"]), quick_gelu=True).eval()
if which == "infer":
    del R.clip.transformer, R.clip.token_embedding    # text embeddings are made once, below (RSS: image tower only)
for p in R.clip.parameters():
    p.requires_grad_(False)
R.ids = [None, None] + [R.tokenize(s) for s in R.prompt_sentences]     # full BPE vocabulary: no compaction
adapters = R.Adapters()
S = R.IMG
images = torch.randn(B, 3, S, S)
if which == "train":
    prompts = R.PromptLearner()
    if trim:
        L = 1 + max(int(t.argmax(dim=-1).max()) for t in R.ids[2:4])
        R.ids = [None, None] + [t[:, :L] for t in R.ids[2:4]]
        full_pos, full_mask = R.clip.positional_embedding, R.clip.attn_mask
        R.clip.positional_embedding = torch.nn.Parameter(full_pos[:L].clone(), requires_grad=False)
        R.clip.attn_mask = full_mask[:L, :L].clone()
    masks = torch.zeros(B, S, S)
    masks[::2, 60:140, 80:170] = 1
    labels = torch.tensor([1.0 if b % 2 == 0 else 0.0 for b in range(B)])
    opt = torch.optim.Adam([{"params": list(adapters.parameters()), "lr": 1e-4},
                            {"params": list(prompts.parameters()), "lr": 1e-3}], betas=(0.5, 0.999))

    def run():
        opt.zero_grad()
        seg, det = adapters(images)
        loss, _, _ = R.loss_fn(seg, det, prompts(), masks, labels)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    ctx = f"text over {L} positions (trimmed as Axial)" if trim else "text ctx 77"
    detail = f"train step batch {B} at {S}: adapters + learned prompts ({ctx}), focal + dice + BCE, Adam"
else:
    text = torch.nn.functional.normalize(torch.randn(768, 2), dim=0)   # stands for the once-computed prompt embeddings

    def run():
        with torch.inference_mode():
            seg, det = adapters(images)
            m, s = R.seg_map(seg, text), sum(R.det_level_scores(det, text))
        assert tuple(m.shape) == (B, S, S) and tuple(s.shape) == (B,) and torch.isfinite(m).all()
    detail = f"zero-shot inference batch {B} at {S}: adapted tower, map {S}², det score"
run()
runs = []
for _ in range(int(os.environ.get("BENCH_ITERS", "3"))):
    t0 = time.perf_counter(); run(); runs.append((time.perf_counter() - t0) * 1e3)
print(json.dumps(dict(peer=f"torch-{threads}" + ("-trim" if trim else ""), median_ms=sorted(runs)[len(runs) // 2], runs_ms=runs,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      detail=f"torch {torch.__version__} threads={threads} open_clip ViT-L/14@240 random init; {detail}")))

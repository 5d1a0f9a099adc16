# ViT-S/16 forward + backward + AdamW, batch 64 at 224, vs timm vit_small_patch16_224 fp32 at 2 threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" vit-s16-train-b64; }
peers="timm-vit-s16"
peer_run() { BENCH_THREADS=2 "$PY" "$BENCH_DIR/peers_torch.py" "$1"; }

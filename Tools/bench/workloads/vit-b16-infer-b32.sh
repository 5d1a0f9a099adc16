# ViT-B/16 forward (feature = class token after norm), batch 32 at 224, random init, no tape;
# peers: timm vit_base_patch16_224 (num_classes=0, inference_mode) at 1 and 2 torch threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" vit-b16-infer-b32; }
peers="timm-1 timm-2"
peer_run() { "$PY" "$BENCH_DIR/peers_vit.py" "${1#timm-}"; }

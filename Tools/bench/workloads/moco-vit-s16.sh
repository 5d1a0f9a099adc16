# One MoCo v3 ViT-S/16 training step at 224, 2 views × 32 (../shared/peers/moco.py); peer: torch fp32, 2 threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" moco-vit-s16 32 224; }
peers="torch-2"
peer_run() { PEERS_DIR="$PEERS_DIR" "$PY" "$BENCH_DIR/peers_moco.py" "${1#torch-}" 32 224; }

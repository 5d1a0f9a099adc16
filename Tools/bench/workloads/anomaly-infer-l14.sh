# MVFA / MLA-LP zero-shot inference on the frozen CLIP ViT-L/14 at 240² (random init), batch 8 (issue 12):
# the adapted tower, the 240² anomaly map and the det score, text embeddings made once; peer:
# Tools/bench/peers_anomaly.py infer at 2 torch threads. `ANOMALY_BATCH=1` for batch 1.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" anomaly-infer-l14 "${ANOMALY_BATCH:-8}"; }
peers="torch-2"
peer_run() { "$PY" "$BENCH_DIR/peers_anomaly.py" infer "${1#torch-}" "${ANOMALY_BATCH:-8}"; }

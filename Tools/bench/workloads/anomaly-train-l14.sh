# One MVFA / MLA-LP training step on the frozen CLIP ViT-L/14 at 240² (random init), batch 8 (issue 12):
# adapters after 6/12/18/24 + learned prompts, focal + dice + BCE, backward, Adam (0.5, 0.999); peer: the
# torch reference of Tools/goldens/make_anomaly_goldens.py at full size (Tools/bench/peers_anomaly.py) at
# 2 torch threads. `ANOMALY_BATCH=1` for batch 1.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" anomaly-train-l14 "${ANOMALY_BATCH:-8}"; }
peers="torch-2"
peer_run() { "$PY" "$BENCH_DIR/peers_anomaly.py" train "${1#torch-}" "${ANOMALY_BATCH:-8}"; }

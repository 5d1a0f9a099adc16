# One MVFA / MLA-LP training step on the frozen CLIP ViT-L/14 at 240² (random init), batch 8 (issue 12):
# adapters after 6/12/18/24 + learned prompts, focal + dice + BCE, backward, Adam (0.5, 0.999); peer: the
# torch reference of Tools/goldens/make_anomaly_goldens.py at full size (Tools/bench/peers_anomaly.py) at
# 2 torch threads, with the text tower at context 77 as mla-pl runs it (torch-2) and trimmed to the
# last EOT as Axial runs it (torch-2-trim: same numbers, equal work). `ANOMALY_BATCH=1` for batch 1.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" anomaly-train-l14 "${ANOMALY_BATCH:-8}"; }
peers="torch-2 torch-2-trim"
peer_run() {
  case "$1" in
    torch-2) "$PY" "$BENCH_DIR/peers_anomaly.py" train 2 "${ANOMALY_BATCH:-8}" ;;
    torch-2-trim) "$PY" "$BENCH_DIR/peers_anomaly.py" train 2 "${ANOMALY_BATCH:-8}" trim ;;
  esac
}

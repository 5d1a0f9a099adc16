# 100 train steps of abmil (peers/mil.py sizes) on 300×768 bags; peers: torch at 1 and 2 threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" abmil-train; }
peers="torch-1 torch-2"
peer_run() { "$PY" "$BENCH_DIR/peers_mil.py" abmil "${1#torch-}"; }

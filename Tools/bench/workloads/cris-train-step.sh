# CRIS (medvlsm's: RN50 + FPN + 3-layer decoder, 416², random init, all trainable, train mode) forward +
# DiceCE + backward + AdamW, batch 4; peer: the torch re-statement of Tools/goldens/make_cris_goldens.py
# (Tools/bench/peers_cris.py) at 2 torch threads. Axial trims the prompt padding after the last EOT (exact:
# causal text mask, padded words masked in the cross-attention); the peer runs all 77 positions.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" cris-train-step; }
peers="torch-cris-2"
peer_run() { "$PY" "$BENCH_DIR/peers_cris.py" "${1#torch-cris-}"; }

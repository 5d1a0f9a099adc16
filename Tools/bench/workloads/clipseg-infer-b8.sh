# CLIPSeg rd64-refined (random init) inference, batch 8 at 352², one 77-token prompt per image (11 real tokens,
# masked padding), as ../shared/peers/clipseg.py (g); peer: transformers CLIPSegForImageSegmentation at 2 torch
# threads (Tools/bench/peers_clipseg.py infer). Axial runs the vision tower up to the last tap (10 of 12 layers)
# and the text tower up to the EOT (11 of 77 positions) — both exact; transformers runs all of them.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" clipseg-infer-b8; }
peers="transformers-2"
peer_run() { "$PY" "$BENCH_DIR/peers_clipseg.py" infer "${1#transformers-}"; }

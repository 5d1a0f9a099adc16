# One VLSM-Adapter dense-adapter training step (dim 64, VLC, CLIPSeg rd64-refined frozen, random init), batch 8
# at 352²: forward, DiceCE λ 1.5 / 1.0, backward, AdamW over the 3,237,376 adapter parameters; peer: the same
# module on transformers' CLIPSeg (Tools/bench/peers_clipseg.py dense = the reference of
# Tools/goldens/make_clipseg_goldens.py) at 2 torch threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" clipseg-dense-train-b8; }
peers="transformers-2"
peer_run() { "$PY" "$BENCH_DIR/peers_clipseg.py" dense "${1#transformers-}"; }

# CLIP RN50 image tower (OpenAI's modified ResNet-50: 3-conv stem, anti-aliased bottlenecks, attention
# pool; random init, eval BatchNorm, no tape), batch 32 at 224 — issue 18's conv2d 3×3 workload; peer:
# open_clip's RN50 visual at 2 torch threads (Tools/bench/peers_clip.py image-rn50).
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" clip-rn50-image-b32; }
peers="open_clip-rn50-2"
peer_run() { "$PY" "$BENCH_DIR/peers_clip.py" image-rn50 "${1#open_clip-rn50-}"; }

# CLIP ViT-B/16 image tower (open_clip ViT-B-16 visual, GELU, random init, no tape), batch 32 at 224,
# as ../shared/peers/clip_enc.py (a); peer: open_clip visual at 2 torch threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" clip-image-b16; }
peers="open_clip-2"
peer_run() { "$PY" "$BENCH_DIR/peers_clip.py" image "${1#open_clip-}"; }

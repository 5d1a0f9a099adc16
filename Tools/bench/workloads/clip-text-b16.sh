# CLIP ViT-B/16 text tower (12 layers, width 512, GELU, random init, no tape) on the 14 prompts of
# ../shared/peers/clip_enc.py (c); peer: open_clip encode_text at 2 torch threads. Axial trims the
# padding after the batch's last end token (same result under the causal mask); open_clip runs all 77
# positions. `axial bench clip-text-b16 full` runs all 77 positions too.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" clip-text-b16; }
peers="open_clip-2"
peer_run() { "$PY" "$BENCH_DIR/peers_clip.py" text "${1#open_clip-}"; }

# One PsPG training step on RN50 dense-token input (batch 64 × 50 × 1024, 4 classes, GRU decoders 512 × 16 steps,
# text tower 2 × 512; Sources/axial-dev/PsPGBench.swift); peers: the committed torch reference of the generator,
# fusion and losses (Tools/goldens/make_pspg_goldens.py via Tools/bench/peers_pspg.py) at 2 threads, with the
# prompts at the reference's full context 77 (torch-2-full) and trimmed to the 18 positions Axial runs (torch-2-trim).
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" pspg-train-b64; }
peers="torch-2-full torch-2-trim"
peer_run() { local m="${1#torch-2-}"; "$PY" "$BENCH_DIR/peers_pspg.py" 2 "$m"; }

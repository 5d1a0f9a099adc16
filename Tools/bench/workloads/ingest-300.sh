# Ingest the same series to 8-bit PNGs for two windows (abdomen, lung; 600 images) — versus
# dcm2niix converting it to an uncompressed NIfTI (`-z n`).
prepare() { make_ct_series; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" ingest-300 "$CT_SERIES" "$SCRATCH/axial-ingest"; }
peers="dcm2niix"
peer_run() { PATH="$(dirname "$PY"):$PATH" "$PY" "$BENCH_DIR/peers.py" "$1" "$CT_SERIES" "$SCRATCH/dcm2niix"; }

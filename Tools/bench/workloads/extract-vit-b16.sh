# `axial extract --encoder vit_base` (224, batch 32) on an ingest folder of 2 patients × EXTRACT_SLICES
# (default 32) slices × 2 windows = 128 PNGs (512², synthetic CT), weights from a random-init
# vit_base.safetensors — against peers_extract.py (PIL + torchvision transforms + timm forward +
# h5py) on the same folder and weights, at 1 and 2 torch threads. The Axial run prepares the folder
# and the weights (untimed), so it runs first.
EXTRACT_SLICES="${EXTRACT_SLICES:-32}"
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" extract-vit-b16 "$SCRATCH/extract" 2 "$EXTRACT_SLICES"; }
peers="timm-1 timm-2"
peer_run() { "$PY" "$BENCH_DIR/peers_extract.py" "${1#timm-}" "$SCRATCH/extract/ingest-p2-s$EXTRACT_SLICES" "$SCRATCH/extract/vit_base.safetensors" "$SCRATCH/extract/out-peer"; }

#!/usr/bin/env bash
# LeCL evidence experiment (issue 7 item 6): synthetic lesion / normal slice cohort → pretrain a tiny
# ViT (vit_test) with MoCo v3 (random views), MoCo v3 + lesion views (w = 0) and LeCL (w > 0) at equal
# steps → logistic-regression probe on frozen features (train/test split by patient), compared with
# the encoder at initialisation. Release build. Extra arguments go to `axial-dev pretrain-probe`
# (e.g. --steps 500 --seed 1). Results: Tools/bench/README.md "LeCL probe".
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${PROBE_OUT:-/tmp/axial-lecl-probe}"
swift build -c release --product axial-dev >&2
.build/release/axial-dev pretrain-probe --out "$OUT" "$@"

#!/usr/bin/env bash
# Real-size encoders with fresh random weights vs their source libraries (timm, open_clip):
# Tools/check_encoders.py writes each model's state dict (.safetensors, the library's own names), a
# random image batch and the reference features; `axial-dev check-encoder` loads each file
# exactly as `axial extract --encoder NAME --weights FILE` does and compares (max|Δ|/max|ref| ≤ 1e-4;
# CLIP / BiomedCLIP text towers through ClassNameEncoder too). Weights are large (~2 GB in all):
# they go to $AXIAL_CHECK_DIR (default /tmp/axial_encoder_check), never into the repository.
#   Tools/check_encoders.sh [--models vit_small,clip_b16,...] [--perturb]
# Needs a python with torch, timm, open_clip, transformers, safetensors ($AXIAL_PYTHON, else
# /tmp/venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${AXIAL_PYTHON:-$( [ -x /tmp/venv/bin/python ] && echo /tmp/venv/bin/python || echo python3 )}
out=${AXIAL_CHECK_DIR:-/tmp/axial_encoder_check}
swift build -c release --product axial-dev >&2
axial=$(swift build -c release --show-bin-path)/axial-dev
"$py" Tools/check_encoders.py --out "$out" "$@" >&2
status=0
while read -r name encoder weights reference text vocab; do
    "$axial" check-encoder --encoder "$encoder" --weights "$weights" --reference "$reference" \
        ${text:+--text-encoder "$text"} ${vocab:+--text-vocab "$vocab"} || status=1
done < "$out/cases.txt"
exit $status

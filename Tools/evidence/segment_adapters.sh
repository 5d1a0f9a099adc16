#!/usr/bin/env bash
# Tools/evidence/segment_adapters.sh [PYRADIOMICS_SDIST] — the README table "decoder-only vs shallow vs dense
# adapters from the same random backbone": clipseg_test (random init, seed 7: the backbone and decoder are the
# same draws in all three runs — the adapters are drawn after them), trained with `axial segment train`
# (decoder trained in all three; + VLSM shallow (dim 16) or dense (dim 8) VLC adapters), tested with
# `axial segment test` (prompt p1 "tumour") on held-out volumes. AdamW lr 3e-3 for all three, EPOCHS epochs, no early
# stopping (the model kept is the best validation Dice of a seeded 20 % split of the training file):
#   synthetic: 6 synthetic chest CTs (train, seed 1) → 3 others (test, seed 2)  (Tools/evidence/segment_slices.py)
#   real:      pyradiomics 3.1.0 lung2 (train) → lung1 (test), tumour slices, 4 random 192² crops each
# The sdist: PYRADIOMICS_SDIST or $1, else `pip download pyradiomics==3.1.0 --no-deps --no-binary :all:`.
# Env: AXIAL (default .build/release/axial), PY (default Tools/python-env's), EPOCHS (40), WORK (/tmp/axial-segment-evidence).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
AXIAL="${AXIAL:-$ROOT/.build/release/axial}"
PY="${PY:-$("$ROOT/Tools/python-env")}"
EPOCHS="${EPOCHS:-40}"
WORK="${WORK:-/tmp/axial-segment-evidence}"
SDIST="${1:-${PYRADIOMICS_SDIST:-}}"
mkdir -p "$WORK"
if [ -z "$SDIST" ]; then
  "$PY" -m pip download pyradiomics==3.1.0 --no-deps --no-binary :all: -d "$WORK" >&2
  SDIST="$WORK/pyradiomics-3.1.0.tar.gz"
fi
"$PY" "$ROOT/Tools/evidence/segment_slices.py" synthetic 6 "$WORK/syn-train" 1
"$PY" "$ROOT/Tools/evidence/segment_slices.py" synthetic 3 "$WORK/syn-test" 2
"$PY" "$ROOT/Tools/evidence/segment_slices.py" pyradiomics "$SDIST" "$WORK/real"

run() {  # set name  train-dir train-json  test-dir test-json
  local set=$1 trd=$2 trj=$3 ted=$4 tej=$5
  for a in none shallow dense; do
    local out="$WORK/$set-$a" extra=()
    case $a in shallow) extra=(--adapters shallow --adapter-dim 16 --train-decoder);; dense) extra=(--adapters dense --adapter-dim 8 --train-decoder);; esac
    rm -rf "$out"
    "$AXIAL" segment train --model clipseg_test --random-init --seed 7 "${extra[@]}" --prompts "$trd/$trj" --images "$trd/images" \
      --masks "$trd/masks" --out "$out" --epochs "$EPOCHS" --batch-size 8 --lr 3e-3 --patience "$EPOCHS" > "$out.log" 2>&1
    "$AXIAL" segment test --model clipseg_test --weights "$out/model.safetensors" --prompts "$ted/$tej" --images "$ted/images" \
      --masks "$ted/masks" --prompt p1 --out "$out/test" >> "$out.log" 2>&1
    local row; row=$(grep '^(all)' "$out/test/per_class.csv")
    local params; params=$(grep -o '[0-9]* trainable parameters' "$out.log" | head -1 || true)
    echo "$set $a n=$(echo "$row" | cut -d, -f2) dice=$(echo "$row" | cut -d, -f3) [$(echo "$row" | cut -d, -f4), $(echo "$row" | cut -d, -f5)] iou=$(echo "$row" | cut -d, -f6) epochs=$(($(wc -l < "$out/training.csv") - 1)) best_val=$(tail -1 "$out/training.csv" | cut -d, -f5) $params"
  done
  local z="$WORK/$set-untrained"; rm -rf "$z"
  "$AXIAL" segment test --model clipseg_test --random-init --seed 7 --prompts "$ted/$tej" --images "$ted/images" --masks "$ted/masks" \
    --prompt p1 --out "$z" > "$z.log" 2>&1
  echo "$set untrained dice=$(grep '^(all)' "$z/per_class.csv" | cut -d, -f3)"
}
run synthetic "$WORK/syn-train" synthetic.json "$WORK/syn-test" synthetic.json
run real "$WORK/real" lung2.json "$WORK/real" lung1.json

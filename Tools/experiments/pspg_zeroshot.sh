#!/usr/bin/env bash
# PsPG seen / unseen-label AUC (issue 13 item 5): synthetic multi-label cohort (10 seen + 3 unseen classes,
# each a feature direction implanted in 2 slices of its positive patients) → `crossval --head pspg` on the seen
# labels only → `deploy --classes <unseen names>` → AUROC against the unseen classes' true labels, for three
# kinds of class-name embeddings: a random-init text tower (tower), embeddings that encode each class's feature
# direction (aligned), random vectors (random). Release build. Extra arguments go to `axial-dev pspg-zeroshot`
# (e.g. --seed 1 --settings aligned). Results: README "PsPG zero-shot on a synthetic multi-label set".
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${PSPG_ZS_OUT:-/tmp/axial-pspg-zeroshot}"
swift build -c release --product axial-dev >&2
.build/release/axial-dev pspg-zeroshot --out "$OUT" "$@"

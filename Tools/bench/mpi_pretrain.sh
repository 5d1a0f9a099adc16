#!/usr/bin/env bash
# Data-parallel pretraining throughput at 1 and 2 MPI ranks (one compute thread per rank) and the
# gradient all-reduce time per step, on loopback TCP. Prints one line per configuration:
#   mpi-pretrain ranks=N global_batch=B per_rank=b images_per_s=… step_ms=… allreduce_ms=… grad_floats=… buckets=…
# (median over the steps after the first). Settings: ARCH (vit_small_moco), SIZE (64), BATCH per
# rank (8), STEPS (6), DIM 256 / MLP_DIM 4096 (MoCo v3's projector), AXIAL (.build/release/axial).
# Numbers feed PERFORMANCE.md's projection; they need mpirun (openmpi-bin) and python3 with
# numpy + PIL for the synthetic slices (BENCH_PYTHON, python3, else Tools/python-env).
set -euo pipefail
cd "$(dirname "$0")/../.."
AXIAL=${AXIAL:-.build/release/axial}
ARCH=${ARCH:-vit_small_moco}; SIZE=${SIZE:-64}; BATCH=${BATCH:-8}; STEPS=${STEPS:-6}
DIM=${DIM:-256}; MLP_DIM=${MLP_DIM:-4096}
command -v mpirun >/dev/null || { echo "mpi_pretrain.sh: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
work=$(mktemp -d /tmp/axial-mpi-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
py=${BENCH_PYTHON:-python3}
"$py" -c "import numpy, PIL" 2>/dev/null || py=$(Tools/python-env)
"$py" - "$work/cohort" <<'PY'
import os, sys, numpy as np
from PIL import Image
root = sys.argv[1]; rng = np.random.default_rng(0)
rows = ["patient_id,study_uid,series_uid,slice_index,z_mm,window,path"]
for p in range(4):
    d = os.path.join(root, f"P{p:03d}"); os.makedirs(d, exist_ok=True)
    for s in range(8):
        yy, xx = np.mgrid[0:96, 0:96]
        img = 60 + 40 * np.exp(-((xx - 48 - 10 * np.sin(s + p)) ** 2 + (yy - 48) ** 2) / 600) + rng.normal(0, 12, (96, 96))
        name = f"P{p:03d}/{s:03d}_abdomen.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(root, name))
        rows.append(f"P{p:03d},S{p},SE{p},{s},{s * 2.5},abdomen,{name}")
open(os.path.join(root, "manifest.csv"), "w").write("\n".join(rows) + "\n")
PY
run() {  # ranks global_batch
  local n=$1 b=$2 out="$work/out-$1-$2"
  local text
  text=$(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$n" --mca btl self,tcp --mca btl_tcp_if_include lo \
      --mca oob_tcp_if_include lo "$AXIAL" pretrain --input "$work/cohort" --arch "$ARCH" --size "$SIZE" --steps "$STEPS" \
      --batch "$b" --dim "$DIM" --mlp-dim "$MLP_DIM" --out "$out" --threads 1 --workers 1 --checkpoint-every 100000 --quiet)
  local ips
  ips=$(tail -n +3 "$out/loss.csv" | cut -d, -f5 | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  local ar fl bk
  ar=$(echo "$text" | sed -n 's/.*all-reduce \([0-9.]*\) ms\/step.*/\1/p'); ar=${ar:-0}
  fl=$(echo "$text" | sed -n 's/.*(\([0-9]*\) floats.*/\1/p'); fl=${fl:-0}
  bk=$(echo "$text" | sed -n 's/.*floats, \([0-9]*\) buckets.*/\1/p'); bk=${bk:-0}
  echo "mpi-pretrain ranks=$n global_batch=$b per_rank=$((b / n)) images_per_s=$ips step_ms=$(awk -v i="$ips" -v b="$b" 'BEGIN{printf "%.0f", 2000 * b / i}') allreduce_ms=$ar grad_floats=$fl buckets=$bk arch=$ARCH size=$SIZE"
}
run 1 "$BATCH"
run 2 "$((2 * BATCH))"   # weak scaling: the same per-rank batch
run 2 "$BATCH"           # strong scaling: the same global batch

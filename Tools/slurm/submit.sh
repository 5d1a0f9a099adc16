#!/bin/bash
# The whole chain as dependent jobs: ingest array → pretrain (MPI, multi-node) → extract array →
# crossval array → merge + statistics, each starting only when the previous one succeeded
# (--dependency=afterok; an array succeeds when all its tasks do).
#   DATA=/shared/ct WORK=/shared/run TASK=lesion TABLE=/shared/clinical.csv Tools/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
export AXIAL DATA WORK ARCH SHARDS FOLDS TASK TABLE HEAD STEPS BATCH LESIONS
last=$((SHARDS - 1)); lastFold=$((FOLDS - 1))
ingest=$(sbatch --parsable --export=ALL,STAGES=ingest --array=0-$last "$here/ingest_extract.sbatch")
pretrain=$(sbatch --parsable --dependency=afterok:$ingest "$here/pretrain.sbatch")
extract=$(sbatch --parsable --dependency=afterok:$pretrain \
  --export=ALL,STAGES=extract,WEIGHTS="$WORK/pretrain/encoder.safetensors" --array=0-$last "$here/ingest_extract.sbatch")
crossval=$(sbatch --parsable --dependency=afterok:$extract --array=0-$lastFold "$here/crossval.sbatch")
merge=$(sbatch --parsable --dependency=afterok:$crossval "$here/merge.sbatch")
echo "submitted: ingest $ingest, pretrain $pretrain, extract $extract, crossval $crossval, merge $merge"

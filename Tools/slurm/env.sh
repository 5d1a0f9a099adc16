# Shared settings of the example Slurm jobs (sourced by each script; override in the environment).
# Every path must be on a file system all nodes share.
: "${AXIAL:=axial}"                          # the axial executable (e.g. $HOME/axial/.build/release/axial)
: "${DATA:?set DATA to the folder of DICOM / NIfTI series}"
: "${WORK:?set WORK to the (shared) output folder}"
: "${ARCH:=vit_small_moco}"                  # encoder pretrained and used for extraction
: "${SHARDS:=16}"                            # ingest / extract array size (must match --array)
: "${FOLDS:=5}"                              # crossval folds (must match --array)
: "${TASK:=}"                                # crossval task name or YAML
: "${TABLE:=}"                               # clinical table (patient_id + label columns)
: "${HEAD:=abmil}"
: "${STEPS:=100000}"
: "${BATCH:=4096}"                           # global batch: split over all ranks (must divide)
: "${LESIONS:=}"                             # optional lesion CSV for LeCL

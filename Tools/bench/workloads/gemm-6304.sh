# sgemm 6304×768·768×3072 (ViT-B/16 b32 fc1 shape) through BLAS.sgemm vs torch.mm at 2 threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" gemm-6304; }
peers="torch-mm-6304"
peer_run() { BENCH_THREADS=2 "$PY" "$BENCH_DIR/peers_torch.py" "$1"; }

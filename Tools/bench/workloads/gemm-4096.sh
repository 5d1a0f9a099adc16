# sgemm 4096×4096·4096×4096 through BLAS.sgemm (AXIAL_BLAS=split|openblas) vs torch.mm at 2 threads.
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" gemm-4096; }
peers="torch-mm-4096"
peer_run() { BENCH_THREADS=2 "$PY" "$BENCH_DIR/peers_torch.py" "$1"; }

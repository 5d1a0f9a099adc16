# 5-fold ABMIL crossval of a 200-patient synthetic cohort (D 768); no peer (goal: < 60 s on 2 cores).
prepare() { :; }
axial_run() { "$AXIAL" bench --iterations 1 crossval-200 "$SCRATCH/crossval-200"; }
peers=""
peer_run() { :; }

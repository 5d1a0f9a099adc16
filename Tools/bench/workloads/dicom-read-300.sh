# Read the 300×512×512 int16 series of ../shared/peers/make_ct.py into a HU float32 volume.
# Peers: pydicom (read + sort + stack + rescale) and SimpleITK's ImageSeriesReader.
prepare() { make_ct_series; }
axial_run() { "$AXIAL" bench --iterations "$ITERS" dicom-read-300 "$CT_SERIES"; }
peers="pydicom sitk"
peer_run() { "$PY" "$BENCH_DIR/peers.py" "$1" "$CT_SERIES"; }

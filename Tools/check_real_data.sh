#!/usr/bin/env bash
# Reruns the real-input checks: (1) Tools/check_encoders.sh — timm / open_clip encoders at real size
# with fresh random weights through the registry; (2) Tools/check_real_data.py — every test file
# shipped in the pydicom and nibabel wheels through `axial inspect --json` (vs SimpleITK / nibabel)
# and `axial ingest` on a folder mixing them all. Exit status 1 when any check fails.
#   Tools/check_real_data.sh [--skip-encoders]
set -uo pipefail
cd "$(dirname "$0")/.."
py=$(Tools/python-env)
status=0
if [ "${1:-}" != "--skip-encoders" ]; then Tools/check_encoders.sh || status=1; fi
swift build -c release -Xswiftc -enable-testing --product axial >&2 || exit 1
"$py" Tools/check_real_data.py --axial "$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/axial" || status=1
exit $status

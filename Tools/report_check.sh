#!/usr/bin/env bash
# Renders an `axial report` page in headless Chromium and fails on JavaScript console errors,
# failed loads (anything the page would fetch: it must be self-contained) or a missing screenshot.
#
#   Tools/report_check.sh [report.html] [screenshot.png]
#
# Without arguments it builds a tiny run first (axial demo's cohort is too slow for a check, so:
# the CLEAR-layout interop fixtures → 2-fold crossval → report with thumbnails from a synthetic
# ingest folder) and writes the screenshot to .build/report_check/report.png.
# Needs `chromium` (Tools/setup installs it) and a built `axial` (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
work=.build/report_check
mkdir -p "$work"
html=${1:-}
shot=${2:-$work/report.png}
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || { echo "report_check: chromium not found (run Tools/setup)" >&2; exit 2; }

if [ -z "$html" ]; then
  axial=.build/release/axial
  [ -x "$axial" ] || swift build -c release --product axial >/dev/null
  fx=Tests/AxialPipelineTests/Fixtures/interop
  rm -rf "$work/cv" "$work/ingest"
  printf 'name: interop\nkind: binary\ncolumn: lesion\n' > "$work/task.yaml"
  "$axial" crossval --features "$fx/clear" --table "$fx/labels.csv" --task "$work/task.yaml" --head abmil \
    --out "$work/cv" --folds 2 --seed 3 --epochs 30 --batch 4 --patience 30 --hidden 16 --validation-fraction 0.25 --quiet >/dev/null
  # Synthetic windowed slices (a disc that moves with the slice) for the thumbnails, and a lesion table.
  python3 - "$work/ingest" "$work/lesions.csv" <<'PY'
import sys, os, zlib, struct
root, lesions = sys.argv[1], sys.argv[2]
def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(px[y * w:(y + 1) * w]) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
rows, boxes = [], []
for p in range(10):
    pid = f"P{p:02d}"
    for s in range(6):
        rel = f"{pid}/1.2.3/{s:04d}_unnamed.png"
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        w = h = 96
        cx, cy, r = 30 + 6 * s, 48, 14 + (8 if (p % 2 and s == 1) else 0)
        px = [min(255, 40 + (200 if (x - cx) ** 2 + (y - cy) ** 2 < r * r else 0) + (x * 3 + y) % 23) for y in range(h) for x in range(w)]
        png(os.path.join(root, rel), w, h, px)
        rows.append(f"{pid},1.2,1.2.3,{s},{s * 2.5 - 10},unnamed,{rel}")
    if p % 2:
        boxes.append(f"{pid},1,{30 + 6 - 22},{48 - 22},{30 + 6 + 22},{48 + 22}")
with open(os.path.join(root, "manifest.csv"), "w") as f:
    f.write("patient_id,study_uid,series_uid,slice_index,z_mm,window,path\n" + "\n".join(rows) + "\n")
with open(lesions, "w") as f:
    f.write("patient_id,slice_index,x1,y1,x2,y2\n" + "\n".join(boxes) + "\n")
PY
  html=$work/report.html
  "$axial" report --run "$work/cv" --features "$fx/clear" --ingest "$work/ingest" --lesions "$work/lesions.csv" --out "$html" --bootstrap 200 --top-k 5
fi

abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
log=$work/chromium.log
rm -f "$shot"
# --v=1 logs every console message as "INFO:CONSOLE(line)] "text", source: …" whatever its level
# (console.error and uncaught exceptions alike); the page logs nothing, so any CONSOLE line fails.
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --virtual-time-budget=3000)
"$chrome" "${flags[@]}" --enable-logging=stderr --v=1 --window-size=1280,2000 --screenshot="$shot" "file://$abs" >"$log" 2>&1 || true
dom=$work/dom.html
"$chrome" "${flags[@]}" --dump-dom "file://$abs" >"$dom" 2>/dev/null || true

fail=0
if grep -q "CONSOLE" "$log"; then
  echo "report_check: console messages (errors) from the page:" >&2
  grep "CONSOLE" "$log" >&2
  fail=1
fi
# Self-contained: nothing to fetch (images are data: URLs, no external scripts / styles / fonts).
if grep -qE '(src|href)="(https?:)?//|url\((https?:)?//|@import' "$dom"; then
  echo "report_check: the page refers to something outside itself:" >&2
  grep -oE '(src|href)="(https?:)?//[^"]*|url\((https?:)?//[^)]*|@import[^;]*' "$dom" | head >&2
  fail=1
fi
[ -s "$shot" ] || { echo "report_check: no screenshot written (see $log)" >&2; fail=1; }
# The script ran: it fills in "N of M patients".
grep -qE 'id="shown">[0-9]+ of [0-9]+ patients<' "$dom" || { echo "report_check: the page's script did not run (no 'N of M patients' in the DOM)" >&2; fail=1; }
[ $fail -eq 0 ] && echo "report_check: ok — $html rendered without console errors; screenshot $shot"
exit $fail

#!/usr/bin/env bash
# Tools/evidence/anomaly_evidence.sh [WORK_DIR] [PYRADIOMICS_DATA_DIR]
#
# Reproduces the anomaly evidence table of README.md ("Anomaly detection and maps"): `axial anomaly`
# with `clip_test --random-init` (no real CLIP weights can be had here) on
#   (a) a synthetic CT anomaly set: 12 NIfTI CTs (64×64×20, 1.5×1.5×2.5 mm) with 1–2 spherical
#       hypo- or hyperdense lesions each and their NIfTI masks (Tools/evidence/anomaly_data.py synth),
#       cut by `axial ingest --masks --size 64 --windows abdomen`, BMAD layout by patient:
#       train case00–05, valid case06–08, test case09–11 (slices with lesion voxels are Ungood);
#   (b) the two real lung CTs with tumour masks of the pyradiomics 3.1.0 sdist (data/lung{1,2}):
#       NRRD → NIfTI (SimpleITK), `axial ingest --masks --size 64 --windows lung`, valid = lung1,
#       test = lung2; "trained" here means trained on (a)'s train/ (MVFA's zero-shot protocol: train on
#       another data set), "k-shot" = trained on K+K shots of lung1 ×11 (MVFA's few-shot protocol).
# Variants: adapters untrained (--epochs 0) vs trained; zero-shot (text only) vs few-shot (memory bank of
# K normal shots of valid/); learned prompts (MLA-LP) vs fixed templates (MVFA). Image and pixel AUROC
# from `axial anomaly test`'s metrics.csv. Writes WORK_DIR/table.md and prints it.
#
# PYRADIOMICS_DATA_DIR: the sdist's data/ folder, e.g.
#   pip download pyradiomics==3.1.0 --no-deps --no-binary :all: -d /tmp/pyrad && tar xzf /tmp/pyrad/pyradiomics-3.1.0.tar.gz -C /tmp/pyrad
#   → /tmp/pyrad/pyradiomics-3.1.0/data   (without it, part (b) is skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-/tmp/axial-anomaly-evidence}"
pyrad="${2:-}"
py="$(Tools/python-env)"
axial="${AXIAL:-.build/release/axial}"
[ -x "$axial" ] || swift build -c release --product axial
EPOCHS="${EPOCHS:-8}"
LR="${LR:-1e-3}"
rm -rf "$work"; mkdir -p "$work/runs"
echo "data,adapters,text,shots,epochs_run,best_epoch,image_auroc,pixel_auroc,train_s" > "$work/results.csv"

# variant NAME DATA_DIR ADAPTERS_LABEL TEXT SHOTS EPOCHS [extra train args]
variant() {
  local name="$1" data="$2" label="$3" text="$4" shots="$5" epochs="$6"; shift 6
  local run="$work/runs/$name"
  local t0; t0=$(date +%s.%N)
  "$axial" anomaly train --data "$data" --encoder clip_test --random-init --seed 0 --prompts "$text" \
      --shots "$shots" --epochs "$epochs" --adapter-lr "$LR" --out "$run" --quiet "$@" > "$run.train.log"
  local t1; t1=$(date +%s.%N)
  "$axial" anomaly test --data "$data" --run "$run" --out "$run/test" --quiet > "$run.test.log"
  "$py" - "$run" "$(basename "$data")" "$label" "$text" "$shots" "$epochs" "$(echo "$t1 - $t0" | bc)" >> "$work/results.csv" <<'EOF'
import csv, sys
run, data, label, text, shots, epochs, secs = sys.argv[1:]
m = {r["metric"]: r["value"] for r in csv.DictReader(open(f"{run}/test/metrics.csv"))}
rows = list(csv.DictReader(open(f"{run}/training.csv")))
best = [r["epoch"] for r in rows if r["best"] == "1"][-1]
f = lambda v: f"{float(v):.3f}" if v not in ("", None) else "–"
print(",".join([data, label, text, shots, epochs, best, f(m["image_auroc"]), f(m.get("pixel_auroc")), f"{float(secs):.1f}"]))
EOF
  tail -1 "$work/results.csv"
}

# (a) synthetic CT anomaly set
s="$work/synth"
"$py" Tools/evidence/anomaly_data.py synth "$s" --patients 12 --seed 0
"$axial" ingest "$s/ct" --out "$s/slices" --windows abdomen --size 64 --masks "$s/ct/masks" --quiet
"$py" Tools/evidence/anomaly_data.py bmad "$s/slices" abdomen "$s/Synth_AD" \
    train=case00,case01,case02,case03,case04,case05 valid=case06,case07,case08 test=case09,case10,case11
mkdir -p "$s/kshot/Synth_AD"; ln -s "$s/Synth_AD/valid" "$s/kshot/Synth_AD/valid"; ln -s "$s/Synth_AD/test" "$s/kshot/Synth_AD/test"
variant synth-u-learned   "$s/Synth_AD" untrained learned   0 0
variant synth-u-templates "$s/Synth_AD" untrained templates 0 0
variant synth-t-learned   "$s/Synth_AD" "trained (train/)" learned   0 "$EPOCHS"
variant synth-t-templates "$s/Synth_AD" "trained (train/)" templates 0 "$EPOCHS"
variant synth-u-fs4       "$s/Synth_AD" untrained learned   4 0
variant synth-t-fs4       "$s/Synth_AD" "trained (train/)" learned 4 "$EPOCHS"
variant synth-k4          "$s/kshot/Synth_AD" "trained (4+4 shots ×11)" learned 4 "$EPOCHS"

# (b) the pyradiomics lung CTs
if [ -n "$pyrad" ]; then
  l="$work/lung"
  "$py" Tools/evidence/anomaly_data.py pyradiomics "$pyrad" "$l"
  "$axial" ingest "$l/ct" --out "$l/slices" --windows lung --size 64 --masks "$l/ct/masks" --quiet
  "$py" Tools/evidence/anomaly_data.py bmad "$l/slices" lung "$l/Lung_AD" valid=lung1 test=lung2
  ln -s "$s/Synth_AD/train" "$l/Lung_AD/train"
  mkdir -p "$l/kshot/Lung_AD"; ln -s "$l/Lung_AD/valid" "$l/kshot/Lung_AD/valid"; ln -s "$l/Lung_AD/test" "$l/kshot/Lung_AD/test"
  variant lung-u-learned   "$l/Lung_AD" untrained learned   0 0
  variant lung-u-templates "$l/Lung_AD" untrained templates 0 0
  variant lung-t-learned   "$l/Lung_AD" "trained (synthetic train/)" learned   0 "$EPOCHS"
  variant lung-t-templates "$l/Lung_AD" "trained (synthetic train/)" templates 0 "$EPOCHS"
  variant lung-u-fs2       "$l/Lung_AD" untrained learned   2 0
  variant lung-t-fs2       "$l/Lung_AD" "trained (synthetic train/)" learned 2 "$EPOCHS"
  variant lung-k2          "$l/kshot/Lung_AD" "trained (2+2 shots ×11)" learned 2 "$EPOCHS"
fi

"$py" - "$work/results.csv" > "$work/table.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| data | adapters | text | shots | epochs (best) | image AUROC | pixel AUROC | train s |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['data']} | {r['adapters']} | {r['text']} | {r['shots']} | {r['epochs_run']} ({r['best_epoch']}) | {r['image_auroc']} | {r['pixel_auroc']} | {r['train_s']} |")
EOF
cat "$work/table.md"

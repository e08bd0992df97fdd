#!/usr/bin/env bash
# One command: render the data with `scalpmap synth`, train, export, check, evaluate and write
# models/scalpmap-seg.onnx and models/MODEL_CARD.md. CPU only; about an hour on 2 cores.
#   bash training/run.sh            (from the repository root)
# Environment: PYTHON (default: python3 with requirements.txt installed), STEPS, TRAIN_COUNT,
# REAL (default ../../shared/real/uze-dev). REAL_LABELS=1 trains the 0.3.0 candidate recipe
# instead of the shipped one (coarse real labels in 30 % of the crops; see README.md), and with
# CROSSCHECK=1 also its cross-check model (another ~30 minutes; pooled figures go into the card).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
STEPS=${STEPS:-3600}
TRAIN_COUNT=${TRAIN_COUNT:-3000}
REAL=${REAL:-../../shared/real/uze-dev}
mkdir -p data out ../models

(cd .. && cargo build --release --locked)
bin=../target/release/scalpmap
# Training seeds (1000) and validation seeds (2000) never overlap.
[ -f "data/train/synth-1000-$(printf %05d $((TRAIN_COUNT - 1))).json" ] || "$bin" synth --count "$TRAIN_COUNT" --seed 1000 --size 512 --out data/train
[ -f data/val/synth-2000-00299.json ] || "$bin" synth --count 300 --seed 2000 --size 512 --out data/val

# The shipped recipe (0.1.x) trains on renders only. The candidate recipe mixes coarsely labelled
# real photos (real_labels.json, 9 of the 21 men) into 30 % of the crops, and its real-photo
# figures are then computed on the other 12 men only.
real_train=()
real_eval=(--real "$REAL")
if [ "${REAL_LABELS:-0}" = 1 ]; then
    [ -f "$REAL/labels.csv" ] || { echo "REAL_LABELS=1 needs the real photos at $REAL" >&2; exit 2; }
    real_train=(--real "$REAL" --real-labels real_labels.json --real-p 0.3)
    real_eval=(--real "$REAL" --held-out-of real_labels.json)
fi

"$PY" -m scalpmap_train.train --data data/train --steps "$STEPS" "${real_train[@]}" --out out/model.pt
"$PY" -m scalpmap_train.export --state out/model.pt --out ../models/scalpmap-seg.onnx
mv ../models/scalpmap-seg.onnx.check.json out/export_check.json
"$PY" -m scalpmap_train.evaluate --model ../models/scalpmap-seg.onnx --val data/val --fit data/train --out out/eval.json \
    "${real_eval[@]}" --sheet out/real_contact_sheet.png

cross=()
if [ "${REAL_LABELS:-0}" = 1 ] && [ "${CROSSCHECK:-0}" = 1 ]; then
    # The same recipe on the other men's labels, scored on the men the shipped model trained on;
    # pooled with the shipped model's scores, every photo is scored by a model that never saw it.
    "$PY" -m scalpmap_train.train --data data/train --steps "$STEPS" --real "$REAL" \
        --real-labels real_labels_other.json --real-p 0.3 --out out/cross.pt
    "$PY" -m scalpmap_train.export --state out/cross.pt --out out/cross.onnx
    "$PY" -m scalpmap_train.evaluate --model out/cross.onnx --val data/val --out out/cross_eval.json \
        --real "$REAL" --held-out-of real_labels_other.json --sheet out/cross_contact_sheet.png
    "$PY" -m scalpmap_train.evaluate --pool out/eval.json out/cross_eval.json --out out/crosscheck.json
    cross=(--crosscheck out/crosscheck.json --command "REAL_LABELS=1 CROSSCHECK=1 bash training/run.sh")
fi

"$PY" -m scalpmap_train.card --model ../models/scalpmap-seg.onnx --train out/model.pt.json \
    --check out/export_check.json --eval out/eval.json --limits LIMITS.md "${cross[@]}" --out ../models/MODEL_CARD.md

echo "wrote models/scalpmap-seg.onnx and models/MODEL_CARD.md"

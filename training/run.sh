#!/usr/bin/env bash
# One command: render the data with `scalpmap synth`, train, export, check, evaluate and write
# models/scalpmap-seg.onnx and models/MODEL_CARD.md. CPU only; about an hour on 2 cores.
#   bash training/run.sh            (from the repository root)
# Environment: PYTHON (default: python3 with requirements.txt installed), STEPS, TRAIN_COUNT.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
STEPS=${STEPS:-3600}
TRAIN_COUNT=${TRAIN_COUNT:-3000}
mkdir -p data out ../models

(cd .. && cargo build --release --locked)
bin=../target/release/scalpmap
# Training seeds (1000) and validation seeds (2000) never overlap.
[ -f "data/train/synth-1000-$(printf %05d $((TRAIN_COUNT - 1))).json" ] || "$bin" synth --count "$TRAIN_COUNT" --seed 1000 --size 512 --out data/train
[ -f data/val/synth-2000-00299.json ] || "$bin" synth --count 300 --seed 2000 --size 512 --out data/val

"$PY" -m scalpmap_train.train --data data/train --steps "$STEPS" --out out/model.pt
"$PY" -m scalpmap_train.export --state out/model.pt --out ../models/scalpmap-seg.onnx
mv ../models/scalpmap-seg.onnx.check.json out/export_check.json
"$PY" -m scalpmap_train.evaluate --model ../models/scalpmap-seg.onnx --val data/val --out out/eval.json \
    --real ../../shared/real/uze-dev --sheet out/real_contact_sheet.png
"$PY" -m scalpmap_train.card --model ../models/scalpmap-seg.onnx --train out/model.pt.json \
    --check out/export_check.json --eval out/eval.json --limits LIMITS.md --out ../models/MODEL_CARD.md

echo "wrote models/scalpmap-seg.onnx and models/MODEL_CARD.md"

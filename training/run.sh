#!/usr/bin/env bash
# One command: rebuild models/scalpmap-seg.onnx and models/MODEL_CARD.md from the registries'
# packages, the project's renders and the development photos. CPU only; about 50 minutes on 2 cores.
#   bash training/run.sh            (from anywhere; PYTHON = a python with requirements.txt)
# Steps: render the data with `scalpmap synth`; take MediaPipe's selfie segmentation network out of
# the PyPI mediapipe 0.10.14 wheel (checked by sha256) and check the PyTorch replay of it against
# Google's interpreter; train one model per cross-validation fold and one on all 21 men; score every
# development photo by the model that did not see its man (and the previous model the same way);
# export the all-men model with its cross-validated Norwood cut points; score and attach the head
# check; convert the side views' face detector and score the maps with it; write the card. REAL (default ../../shared/real/uze-dev) must hold the development photos.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
REAL=${REAL:-../../shared/real/uze-dev}
RECIPE=selfie-real-long-hair05-crop224   # DECISIONS.md runs 18, 19 and decision 22
HEAD_VERSION=0.7.1        # the shipped weights with headgate.SHIPPED's head check (DECISIONS.md decision 22)
VARIANT=""                 # the shipped form: the fold models as trained (the person-gated ".gated" lost, DECISIONS.md run 1b)
PREVIOUS=019464c           # the commit whose model the card compares with (0.1.1)
out=out/cv-$RECIPE
mkdir -p data out ../models
[ -f "$REAL/labels.csv" ] || { echo "run.sh needs the development photos at $REAL (REAL=...)" >&2; exit 2; }

(cd .. && cargo build --release --locked)
bin=../target/release/scalpmap
# Training seeds (1000) and validation seeds (2000) never overlap.
[ -f data/train/synth-1000-02999.json ] || "$bin" synth --count 3000 --seed 1000 --size 512 --out data/train
[ -f data/val/synth-2000-00299.json ] || "$bin" synth --count 300 --seed 2000 --size 512 --out data/val

wheel=data/wheels/mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
if [ ! -f "$wheel" ]; then
    "$PY" -m pip download --quiet --no-deps mediapipe==0.10.14 --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 -d data/wheels
fi
[ -f data/pretrained/selfie_segmentation.tflite ] || "$PY" -m scalpmap_train.selfie extract --wheel "$wheel" --out data/pretrained
"$PY" -m scalpmap_train.selfie check --photos data/val/synth-2000-0000{0,1,2,3,4}.jpg
# The side views' face detector from the same wheel (DECISIONS.md run 11): converted, checked
# against Google's interpreter, and the reference the crate's tests compare with.
"$PY" -m scalpmap_train.facedet convert --wheel "$wheel" --out ../models
"$PY" -m scalpmap_train.facedet check --real "$REAL"
"$PY" -m scalpmap_train.facedet reference --out ../models/face-detector.reference.json

"$PY" -m scalpmap_train.cv train --recipe "$RECIPE" --data data/train --real "$REAL" --out "$out"
"$PY" -m scalpmap_train.cv score --models "$out" --variant "$VARIANT" --real "$REAL" --binary "$bin" --out "$out/cv.json"
"$PY" -m scalpmap_train.cv score --models "$out" --variant "$VARIANT" --real "$REAL" --binary "$bin" \
    --face-stage ../models/face-detector.onnx --out "$out/cv.face.json"
git -C .. show "$PREVIOUS:models/scalpmap-seg.onnx" > out/previous.onnx
"$PY" -m scalpmap_train.cv score --model out/previous.onnx --real "$REAL" --binary "$bin" --out out/previous-cv.json

"$PY" -m scalpmap_train.cv ship --models "$out" --variant "$VARIANT" --cv "$out/cv.json" --out ../models/scalpmap-seg.onnx
cp "$out/foldall$VARIANT.reference.json" ../models/scalpmap-seg.reference.json
cp data/pretrained/MEDIAPIPE_LICENSE ../models/MEDIAPIPE_LICENSE
cp data/pretrained/selfie_provenance.json ../models/selfie_provenance.json
# The head check (DECISIONS.md run 6): cross-validated with the fold models, then fit on every man
# and written into the shipped model as its output `head` (probs and density unchanged).
"$PY" -m scalpmap_train.headgate cv --models "$out" --real "$REAL" --out "$out/headgate.json"
"$PY" -m scalpmap_train.headgate attach --model ../models/scalpmap-seg.onnx --real "$REAL" --version "$HEAD_VERSION" \
    --reference ../models/scalpmap-seg.reference.json --out ../models/scalpmap-seg.onnx
"$PY" -m scalpmap_train.headgate outside --model ../models/scalpmap-seg.onnx --out "$out/outside.json"
"$PY" -m scalpmap_train.cv synth --model ../models/scalpmap-seg.onnx --val data/val --out "$out/synth.json"
"$PY" -m scalpmap_train.cv synth --model ../models/scalpmap-seg.onnx --val data/val \
    --face-stage ../models/face-detector.onnx --out "$out/synth.face.json"
"$PY" -m scalpmap_train.cv synth --model out/previous.onnx --val data/val --out out/previous-synth.json
# The shipped recipe trained again with seed 8 (DECISIONS.md, run 4), when its figures are here
# (its fold models scored without and with the face stage, as seed 7's above).
seeds=()
faces=(--face-stage 7 "$out/cv.json" "$out/cv.face.json")
if [ -f "$out-seed8/fold6.onnx" ]; then
    "$PY" -m scalpmap_train.cv score --models "$out-seed8" --real "$REAL" --binary "$bin" --out "$out-seed8/cv.json"
    "$PY" -m scalpmap_train.cv score --models "$out-seed8" --real "$REAL" --binary "$bin" \
        --face-stage ../models/face-detector.onnx --out "$out-seed8/cv.face.json"
    seeds=(--other-seed 8 "$out-seed8/cv.face.json")
    faces+=(--face-stage 8 "$out-seed8/cv.json" "$out-seed8/cv.face.json")
fi
# The card's headline figures are the product's: the model with the face stage on side views.
"$PY" -m scalpmap_train.card --model ../models/scalpmap-seg.onnx --train "$out/foldall.pt.json" \
    --check "$out/foldall$VARIANT.check.json" --cv "$out/cv.face.json" --synth "$out/synth.json" \
    --previous-cv out/previous-cv.json --previous-synth out/previous-synth.json "${seeds[@]}" \
    --headgate "$out/headgate.json" --outside "$out/outside.json" "${faces[@]}" \
    --face-synth "$out/synth.face.json" --out ../models/MODEL_CARD.md
echo "wrote models/scalpmap-seg.onnx and models/MODEL_CARD.md"

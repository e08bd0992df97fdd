#!/usr/bin/env bash
# Renders a synthetic patient (five views), drafts its plan with `scalpmap plan`, and takes
# screenshots of the patient page and the batch index in headless Chromium (Debian: `apt install
# chromium`), into docs/plan-patient.png and docs/plan-index.png. Usage: bash docs/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/scalpmap
[ -x "$bin" ] || cargo build --release
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no Chromium found: apt install chromium" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for view in top back left right front; do
    "$bin" synth --count 1 --seed 31 --start 0 --view "$view" --out "$work/r-$view" 2>/dev/null
    mkdir -p "$work/in/client-31"
    cp "$work/r-$view/synth-31-00000.jpg" "$work/in/client-31/$view.jpg"
done
"$bin" plan "$work/in" --out "$work/out" --start-date 2026-12-01 --backend tract
shot() {
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2" \
        --screenshot="$3" "file://$work/out/$1" 2>/dev/null
}
shot patients/client-31.html 1200,3700 docs/plan-patient.png
shot index.html 1200,300 docs/plan-index.png
echo "wrote docs/plan-patient.png and docs/plan-index.png"

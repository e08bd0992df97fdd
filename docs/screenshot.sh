#!/usr/bin/env bash
# Regenerates the README's pictures from the README's own quick start: `scalpmap plan samples/`,
# then the sample patient's top-view and front-view overlays (docs/overlay-*.png), screenshots
# of its patient page and of the batch index, and of `scalpmap review` on that folder, in
# headless Chromium (Debian: `apt install chromium`). Usage: bash docs/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/scalpmap
[ -x "$bin" ] || cargo build --release --locked
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no Chromium found: apt install chromium" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" plan samples/ --out "$work/out" --start-date 2026-12-01 --backend tract
p=synth-2026-00505
cp "$work/out/${p}_${p}-top.overlay.png" docs/overlay-patient-top.png
cp "$work/out/${p}_${p}-front.overlay.png" docs/overlay-patient-front.png
shot() {
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2" \
        --screenshot="$3" "file://$work/out/$1" 2>/dev/null
}
shot "patients/$p.html" 1200,3900 docs/plan-patient.png
shot index.html 1200,520 docs/plan-index.png
# The review page on the same folder, at a laptop's 1280x800 and a tablet's 820x1180.
"$bin" review "$work/out" --backend tract > "$work/url" &
server=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/url")
review_shot() {
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$1" \
        --virtual-time-budget=5000 --screenshot="$2" "$url#photo=${p}_${p}-$3" 2>/dev/null
}
review_shot 1280,800 docs/review-desktop.png top
review_shot 820,1180 docs/review-tablet.png front
kill "$server"
wait "$server" 2>/dev/null || true
echo "wrote docs/review-desktop.png, docs/review-tablet.png,"
echo "wrote docs/overlay-patient-top.png, docs/overlay-patient-front.png, docs/plan-patient.png and docs/plan-index.png"

#!/usr/bin/env bash
# End-to-end throughput on 12-megapixel JPEGs, scalpmap beside a Python reference pipeline
# (bench/reference.py), in one run on this machine.
#
#   bash bench/run.sh [N]          # N photos (default 24), each engine and the reference
#   RSS_PHOTOS=1000 bash bench/run.sh   # also the peak memory of 100- and 1,000-photo batches, both engines
#
# Renders N photos of 3464x3464 (12 MP) with `scalpmap synth` into bench/data/ (kept between
# runs), installs the reference's pinned requirements into bench/.venv, then runs, on the same
# photos: the reference (PIL + onnxruntime + numpy/scipy, ONNX Runtime's default threads), and
# `scalpmap analyze` with ONNX Runtime and with tract (--jobs 2, one session per worker), then
# both again with --view left (every photo through the side views' face stage). Prints
# photos/s, per-stage median ms, peak RSS and CPU use for each, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-24}
RSS_PHOTOS=${RSS_PHOTOS:-0}
bin=target/release/scalpmap
cargo build --release --quiet
data=bench/data/12mp-$N
if [ ! -f "$data/.done" ]; then
    rm -rf "$data"
    "$bin" synth --count "$N" --size 3464 --seed 9000 --out "$data"
    rm -f "$data"/*.labels.png "$data"/*.density.png
    touch "$data/.done"
fi
venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r bench/requirements.txt
fi
ort_lib=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1)
export ORT_DYLIB_PATH="$ort_lib"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# /usr/bin/time -f: wall seconds, peak RSS in KB, CPU percent.
timed() {
    local name=$1
    shift
    /usr/bin/time -f "%e %M %P" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" || {
        cat "$work/$name.err" >&2
        exit 1
    }
}

timed reference "$venv/bin/python" bench/reference.py "$data" --model models/scalpmap-seg.onnx --out "$work/ref"
timed onnxruntime "$bin" analyze "$data" --out "$work/ort" --backend onnxruntime --jobs 2
timed tract "$bin" analyze "$data" --out "$work/tract" --backend tract --jobs 2
# The same photos as side views (their names carry no view): every one through the face stage.
timed onnxruntime-side "$bin" analyze "$data" --out "$work/ort-side" --backend onnxruntime --jobs 2 --view left
timed tract-side "$bin" analyze "$data" --out "$work/tract-side" --backend tract --jobs 2 --view left

python3 - "$work" "$N" <<'PY'
import json, glob, statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
def time_of(name):
    wall, rss, cpu = open(f"{work}/{name}.time").read().split()
    return float(wall), int(rss) / 1024, cpu
rows = {}
ref = json.loads(open(f"{work}/reference.out").read())
wall, rss, cpu = time_of("reference")
rows["reference (Python)"] = (n / wall, ref["median_ms"], rss, cpu)
folders = {"onnxruntime": "ort", "tract": "tract", "onnxruntime-side": "ort-side", "tract-side": "tract-side"}
for name, folder in folders.items():
    reports = [json.load(open(f)) for f in glob.glob(f"{work}/{folder}/*.json") if not f.endswith(("summary.json", "scalpmap-run.json"))]
    med = {k: statistics.median(r["timings_ms"][k] for r in reports) for k in ("decode", "prepare", "infer", "post", "total")}
    wall, rss, cpu = time_of(name)
    rows[f"scalpmap {name}"] = (n / wall, med, rss, cpu)
print(f"{n} photos of 3464x3464 (12 MP JPEG), end to end (process start to last file written)")
print(f"{'pipeline':22} {'photos/s':>9} {'decode':>8} {'prepare':>8} {'infer':>8} {'post':>8} {'total':>8} {'peak RSS':>9} {'CPU':>6}")
for k, (pps, med, rss, cpu) in rows.items():
    print(f"{k:22} {pps:9.2f} " + " ".join(f"{med[s]:8.1f}" for s in ("decode", "prepare", "infer", "post", "total")) + f" {rss:7.0f}MB {cpu:>6}")
r = rows
print(f"ratio scalpmap onnxruntime / reference: {r['scalpmap onnxruntime'][0] / r['reference (Python)'][0]:.2f}x (target >= 2)")
print(f"ratio scalpmap tract / scalpmap onnxruntime: {r['scalpmap tract'][0] / r['scalpmap onnxruntime'][0]:.2f} (target >= 0.5)")
print(f"side views (face stage on every photo) / as named: onnxruntime {r['scalpmap onnxruntime-side'][0] / r['scalpmap onnxruntime'][0]:.2f}, "
      f"tract {r['scalpmap tract-side'][0] / r['scalpmap tract'][0]:.2f}")
PY

if [ "$RSS_PHOTOS" -gt 0 ]; then
    # Two batches, a tenth and the whole, of links to the rendered photos under new names.
    for count in $((RSS_PHOTOS / 10)) "$RSS_PHOTOS"; do
        sub="$work/many$count"
        mkdir -p "$sub"
        i=0
        while [ "$i" -lt "$count" ]; do
            for f in "$data"/*.jpg; do
                [ "$i" -lt "$count" ] || break
                ln -s "$(realpath "$f")" "$sub/p$i.jpg"
                i=$((i + 1))
            done
        done
        for backend in onnxruntime tract; do
            timed "rss$count" "$bin" analyze "$sub" --out "$work/out$count" --backend "$backend" --jobs 2
            read -r wall rss cpu < "$work/rss$count.time"
            echo "batch of $count photos, $backend: $(python3 -c "print(f'{$count / $wall:.2f}')") photos/s, peak RSS $((rss / 1024)) MB, CPU $cpu"
            rm -rf "$work/out$count"
        done
        rm -rf "$sub"
    done
fi

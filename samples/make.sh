#!/usr/bin/env bash
# Regenerates the committed samples. Each line renders one item (or one patient's five views); its truth JSON records the
# seed, index and options, and tests/synth.rs re-renders every sample and compares bytes.
set -euo pipefail
cd "$(dirname "$0")"
bin=${SCALPMAP:-../target/release/scalpmap}
s() { "$bin" synth --seed 2026 --count 1 --size 512 --out . "$@" 2>/dev/null; }
s --start 3 --view top --pattern norwood --skin light
s --start 50 --view top --pattern ludwig --skin intermediate
s --start 100 --view front --pattern norwood --skin very_light
s --start 150 --view back --pattern norwood --skin tan --scar fut
s --start 202 --view left --pattern areata --skin brown
s --start 250 --view right --pattern diffuse --skin dark
s --start 306 --view back --pattern norwood --skin intermediate --scar fue
s --start 350 --view top --pattern areata --skin dark
s --start 400 --view top --pattern diffuse --skin light --scar trauma
s --start 450 --view right --pattern norwood --skin very_light --hair grey
# One whole patient: one head in all five views (a folder, each photo named by its view) with
# the printed marker on the top view, so that `scalpmap plan samples/` drafts a real treatment.
s --start 505 --pattern norwood --marker --patients
echo "samples rendered into $(pwd)"

"""Sanity check of `scalpmap plan` on the real photos (../shared/real/uze-dev, never committed):
builds a manifest from labels.csv (patient = person, five views each), runs `scalpmap plan`, and
compares each patient's Norwood estimate with the label: Spearman, exact and within-one counts.

Usage (from the repository root): python3 training/real_plan_check.py [REAL_DIR] [LABELS_JSON]
With LABELS_JSON (for a model trained on real labels, e.g. training/real_labels.json) the men
whose photos it labels are left out, so the figure comes only from men the model never saw.
SCALPMAP_ARGS adds arguments to `scalpmap plan` (for example "--model OTHER.onnx").
Standard library only; needs target/release/scalpmap (cargo build --release).
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

ROMAN = {"I": 1, "II": 2, "III": 3, "III vertex": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}
VIEWS = {"Back": "back", "Front": "front", "Left": "left", "Right": "right", "Top-Down": "top"}


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5


def has_scar_rule(report):
    """Whether a patient report's plan adds sessions for scars anywhere in it."""
    if isinstance(report, dict):
        return report.get("rule") == "scars" or any(has_scar_rule(v) for v in report.values())
    if isinstance(report, list):
        return any(has_scar_rule(v) for v in report)
    return False


def main():
    real = sys.argv[1] if len(sys.argv) > 1 else "../shared/real/uze-dev"
    labels = os.path.join(real, "labels.csv")
    if not os.path.exists(labels):
        print(f"skipped: no {labels}")
        return
    rows = list(csv.DictReader(open(labels)))
    trained = sys.argv[2] if len(sys.argv) > 2 else None
    if trained:
        seen_files = set(json.load(open(trained))["photos"])
        seen = {r["person"] for r in rows if r["file"] in seen_files}
        rows = [r for r in rows if r["person"] not in seen]
        print(f"left out {len(seen)} men whose photos {trained} labels (the model trained on them)")
    norwood = {r["person"]: int(r["norwood"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "manifest.csv")
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["patient", "view", "file"])
            for r in rows:
                w.writerow([r["person"], VIEWS.get(r["view"], ""), os.path.abspath(os.path.join(real, r["file"]))])
        out = os.path.join(tmp, "out")
        extra = os.environ.get("SCALPMAP_ARGS", "").split()  # e.g. "--model OTHER.onnx"
        subprocess.run(["target/release/scalpmap", "plan", "--manifest", manifest, "--out", out, *extra], check=True)
        pairs, scarred = [], []
        for name in sorted(os.listdir(os.path.join(out, "patients"))):
            if name.endswith(".json"):
                r = json.load(open(os.path.join(out, "patients", name)))
                if has_scar_rule(r):
                    scarred.append(r["patient"])
                stage = r["assessment"]["stage"]
                if stage["scale"] == "hamilton-norwood":
                    pairs.append((norwood[r["patient"]], ROMAN[stage["stage"]]))
    labels_, est = [p[0] for p in pairs], [p[1] for p in pairs]
    print(f"{len(pairs)} patients staged Norwood: Spearman {spearman(labels_, est):.3f}, "
          f"exact {sum(a == b for a, b in pairs)}, within one stage {sum(abs(a - b) <= 1 for a, b in pairs)}")
    # None of these men is known to have a scar: every plan that adds the scar session is a false scar.
    print(f"plans with a scar session: {len(scarred)} of {len(norwood)} patients" + (f" ({', '.join(scarred)})" if scarred else ""))


if __name__ == "__main__":
    main()

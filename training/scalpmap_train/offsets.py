"""Class offsets: a per-class shift of the log-probabilities, fit on real photos of other men.

The class weights of the loss were set for the renders, so on real photos the most probable
class can sit on the wrong side of a class boundary (E's thinning IoU is 0.18, cross-validated).
An offset b_c added to each class's log-probability moves those boundaries without touching the
network: `probs' = probs * exp(b) / sum(probs * exp(b))`, written into the ONNX graph after its
`probs` (Mul, ReduceSum, Div), so both engines and every consumer of `probs` see the same map.
Background's offset is 0 (only differences matter) and scar's is 0 (scar is drawn off anyway).

How they are judged (DECISIONS.md run 8): for fold k the offsets are fit on the labelled pixels
of the other folds' men, each photo scored by its own out-of-fold model, and fold k's model is
written with them (fold{k}.offsets.onnx); `cv score --variant .offsets` then scores the folds as
always. The model that ships gets offsets fit on all 21 men's out-of-fold maps.

python -m scalpmap_train.offsets cv --models out/cv-selfie-real-long
python -m scalpmap_train.cv score --models out/cv-selfie-real-long --variant .offsets --out ...
python -m scalpmap_train.offsets ship --models out/cv-selfie-real-long --model M --out M
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from . import contract
from .cv import LABEL_FILES, N_FOLDS, folds, pixel_figures
from .data import normalise, prepare_photo
from .evaluate import confusion, read_labels, session
from .real_labels import IGNORE, photos_present, read_rows
from .real_labels import mask as label_mask

# The offsets fit (DECISIONS.md run 8): hair, thinning, bare; a grid of 0.1 in [-1.5, 1.5].
FITTED = [contract.CLASSES.index(c) for c in ("hair", "thinning", "bare")]
GRID = np.round(np.arange(-1.5, 1.5001, 0.1), 2)
SWEEPS = 3
SCAR = contract.CLASSES.index("scar")
METADATA = "scalpmap.class_offsets"


def labelled_pixels(real, models_of_fold, label_files=LABEL_FILES):
    """Per man: the log-probabilities (N x classes) of his labelled pixels, each photo scored by
    the fold model that did not see him, and their labels (N)."""
    rows = read_rows(real)
    fold_of = folds(rows)
    spec = read_labels(label_files)
    sessions, out = {}, {}
    for r in rows:
        if r["file"] not in spec:
            continue
        path = str(models_of_fold(fold_of[r["person"]]))
        if path not in sessions:
            sessions[path] = session(path)
        photo = prepare_photo(Image.open(Path(real) / r["file"]))
        probs = sessions[path].run(["probs"], {"image": normalise(photo[None])})[0][0]
        lab = label_mask(photo, spec[r["file"]])
        known = lab != IGNORE
        logp = np.log(np.clip(probs[:, known].T, 1e-12, None)).astype(np.float32)
        lp, ll = out.setdefault(r["person"], ([], []))
        lp.append(logp)
        ll.append(lab[known].astype(np.int64))
    return {m: (np.concatenate(p), np.concatenate(l)) for m, (p, l) in out.items()}, fold_of


def predict(logp, offsets):
    """The most probable class after the offsets, scar never drawn (as `scalpmap analyze` with
    scar detection off)."""
    z = logp + offsets[None, :]
    z[:, SCAR] = -np.inf
    return z.argmax(1)


def miou(pred, lab):
    """Pooled mean IoU over the labelled classes, as `cv score` computes it."""
    return pixel_figures(confusion(pred, lab))["miou"]


def fit(logp, lab):
    """Coordinate ascent on the pooled mean IoU, from 0, at most SWEEPS times over the fitted
    classes; among equal scores the offset nearest 0 wins."""
    b = np.zeros(logp.shape[1], np.float32)
    for _ in range(SWEEPS):
        moved = False
        for c in FITTED:
            scores = []
            for v in GRID:
                t = b.copy()
                t[c] = v
                scores.append(miou(predict(logp, t), lab))
            scores = np.array(scores)
            top = GRID[scores >= scores.max() - 1e-12]
            v = float(top[np.argmin(np.abs(top))])
            moved = moved or v != b[c]
            b[c] = v
        if not moved:
            break
    return b, miou(predict(logp, b), lab)


def pooled(per_man, men):
    p = np.concatenate([per_man[m][0] for m in men])
    l = np.concatenate([per_man[m][1] for m in men])
    return p, l


def attach(model_path, offsets, out_path, provenance):
    """The model with `probs` renamed `probs_model` and a new `probs` = probs_model * exp(b),
    renormalised over the classes. Every node that read `probs` (the head check's class means)
    reads `probs_model`, so the head check is unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(model_path))
    g = m.graph
    if any(p.key == METADATA for p in m.metadata_props):
        raise SystemExit(f"{model_path} already has class offsets")
    raw = "probs_model"
    for node in g.node:
        node.output[:] = [raw if o == "probs" else o for o in node.output]
        node.input[:] = [raw if i == "probs" else i for i in node.input]
    w = np.exp(np.asarray(offsets, np.float64)).astype(np.float32).reshape(1, -1, 1, 1)
    g.initializer.append(numpy_helper.from_array(w, "/offsets/weight"))
    g.node.append(helper.make_node("Mul", [raw, "/offsets/weight"], ["/offsets/shifted"]))
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 13:
        g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "/offsets/axes"))
        g.node.append(helper.make_node("ReduceSum", ["/offsets/shifted", "/offsets/axes"], ["/offsets/total"], keepdims=1))
    else:
        g.node.append(helper.make_node("ReduceSum", ["/offsets/shifted"], ["/offsets/total"], axes=[1], keepdims=1))
    g.node.append(helper.make_node("Div", ["/offsets/shifted", "/offsets/total"], ["probs"]))
    entry = m.metadata_props.add()
    entry.key = METADATA
    entry.value = (",".join(f"{float(v):.2f}" for v in offsets) + f" (log-probability offsets per class, {provenance})")
    onnx.checker.check_model(m)
    onnx.save(m, str(out_path) + ".tmp")
    os.replace(str(out_path) + ".tmp", out_path)


def shift_reference(reference_path, offsets, out_path):
    """The reference file's probabilities (PyTorch's) with the offsets applied, in float64."""
    ref = json.loads(Path(reference_path).read_text())
    w = np.exp(np.asarray(offsets, np.float64))
    p = np.asarray(ref["probs"], np.float64) * w[None, :]
    ref["probs"] = (p / p.sum(1, keepdims=True)).tolist()
    Path(str(out_path) + ".tmp").write_text(json.dumps(ref))
    os.replace(str(out_path) + ".tmp", out_path)


def cv(models, real, variant=".offsets"):
    """Offsets per fold, fit on the other folds' men; fold{k}{variant}.onnx and offsets.json."""
    per_man, fold_of = labelled_pixels(real, lambda k: Path(models) / f"fold{k}.onnx")
    result = {"grid": [float(GRID[0]), float(GRID[-1]), 0.1], "sweeps": SWEEPS, "classes": contract.CLASSES, "folds": {}}
    for k in range(N_FOLDS):
        logp, lab = pooled(per_man, sorted(m for m in per_man if fold_of[m] != k))
        b, score = fit(logp, lab)
        before = miou(predict(logp, np.zeros_like(b)), lab)
        result["folds"][k] = {"offsets": [float(v) for v in b], "train_miou_before": before, "train_miou_after": score}
        src = Path(models) / f"fold{k}.onnx"
        attach(src, b, Path(models) / f"fold{k}{variant}.onnx", f"fit on the other folds' men, fold {k}")
        print(f"fold {k}: offsets {' '.join(f'{v:+.1f}' for v in b)}; other folds' mIoU {before:.3f} -> {score:.3f}",
              flush=True)
    Path(models, "offsets.json").write_text(json.dumps(result, indent=1))
    return result


def ship(models, real, model, out, reference=None):
    """Offsets fit on every man's out-of-fold maps, written into `model` (to `out`)."""
    per_man, _ = labelled_pixels(real, lambda k: Path(models) / f"fold{k}.onnx")
    b, score = fit(*pooled(per_man, sorted(per_man)))
    attach(model, b, out, "fit on all 21 development men's out-of-fold maps")
    if reference:
        shift_reference(reference, b, reference)
    return b, score


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cv", help="fit offsets per fold on the other folds' men; write fold{k}.offsets.onnx")
    c.add_argument("--models", required=True)
    c.add_argument("--real", default="../../shared/real/uze-dev")
    s = sub.add_parser("ship", help="fit offsets on all men's out-of-fold maps; write them into --model")
    s.add_argument("--models", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--reference", default=None, help="the model's reference JSON, shifted in place")
    s.add_argument("--real", default="../../shared/real/uze-dev")
    s.add_argument("--out", required=True)
    a = ap.parse_args()
    if not photos_present(a.real):
        return
    if a.cmd == "cv":
        cv(a.models, a.real)
    else:
        b, score = ship(a.models, a.real, a.model, a.out, a.reference)
        print("offsets:", " ".join(f"{v:+.1f}" for v in b), f"all men's out-of-fold mIoU {score:.3f}")


if __name__ == "__main__":
    main()

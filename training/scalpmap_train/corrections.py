"""Practitioners' corrections from `scalpmap review`, as real training labels.

`scalpmap review` saves, beside an output folder's reports, NAME.reviewed.png (the corrected
class map at the model's grid, one class id per cell) and NAME.review.json (its state, the photo's
and the map's SHA-256). Every cell of a correction is labelled, so it enters the loss like the
coarse labels (`real_labels.py`) with nothing ignored. Photos marked "retake" are not used.

Each photo is found at the path the run recorded (scalpmap-run.json) or, when it moved or the run
was --anonymize, by its SHA-256 under the folders given with --photos; a correction whose photo
or map does not match its hashes is skipped with a message, never guessed.

    # what a folder of corrections holds
    python -m scalpmap_train.corrections list --corrections /clinic/out [--photos /clinic/photos]
    # one command: the shipped recipe trained on the renders, the development labels (when
    # ../shared/real is there) and the corrections, exported as an ONNX model scalpmap runs
    python -m scalpmap_train.corrections retrain --corrections /clinic/out --photos /clinic/photos \\
        --out /clinic/scalpmap-clinic.onnx
    scalpmap plan /clinic/photos --model /clinic/scalpmap-clinic.onnx --out /clinic/out2
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .contract import CLASSES, INPUT_SIZE
from .data import prepare_photo

# The recipe of the shipped model (DECISIONS.md, run 4), which a clinic's retrain follows.
SHIPPED_RECIPE = "selfie-real-long"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def photos_by_sha(folders):
    """SHA-256 -> path of every photo under the folders (hashed once, on first need)."""
    found = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith("."):
                found.setdefault(sha256(p), p)
    return found


def find(out_dirs, photo_dirs=(), states=("reviewed",), say=print):
    """(photo path, corrected map path, correction) of every usable correction, sorted."""
    index = None
    items = []
    for out in map(Path, out_dirs):
        record_path = out / "scalpmap-run.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else {"photos": {}}
        for jpath in sorted(out.glob("*.review.json")):
            name = jpath.name[: -len(".review.json")]
            c = json.loads(jpath.read_text())
            if c.get("schema") != "scalpmap-review/1" or c["state"] not in states:
                continue
            png = out / f"{name}.reviewed.png"
            if not png.exists() or sha256(png) != c["map_sha256"]:
                say(f"{png}: missing or not the map its review names; skipped")
                continue
            if (c["width"], c["height"]) != (INPUT_SIZE, INPUT_SIZE):
                say(f"{png}: a {c['width']}x{c['height']} grid, not the model's {INPUT_SIZE}; skipped")
                continue
            recorded = (record["photos"].get(name) or {}).get("path")
            photo = Path(recorded) if recorded and Path(recorded).exists() and sha256(recorded) == c["photo_sha256"] else None
            if photo is None:
                index = photos_by_sha(photo_dirs) if index is None else index
                photo = index.get(c["photo_sha256"])
            if photo is None:
                say(f"{jpath}: its photo is neither at {recorded or 'a recorded path'} nor under --photos; skipped")
                continue
            items.append((photo, png, c))
    return items


def load(out_dirs, photo_dirs=(), say=print):
    """Photos (NxHxWx3 uint8, upright as scalpmap decodes them), masks (NxHxW class ids) and a
    sha256 over the corrections used; None when there are none."""
    items = find(out_dirs, photo_dirs, say=say)
    if not items:
        return None
    photos, masks, digest = [], [], hashlib.sha256()
    for photo, png, c in items:
        # scalpmap turns a photo upright by its EXIF orientation before the model sees it.
        photos.append(prepare_photo(ImageOps.exif_transpose(Image.open(photo))))
        m = np.asarray(Image.open(png), dtype=np.uint8)
        if m.max() >= len(CLASSES):
            raise ValueError(f"{png}: a value that is not a class")
        masks.append(m)
        digest.update(c["photo_sha256"].encode() + c["map_sha256"].encode())
    return np.stack(photos), np.stack(masks), digest.hexdigest()


def retrain(corrections, photo_dirs, out, data, real, steps=None, seed=7):
    """The shipped recipe on the renders, the development labels (if present) and the
    corrections; exported to `out` (ONNX) with its check, atomically."""
    import torch

    from . import export
    from . import contract
    from .cv import LABEL_FILES, RECIPES
    from .train import train

    extra = load(corrections, photo_dirs)
    if extra is None:
        sys.exit("no usable corrections found: nothing to retrain on")
    recipe = dict(RECIPES[SHIPPED_RECIPE])
    real_pair = (real, [str(Path(__file__).resolve().parent.parent / f) for f in LABEL_FILES]) if (Path(real) / "labels.csv").exists() else None
    torch.set_num_threads(int(os.environ.get("SCALPMAP_THREADS", "2")))
    net, info = train(data, steps or recipe["steps"], recipe["batch"], recipe["crop"], recipe["lr"], seed,
                      class_weights=recipe["class_weights"], real=real_pair, real_p=recipe["real_p"],
                      arch=recipe["arch"], lr_body=recipe.get("lr_body"), extra_real=extra)
    info["recipe"] = SHIPPED_RECIPE
    state = str(out) + ".pt"
    torch.save(net.state_dict(), state)
    Path(state + ".json").write_text(json.dumps(info, indent=1))
    m, reference = export.export(state, str(out) + ".tmp", info)
    export.check(m, str(out) + ".tmp", reference, contract.input_size(info))
    if real_pair:
        # The head check, fit again on this model's own features (headgate.py, DECISIONS.md run 6).
        from . import headgate

        params, threshold, _ = headgate.fit_shipped(str(out) + ".tmp", real, data)
        headgate.attach(str(out) + ".tmp", (params, threshold), str(out) + ".tmp",
                        "headgate.py fit on this retrained model (corrections.py)", contract.version_for(info))
    else:
        print("the development photos are not here: the retrained model has no head check, so a photo without a "
              "head is read as scalp")
    os.replace(str(out) + ".tmp", out)
    print(f"{out}: model {contract.version_for(info)}, {info['corrections']['photos']} corrected photos")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("list", "retrain"):
        p = sub.add_parser(name)
        p.add_argument("--corrections", nargs="+", required=True, help="output folders scalpmap review saved corrections in")
        p.add_argument("--photos", nargs="*", default=[], help="folders to find moved or anonymized photos in (by SHA-256)")
        if name == "retrain":
            p.add_argument("--out", required=True, help="the ONNX model to write")
            p.add_argument("--data", default="data/train", help="rendered training set (training/run.sh makes it)")
            p.add_argument("--real", default="../../shared/real/uze-dev", help="development photos, used when present")
            p.add_argument("--steps", type=int, default=None)
    a = ap.parse_args()
    if a.cmd == "list":
        for photo, png, c in find(a.corrections, a.photos):
            changed = c["changed_cells"]
            print(f"{png.name}: {photo} ({changed} cells corrected, reviewed {c['reviewed_at']})")
        return
    retrain(a.corrections, a.photos, a.out, a.data, a.real, a.steps)


if __name__ == "__main__":
    main()

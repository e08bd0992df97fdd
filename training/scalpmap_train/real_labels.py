"""Coarse class labels on some real photos, kept as numbers, never as pictures.

A real photo is cut into superpixels (SLIC at the model's input size, fixed settings, so the
same photo always gives the same regions); a person looked at each photo next to its numbered
regions and wrote down which regions are background, hair, thinning, bare or scar
(`training/real_labels.json`). Regions left out are ambiguous and are ignored by the loss.
The file holds region numbers only: the photos stay in ../shared/real and out of the repository.

Which men are labelled is a rule, not a choice (`labelled_persons`): within each Norwood level,
every other man in sorted order. The men not labelled are the only ones the real-photo figures
of a model trained with these labels may be computed on.

python -m scalpmap_train.real_labels sheet --real DIR --files a.jpg b.jpg --out sheet.png
"""

import argparse
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .contract import CLASSES, INPUT_SIZE
from .data import prepare_photo

IGNORE = 255
SLIC = {"n_segments": 90, "compactness": 12.0, "sigma": 1.0, "start_label": 1}


def segments(photo_uint8):
    """SLIC superpixels of an RGB photo at the model size, numbered from 1."""
    from skimage.segmentation import slic

    return slic(photo_uint8, **SLIC)


def labelled_persons(rows):
    """The men whose photos may be labelled: within each Norwood level, the 2nd, 4th, ... man
    in sorted order (so both halves span every level)."""
    by_level = {}
    for r in rows:
        by_level.setdefault(int(r["norwood"]), set()).add(r["person"])
    chosen = set()
    for level in sorted(by_level):
        chosen.update(sorted(by_level[level])[1::2])
    return chosen


def photos_present(real):
    """Whether the development photos (their labels.csv) are at `real`; says so when they are
    not, since every command that needs them has nothing to do without them."""
    if (Path(real) / "labels.csv").exists():
        return True
    print(f"real photos not found at {real}: nothing to do")
    return False


def read_rows(real):
    """The rows of the real photos' labels.csv (file, norwood, person, view, ...)."""
    return list(csv.DictReader(open(Path(real) / "labels.csv")))


def persons_labelled_in(labels_path, rows):
    """The men any of whose photos `labels_path` labels: a model trained on it has seen them."""
    labelled = set(json.loads(Path(labels_path).read_text())["photos"])
    return sorted({r["person"] for r in rows if r["file"] in labelled})


def mask(photo_uint8, entry):
    """Per-pixel class from one photo's entry: {class name: [region numbers], "rest": class
    name for every region not named, "ignore": [regions too ambiguous to name]}. Ignored
    regions, and unnamed ones when there is no "rest", are IGNORE."""
    seg = segments(photo_uint8)
    rest = entry.get("rest")
    out = np.full(seg.shape, IGNORE if rest is None else CLASSES.index(rest), np.uint8)
    for name, regions in entry.items():
        if name in CLASSES:
            out[np.isin(seg, regions)] = CLASSES.index(name)
    out[np.isin(seg, entry.get("ignore", []))] = IGNORE
    return out


def load(real, labels_paths, leave_out=(), size=INPUT_SIZE):
    """Photos (NxHxWx3 uint8) and masks (NxHxW uint8, IGNORE = unlabelled) of every real photo
    the label files name (merged; one path or several), except those of the men in `leave_out`
    (a cross-validation fold's held-out men); the persons they show, and a sha256 over the label
    files and the photos used. The regions are cut at the contract's size; at a `size` that is a
    multiple of it the photo is prepared at `size` and each label pixel covers a block."""
    paths = [labels_paths] if isinstance(labels_paths, (str, Path)) else list(labels_paths)
    spec, digest = {}, hashlib.sha256()
    for path in paths:
        raw = Path(path).read_bytes()
        spec.update(json.loads(raw)["photos"])
        digest.update(raw)
    photos, masks, persons = [], [], []
    rows = {r["file"]: r for r in read_rows(real)}
    for name in sorted(spec):
        if rows[name]["person"] in leave_out:
            continue
        digest.update((Path(real) / name).read_bytes())
        p = prepare_photo(Image.open(Path(real) / name))
        m = mask(p, spec[name])
        f = size // INPUT_SIZE
        photos.append(p if f == 1 else prepare_photo(Image.open(Path(real) / name), size))
        masks.append(m if f == 1 else np.repeat(np.repeat(m, f, 0), f, 1))
        persons.append(rows[name]["person"])
    return np.stack(photos), np.stack(masks), persons, digest.hexdigest()


def sheet(real, files, out, scale=3):
    """The photo and its numbered regions side by side, one row per photo, for labelling."""
    font = ImageFont.load_default(size=13)
    rows = []
    for name in files:
        p = prepare_photo(Image.open(Path(real) / name))
        seg = segments(p)
        big = np.kron(seg, np.ones((scale, scale), seg.dtype))
        img = np.repeat(np.repeat(p, scale, 0), scale, 1).copy()
        edge = np.zeros(big.shape, bool)
        edge[:-1] |= big[:-1] != big[1:]
        edge[:, :-1] |= big[:, :-1] != big[:, 1:]
        marked = img.copy()
        marked[edge] = (255, 255, 0)
        im = Image.fromarray(marked)
        d = ImageDraw.Draw(im)
        for k in np.unique(seg):
            ys, xs = np.nonzero(seg == k)
            i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
            d.text((xs[i] * scale - 6, ys[i] * scale - 7), str(k), fill=(255, 255, 255), font=font,
                   stroke_width=2, stroke_fill=(0, 0, 0))
        row = Image.new("RGB", (img.shape[1] * 2, img.shape[0]))
        row.paste(Image.fromarray(img), (0, 0))
        row.paste(im, (img.shape[1], 0))
        ImageDraw.Draw(row).text((4, 4), name, fill=(255, 0, 0), font=font)
        rows.append(row)
    full = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)))
    y = 0
    for r in rows:
        full.paste(r, (0, y))
        y += r.height
    full.save(out)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet")
    s.add_argument("--real", default="../../shared/real/uze-dev")
    s.add_argument("--files", nargs="+", required=True)
    s.add_argument("--out", required=True)
    w = sub.add_parser("which")
    w.add_argument("--real", default="../../shared/real/uze-dev")
    a = ap.parse_args()
    if a.cmd == "sheet":
        sheet(a.real, a.files, a.out)
    else:
        rows = read_rows(a.real)
        chosen = labelled_persons(rows)
        for r in rows:
            if r["person"] in chosen:
                print(r["file"], r["norwood"], r["view"])


if __name__ == "__main__":
    main()

"""Reference pipeline: what a clinic's data scientist would write with PIL, numpy, scipy and
onnxruntime, doing the same steps as `scalpmap analyze` on the same model and photos:
decode with EXIF orientation, area-resize to the model input, normalise, run the model, clean
and label the class map, measure classes and zones, draw and save the overlay, write the JSON
report. Prints photos/s and per-stage medians; `bench/run.sh` runs it beside scalpmap.

Usage: python bench/reference.py PHOTOS_DIR --model models/scalpmap-seg.onnx --out DIR
"""
import argparse
import hashlib
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from scipy import ndimage

PALETTE = np.array([[0, 0, 0], [0, 158, 115], [240, 228, 66], [213, 94, 0], [204, 121, 167]], np.float32)


def contract(sess):
    meta = sess.get_modelmeta().custom_metadata_map
    size = int(meta["scalpmap.input_size"].split(",")[0])
    mean = np.array([float(v) for v in meta["scalpmap.mean"].split(",")], np.float32)
    std = np.array([float(v) for v in meta["scalpmap.std"].split(",")], np.float32)
    return size, mean, std


def analyse(path, sess, size, mean, std, out):
    t = {}
    t0 = time.perf_counter()
    data = open(path, "rb").read()
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    t["decode"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    small = img.resize((size, size), Image.BOX)
    x = (np.asarray(small, np.float32) / 255.0 - mean) / std
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    t["prepare"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    outputs = sess.run(None, {sess.get_inputs()[0].name: x})
    t["infer"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    probs = outputs[0][0]
    unit = float(sess.get_modelmeta().custom_metadata_map["scalpmap.density_unit"])
    density = outputs[1][0, 0] * unit if len(outputs) > 1 else np.zeros((size, size), np.float32)
    classes = probs.argmax(0).astype(np.uint8)
    # Clean-up: small regions take the majority class around them.
    min_cells = max(1, round(0.0005 * size * size))
    for k in range(1, 5):
        lab, n = ndimage.label(classes == k)
        if n:
            sizes = ndimage.sum(np.ones_like(lab), lab, range(1, n + 1))
            for i in np.nonzero(sizes < min_cells)[0]:
                m = lab == i + 1
                ring = ndimage.binary_dilation(m) & ~m
                if ring.any():
                    classes[m] = np.bincount(classes[ring], minlength=5).argmax()
    w, h = img.size
    sx, sy = w / size, h / size
    hist = np.bincount(classes.ravel(), minlength=5)
    scalp = hist[1:].sum()
    zones = []
    for k in (2, 3, 4):
        lab, n = ndimage.label(classes == k)
        for i, sl in enumerate(ndimage.find_objects(lab)):
            m = lab[sl] == i + 1
            ys, xs = np.nonzero(m)
            zones.append({
                "class": int(k),
                "area_px": float(m.sum() * sx * sy),
                "centroid": [float((xs.mean() + sl[1].start + 0.5) * sx), float((ys.mean() + sl[0].start + 0.5) * sy)],
                "bbox": [sl[1].start * sx, sl[0].start * sy, sl[1].stop * sx, sl[0].stop * sy],
                "mean_density_per_cm2": float(density[sl][m].mean()),
            })
    # Overlay: the photo at most 1024 px, classes tinted.
    k = min(1.0, 1024 / max(w, h))
    view = img.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR) if k < 1 else img
    cls = np.asarray(Image.fromarray(classes).resize(view.size, Image.NEAREST))
    rgb = np.asarray(view, np.float32)
    tint = PALETTE[cls]
    alpha = np.where(cls > 0, 0.45, 0.0)[..., None]
    over = (rgb * (1 - alpha) + tint * alpha).astype(np.uint8)
    name = os.path.splitext(os.path.basename(path))[0]
    Image.fromarray(over).save(os.path.join(out, name + ".overlay.png"))
    report = {
        "input": {"file": path, "sha256": hashlib.sha256(data).hexdigest(), "width": w, "height": h},
        "fractions_of_scalp": [float(hist[c] / scalp) if scalp else 0.0 for c in range(1, 5)],
        "zones": zones,
    }
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(report, f)
    t["post"] = time.perf_counter() - t3
    t["total"] = time.perf_counter() - t0
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = sorted(os.path.join(a.photos, f) for f in os.listdir(a.photos)
                   if f.lower().endswith((".jpg", ".jpeg")) and ".overlay" not in f)
    # Default ONNX Runtime options: its own thread pool over all cores, one process.
    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    size, mean, std = contract(sess)
    started = time.perf_counter()
    stages = {k: [] for k in ("decode", "prepare", "infer", "post", "total")}
    for p in files:
        t = analyse(p, sess, size, mean, std, a.out)
        for k, v in t.items():
            stages[k].append(v * 1000)
    secs = time.perf_counter() - started
    result = {
        "photos": len(files),
        "seconds": secs,
        "photos_per_s": len(files) / secs,
        "median_ms": {k: statistics.median(v) for k, v in stages.items() if v},
    }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()

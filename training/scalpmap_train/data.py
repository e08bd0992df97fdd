"""Loads `scalpmap synth` renders and real photos into arrays at the model's input size."""

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .contract import DENSITY_UNIT, INPUT_SIZE, MEAN, STD


def prepare_photo(img: Image.Image, size=INPUT_SIZE) -> np.ndarray:
    """RGB uint8 HxWx3 at the model size by the contract's resize rule (area filter)."""
    return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def normalise(batch_uint8: np.ndarray) -> np.ndarray:
    """NHWC uint8 -> NCHW float32, normalised by the contract's mean and std."""
    x = batch_uint8.astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def load_synth(folder, size=INPUT_SIZE, every=1):
    """Photos, labels and density (in DENSITY_UNIT) of every `every`-th rendered item in `folder`
    (the hash covers the items loaded).

    Labels are downsampled by nearest sampling at pixel centres; density by area averaging.
    Returns (photos NxHxWx3 uint8, labels NxHxW uint8, density NxHxW float32, truths, sha256).
    """
    folder = Path(folder)
    truths = sorted(folder.glob("*.json"))[::every]
    n = len(truths)
    photos = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros((n, size, size), np.uint8)
    density = np.zeros((n, size, size), np.float32)
    digest = hashlib.sha256()
    meta = []
    for i, path in enumerate(truths):
        t = json.loads(path.read_text())
        files = t["files"]
        raw = (folder / files["photo"]).read_bytes()
        digest.update(raw)
        digest.update((folder / files["labels"]).read_bytes())
        photos[i] = prepare_photo(Image.open(folder / files["photo"]), size)
        lab = Image.open(folder / files["labels"])
        labels[i] = np.asarray(lab.resize((size, size), Image.Resampling.NEAREST))
        d = np.asarray(Image.open(folder / files["density"]), dtype=np.float32) / float(files["density_scale"])
        density[i] = np.asarray(Image.fromarray(d, mode="F").resize((size, size), Image.Resampling.BOX)) / DENSITY_UNIT
        meta.append(t)
    return photos, labels, density, meta, digest.hexdigest()


def load_photos(folder, size, every=1, limit=None):
    """Only the photos of every `every`-th rendered item in `folder` (the first `limit` of them),
    at `size` (for a model whose input is larger than the grid `load_synth` puts the truth on)."""
    folder = Path(folder)
    truths = sorted(folder.glob("*.json"))[::every][:limit]
    return np.stack([prepare_photo(Image.open(folder / json.loads(p.read_text())["files"]["photo"]), size) for p in truths])

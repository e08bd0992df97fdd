"""Evaluates the exported ONNX model; every figure in the model card comes from here.

- synthetic: per-class IoU and mIoU on renders from seeds never used in training, density MAE;
- real: on ../shared/real/uze-dev (skipped when absent), the Spearman correlation between the
  predicted (thinning + bare) / scalp fraction and the Norwood level, per view and over top-down
  plus back, next to a trivial baseline computed the same way; a contact sheet of predictions
  (written outside the repository, since it shows the real photos);
- speed: ms per image in ONNX Runtime and tract (median).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, stats

from . import contract
from .data import load_photos, load_synth, normalise, prepare_photo
from .real_labels import IGNORE, persons_labelled_in, read_rows
from .real_labels import mask as label_mask

# Colour-blind-safe palette (Okabe-Ito) for the contact sheet: background transparent.
PALETTE = np.array([[0, 0, 0], [0, 158, 115], [240, 228, 66], [213, 94, 0], [204, 121, 167]], np.uint8)


def session(path, threads=2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Averaged:
    """Soft voting: several models run as one session whose probabilities and density are the
    members' means (the members must share the input size)."""

    def __init__(self, paths, threads=2):
        self.members = [session(p, threads) for p in paths]
        if len({input_side(m) for m in self.members}) != 1:
            raise ValueError("the models of an ensemble must take the same input size")

    def get_inputs(self):
        return self.members[0].get_inputs()

    def run(self, names, feed):
        outs = [m.run(names, feed) for m in self.members]
        return [np.mean([o[k] for o in outs], axis=0) for k in range(len(outs[0]))]


def input_side(sess):
    """The side of the model's square input (fixed shape, from the ONNX graph); a multiple of the
    contract's grid, since `predict` averages the outputs down to it."""
    side = int(sess.get_inputs()[0].shape[-1])
    if side % contract.INPUT_SIZE:
        raise ValueError(f"model input {side} is not a multiple of the {contract.INPUT_SIZE} px grid")
    return side


def box_pool(a, f):
    """CxHxW averaged over f x f blocks."""
    c, h, w = a.shape
    return a.reshape(c, h // f, f, w // f, f).mean(axis=(2, 4))


def to_grid(a):
    """CxHxW model outputs on the contract's INPUT_SIZE grid: a larger model's averaged over
    blocks (its input a multiple of the grid, `input_side`), a 256 px model's as they are."""
    f = a.shape[-1] // contract.INPUT_SIZE
    return box_pool(a, f) if f > 1 else a


def predict(sess, photos_uint8):
    """Class map and density (hairs/cm²) for each NHWC uint8 photo at the model's input size, one
    at a time (batch 1), on the contract's INPUT_SIZE grid: a model with a larger input has its
    probabilities and density averaged over blocks first, so every figure compares pixel for
    pixel with the truth and labels on that grid, and with the 256 px models."""
    classes, dens = [], []
    for p in photos_uint8:
        probs, d = sess.run(["probs", "density"], {"image": normalise(p[None])})
        probs, d = to_grid(probs[0]), to_grid(d[0])
        classes.append(probs.argmax(0).astype(np.uint8))
        dens.append(d[0] * contract.DENSITY_UNIT)
    return np.stack(classes), np.stack(dens)


def model_photos(sess, folder, photos, every=1):
    """The photos of every `every`-th render in `folder` at the model's input size: `photos`
    (those renders on the grid) when that is it."""
    side = input_side(sess)
    return photos if side == contract.INPUT_SIZE else load_photos(folder, side, every)


# The classes a loss fraction counts as loss.
LOSS = [contract.CLASSES.index("thinning"), contract.CLASSES.index("bare")]


def confusion(pred, truth, k=len(contract.CLASSES)):
    """Pixel counts, rows truth and columns prediction."""
    return np.bincount(truth.ravel().astype(np.int64) * k + pred.ravel(), minlength=k * k).reshape(k, k)


def ious(cm):
    """Per-class IoU from a confusion matrix; NaN for a class neither drawn nor predicted."""
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {c: float(v) for c, v in zip(contract.CLASSES, iou)}


def accuracy(cm):
    """Share of a confusion matrix's pixels on its diagonal."""
    return float(np.trace(cm) / max(int(cm.sum()), 1))


def ious_of_present(cm, present):
    """Per-class IoU of the classes marked present (the classes a label set names)."""
    return {c: v for j, (c, v) in enumerate(ious(cm).items()) if present[j]}


def iou_table(pred, truth):
    cm = confusion(pred, truth)
    return ious(cm), cm


def loss_fraction(classes):
    """(thinning + bare) / scalp pixels, scalp = every class but background."""
    scalp = (classes > 0).sum()
    return float(np.isin(classes, LOSS).sum() / scalp) if scalp else 0.0


def baseline_fraction(photo_uint8):
    """The trivial baseline: skin-coloured, smooth pixels in the central half of the photo."""
    h, w, _ = photo_uint8.shape
    c = photo_uint8[h // 4: 3 * h // 4, w // 4: 3 * w // 4].astype(np.float32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    skin = (cr > 135) & (cr < 180) & (cb > 80) & (cb < 135) & (y > 40)
    mean = ndimage.uniform_filter(y, 5)
    sq = ndimage.uniform_filter(y * y, 5)
    smooth = np.sqrt(np.maximum(sq - mean * mean, 0)) < 6.0
    return float((skin & smooth).mean())


def synthetic(sess, folder, face_stage=None, face_accept=None):
    """Figures on unseen renders; with `face_stage` (the face detector's ONNX file) the side
    views' lower face is set to background first, as the product does."""
    photos, labels, density, meta, _ = load_synth(folder)
    pred, dens = predict(sess, model_photos(sess, folder, photos))
    if face_stage:
        from . import facedet

        run = facedet.onnx_runner(face_stage)
        for i, m in enumerate(meta):
            if m["view"] in facedet.SIDE_VIEWS and photos[i].shape[0] == 2 * facedet.SIZE:
                pred[i][facedet.region(run, photos[i], face_accept)[0]] = 0
    ious, cm = iou_table(pred, labels)
    scalp = labels > 0
    true_frac = [loss_fraction(l) for l in labels]
    pred_frac = [loss_fraction(p) for p in pred]
    scarred = np.array([(l == contract.CLASSES.index("scar")).any() for l in labels])
    found = np.array([has_scar_region(p) for p in pred])
    return {
        "images": len(photos),
        "seeds": sorted({m["seed"] for m in meta}),
        "iou": ious,
        "miou": float(np.nanmean(list(ious.values()))),
        "pixel_accuracy": float(np.diag(cm).sum() / cm.sum()),
        "confusion_rows_truth_cols_pred": cm.tolist(),
        "density_mae_per_cm2_on_scalp": float(np.abs(dens[scalp] - density[scalp] * contract.DENSITY_UNIT).mean()),
        "loss_fraction_mae": float(np.mean(np.abs(np.array(true_frac) - np.array(pred_frac)))),
        "loss_fraction_pearson": float(stats.pearsonr(true_frac, pred_frac)[0]),
        # What a plan sees: photos where a scar region survives the analyser's clean-up.
        "scar_photos": {"with_scar": int(scarred.sum()), "found": int((found & scarred).sum()),
                        "without_scar": int((~scarred).sum()), "false": int((found & ~scarred).sum())},
    }


def fit(sess, folder, every=10):
    """The same IoU figures on every `every`-th render of the training folder: a model that scores
    no better on renders it trained on than on unseen ones underfits (more renders cannot help it;
    capacity and compute can), one that scores much better overfits."""
    photos, labels, _, _, _ = load_synth(folder, every=every)
    pred, _ = predict(sess, model_photos(sess, folder, photos, every))
    iou, _ = iou_table(pred, labels)
    return {"images": len(pred), "every": every, "iou": iou, "miou": float(np.nanmean(list(iou.values())))}


def real(sess, folder, sheet_path, held_out_of=None, label_files=(), second_labels=None):
    """Real-photo figures; with `held_out_of` (a real_labels.json the model trained on), only
    on the men that file does not label, so no figure comes from a photo the model saw. With
    `label_files`, also the agreement with the coarse labels on the photos they cover, and with
    `second_labels` (a second labelling pass) how repeatable those labels are."""
    rows = read_rows(folder)
    excluded = persons_labelled_in(held_out_of, rows) if held_out_of else []
    rows = [r for r in rows if r["person"] not in excluded]
    def load(size):
        return np.stack([prepare_photo(Image.open(Path(folder) / r["file"]), size) for r in rows])

    # Labels, baseline and contact sheet live on the grid; the model reads its own input size.
    photos = load(contract.INPUT_SIZE)
    side = input_side(sess)
    pred, _ = predict(sess, photos if side == contract.INPUT_SIZE else load(side))
    views = [r["view"].lower() for r in rows]
    norwood = np.array([int(r["norwood"]) for r in rows])
    ours = np.array([loss_fraction(p) for p in pred])
    base = np.array([baseline_fraction(p) for p in photos])
    persons = np.array([r["person"] for r in rows])
    result = {"photos": len(rows), "persons": len(set(persons)), "excluded_persons": excluded,
              **correlations(ours, base, norwood, views, persons),
              "photos_with_scar": sum(has_scar_region(p) for p in pred),
              "per_photo": [{"file": r["file"], "person": r["person"], "view": v, "norwood": int(n),
                             "loss_fraction": float(o), "baseline": float(b)}
                            for r, v, n, o, b in zip(rows, views, norwood, ours, base)]}
    first = read_labels(label_files)
    agreement = against_labels(pred, photos, rows, base, first) if first else None
    if agreement:
        result["against_labels"] = agreement
    if first and second_labels:
        result["labels_repeatability"] = repeatability(pred, photos, rows, first, read_labels([second_labels]))
    if sheet_path:
        contact_sheet(photos, pred, rows, ours, sheet_path)
    return result


# The analyser's clean-up folds regions under 0.05 % of the map into their surroundings
# (analyze.rs, min_region_fraction when a photo has no scale).
MIN_REGION = round(0.0005 * contract.INPUT_SIZE ** 2)


def has_scar_region(classes):
    """Whether a class map keeps a scar region the analyser's clean-up would not remove. None of
    the real men is known to have a scar, so on them every such photo is a false scar, and one
    adds a session to the patient's plan."""
    regions, n = ndimage.label(classes == contract.CLASSES.index("scar"))
    return bool(n) and int(np.bincount(regions.ravel())[1:].max()) >= MIN_REGION


def read_labels(files):
    """The photos' entries of one or more coarse label files, merged."""
    spec = {}
    for f in files:
        spec.update(json.loads(Path(f).read_text())["photos"])
    return spec


def against_labels(pred, photos, rows, base, spec):
    """The model against the coarse real labels (real_labels.py), on the labelled pixels of the
    evaluated photos that some label file covers: per-class IoU, the per-photo error of the
    loss fraction, and the same Spearman figures computed from the labels' own loss fractions.
    The last is what a model that drew exactly the labels would score: a ceiling that the
    Norwood level, a per-man grade from five views, puts on a per-photo rank figure."""
    keep = [i for i, r in enumerate(rows) if r["file"] in spec]
    if not keep:
        return None
    by_view = {}
    ours, truth = [], []
    for i in keep:
        lab = label_mask(photos[i], spec[rows[i]["file"]])
        known = lab != IGNORE
        view = rows[i]["view"].lower()
        by_view[view] = by_view.get(view, 0) + confusion(pred[i][known], lab[known])
        ours.append(labelled_loss_fraction(pred[i][known], lab[known] > 0))
        truth.append(labelled_loss_fraction(lab[known], lab[known] > 0))
    cm = sum(by_view.values())
    iou = ious_of_present(cm, cm.sum(1) > 0)  # scars are never labelled on these photos
    ours, truth = np.array(ours), np.array(truth)
    sub = lambda key: np.array([rows[i][key] for i in keep])
    ceiling = correlations(truth, base[keep], sub("norwood").astype(int), np.char.lower(sub("view")), sub("person"))
    return {"photos": len(keep), "persons": len(set(sub("person"))),
            "labelled_pixel_share": float(cm.sum() / (len(keep) * pred.shape[1] * pred.shape[2])),
            "iou": iou, "miou_labelled_classes": float(np.mean(list(iou.values()))),
            "pixel_accuracy": accuracy(cm), "confusion": cm.tolist(),
            "loss_fraction_mae": float(np.mean(np.abs(ours - truth))),
            "loss_fraction_bias": float(np.mean(ours - truth)),
            "per_view": {v: error_shares(m) for v, m in sorted(by_view.items())},
            "labels_as_model": ceiling}


def repeatability(pred, photos, rows, first, second):
    """How repeatable the coarse labels are: a second labelling pass (`second`, made without
    looking at the first) against the first, on the pixels both passes name, over the evaluated
    photos it covers; and the model against the first pass on the same pixels, for comparison.
    The label figures cannot tell models apart more finely than the labels agree with themselves."""
    cm, model_cm, per_photo = 0, 0, []
    for i, r in enumerate(rows):
        if r["file"] not in second:
            continue
        a, b = label_mask(photos[i], first[r["file"]]), label_mask(photos[i], second[r["file"]])
        both = (a != IGNORE) & (b != IGNORE)
        c = confusion(b[both], a[both])
        cm = cm + c
        model_cm = model_cm + confusion(pred[i][both], a[both])
        per_photo.append({"file": r["file"], "both_labelled_share": float(both.mean()), "agreement": accuracy(c),
                          "loss_fraction_first": labelled_loss_fraction(a[both], a[both] > 0),
                          "loss_fraction_second": labelled_loss_fraction(b[both], a[both] > 0)})
    if not per_photo:
        return None
    present = cm.sum(1) > 0  # the classes the first pass names on these pixels

    def figures(m):
        iou = ious_of_present(m, present)
        return {"agreement": accuracy(m), "iou": iou, "miou": float(np.mean(list(iou.values())))}

    return {"photos": len(per_photo), **figures(cm), "confusion_rows_second_cols_first": cm.tolist(),
            "per_photo": per_photo, "model_on_same_pixels": figures(model_cm)}


def error_shares(cm):
    """The errors that move the loss fraction, as shares of a confusion matrix's labelled
    pixels: background (face, neck, backdrop) read as loss, loss read as hair, and the reverse."""
    tot = max(int(cm.sum()), 1)
    bg, hair = contract.CLASSES.index("background"), contract.CLASSES.index("hair")
    return {"pixel_accuracy": accuracy(cm),
            "background_as_loss": float(cm[bg, LOSS].sum() / tot),
            "loss_as_hair": float(cm[LOSS, hair].sum() / tot),
            "hair_as_loss": float(cm[hair, LOSS].sum() / tot),
            "background_as_hair": float(cm[bg, hair] / tot)}


def labelled_loss_fraction(classes, scalp_truth):
    """(thinning + bare) share of the pixels the labels call scalp, as `loss_fraction` counts
    loss: the model's fraction measured on the labels' scalp, so both share one denominator."""
    n = int(scalp_truth.sum())
    return float(np.isin(classes[scalp_truth], LOSS).sum() / n) if n else 0.0


def correlations(ours, base, norwood, views, persons):
    """Spearman of our loss fraction and of the baseline against the Norwood level, per view,
    over top-down + back and over all views, each with a 95 % interval over the men."""
    views = np.asarray(views)

    def rho(mask):
        r = float(stats.spearmanr(ours[mask], norwood[mask])[0])
        b = float(stats.spearmanr(base[mask], norwood[mask])[0])
        lo, hi = bootstrap_interval(ours[mask], norwood[mask], persons[mask])
        return {"spearman": r, "spearman_95": [lo, hi], "baseline_spearman": b, "n": int(mask.sum())}

    return {"per_view": {v: rho(views == v) for v in sorted(set(views))},
            "top_down_and_back": rho(np.isin(views, ["top-down", "back"])),
            "all_views": rho(np.ones(len(views), bool))}


def pooled(evals):
    """The real-photo figures over the held-out photos of several evaluations together: for a
    cross-check where each model is scored only on the men it did not train on."""
    rows = [p for e in evals for p in e["real"]["per_photo"]]
    files = [p["file"] for p in rows]
    if len(set(files)) != len(files):
        raise ValueError("a photo appears in two evaluations: the held-out sets overlap")
    col = lambda k: np.array([p[k] for p in rows])
    return {"photos": len(rows), "persons": len(set(col("person"))),
            **correlations(col("loss_fraction"), col("baseline"), col("norwood"), col("view"), col("person"))}


def bootstrap_interval(pred, level, persons, draws=2000, seed=0):
    """95 % interval of the Spearman correlation when the men are resampled with replacement
    (all of a man's photos together): with 21 men, how much the figure owes to which men
    happened to be photographed."""
    rng = np.random.default_rng(seed)
    ids = np.unique(persons)
    rows_of = {p: np.nonzero(persons == p)[0] for p in ids}
    values = []
    for _ in range(draws):
        pick = np.concatenate([rows_of[p] for p in rng.choice(ids, len(ids))])
        if len(np.unique(level[pick])) > 1 and len(np.unique(pred[pick])) > 1:
            values.append(stats.spearmanr(pred[pick], level[pick])[0])
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def contact_sheet(photos, pred, rows, ours, path, cell=160):
    order = np.lexsort(([r["view"] for r in rows], [int(r["norwood"]) for r in rows]))
    cols = 10
    n = len(order)
    sheet = Image.new("RGB", (cols * cell, ((n + cols // 2 - 1) // (cols // 2)) * cell))
    for k, i in enumerate(order):
        ph = Image.fromarray(photos[i]).resize((cell, cell))
        ov = photos[i].astype(np.float32)
        m = pred[i] > 0
        ov[m] = 0.45 * ov[m] + 0.55 * PALETTE[pred[i][m]]
        ovi = Image.fromarray(ov.astype(np.uint8)).resize((cell, cell))
        x, y = (k % (cols // 2)) * 2 * cell, (k // (cols // 2)) * cell
        sheet.paste(ph, (x, y))
        sheet.paste(ovi, (x + cell, y))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def timings(path, runs=20):
    sessions = {threads: session(path, threads) for threads in (1, 2)}
    side = input_side(sessions[1])
    x = np.zeros((1, 3, side, side), np.float32)
    out = {}
    for threads, s in sessions.items():
        s.run(None, {"image": x})
        t = []
        for _ in range(runs):
            t0 = time.perf_counter()
            s.run(None, {"image": x})
            t.append((time.perf_counter() - t0) * 1000)
        out[f"onnxruntime_ms_{threads}_threads"] = float(np.median(t))
    import tract

    tm = tract.onnx().load(path).into_model().into_runnable()
    tm.run([x])
    t = []
    for _ in range(max(5, runs // 2)):
        t0 = time.perf_counter()
        tm.run([x])
        t.append((time.perf_counter() - t0) * 1000)
    out["tract_ms"] = float(np.median(t))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", nargs="+", default=None,
                    help="instead of evaluating: pool the real-photo results of these eval.json files")
    ap.add_argument("--model", nargs="+", help="the ONNX model; several: their soft-voting ensemble")
    ap.add_argument("--val")
    ap.add_argument("--real", default="../../shared/real/uze-dev")
    ap.add_argument("--sheet", default="out/real_contact_sheet.png")
    ap.add_argument("--held-out-of", default=None,
                    help="real_labels.json the model trained on: real figures only on the men it does not label")
    ap.add_argument("--labels", nargs="*", default=["real_labels.json", "real_labels_other.json"],
                    help="coarse real labels to compare with (on held-out men only); none to skip")
    ap.add_argument("--second-labels", default="real_labels_second.json",
                    help="a second labelling pass over some real photos: how repeatable the labels are")
    ap.add_argument("--fit", default=None, help="the training renders: also score every 10th of them (fit vs unseen)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.pool:
        result = pooled([json.load(open(p)) for p in a.pool])
        print(json.dumps(result, indent=1))
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
        return
    if not (a.model and a.val):
        ap.error("--model and --val are required unless --pool is given")
    sess = session(a.model[0]) if len(a.model) == 1 else Averaged(a.model)
    result = {"synthetic": synthetic(sess, a.val)}
    if a.fit:
        result["fit"] = fit(sess, a.fit)
    if (Path(a.real) / "labels.csv").exists():
        label_files = [f for f in a.labels if Path(f).exists()]
        second = a.second_labels if Path(a.second_labels).exists() else None
        result["real"] = real(sess, a.real, a.sheet, a.held_out_of, label_files, second)
    else:
        print(f"real photos not found at {a.real}: skipping the real-photo check")
    # An ensemble runs each member once per photo: its time is the sum of theirs.
    each = [timings(m) for m in a.model]
    result["speed"] = {k: float(sum(t[k] for t in each)) for k in each[0]}
    if len(a.model) > 1:
        result["members"] = a.model
    print(json.dumps({k: v for k, v in result.items()}, indent=1, default=str)[:4000])
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

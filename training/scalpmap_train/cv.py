"""Person-level cross-validation on the development photos: the only source of real-photo figures.

The 21 men of ../shared/real/uze-dev are split into 7 fixed folds of 3 by a rule (`folds`: the
men sorted by Norwood level and name, dealt round-robin, so every fold spans the levels). For a
recipe, `train` fits one model per fold on the renders plus the real labels of the other 18 men,
and one on all 21 (the model that ships). `score` then scores every photo with the model that did
not see its man (or, for a model that never trained on real photos, with that one model), and
reports per view and over all views, each with a 95 % interval from resampling the men:

- the Spearman of the loss fraction against the Norwood level;
- pixel agreement with the coarse labels (real_labels*.json): mean IoU over background, hair,
  thinning and bare, pixel accuracy, the share of labelled background read as loss (thinning,
  bare or scar), the share of labelled loss read as hair, the loss-fraction error;
- patient staging through `scalpmap plan` itself, with the Norwood cut points fit on the other
  folds' men only (`fit_cut_points`), never on the men scored: exact, within one level, Spearman.

Beside each figure, the same figure for the skin-colour rule (`skin_rule`) and, for staging, the
best constant answer (fit on the other folds too). Every photo goes on a contact sheet
(out/, never committed: it shows the real photos).

python -m scalpmap_train.cv folds
python -m scalpmap_train.cv train --recipe selfie-real --data data/train --out out/cv-selfie-real
python -m scalpmap_train.cv score --models out/cv-selfie-real --out out/cv-selfie-real/cv.json
python -m scalpmap_train.cv score --model ../models/scalpmap-seg.onnx --out out/cv-0.1.1/cv.json
"""

import argparse
import csv
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats

from . import contract
from .data import prepare_photo
from .evaluate import confusion, labelled_loss_fraction, loss_fraction, read_labels
from .real_labels import IGNORE, photos_present, read_rows
from .real_labels import mask as label_mask

N_FOLDS = 7
LABEL_FILES = ("real_labels.json", "real_labels_other.json")
# The figures' classes: scars are never labelled on these photos.
LABELLED = ["background", "hair", "thinning", "bare"]
BG, HAIR = contract.CLASSES.index("background"), contract.CLASSES.index("hair")
LOSS = [contract.CLASSES.index(c) for c in ("thinning", "bare", "scar")]
# The loss fraction (evaluate.loss_fraction) counts thinning and bare, as the report's
# loss_fraction_of_scalp does; "read as loss" also counts scar.
SCALP_VIEWS = {"Back": "back", "Front": "front", "Left": "left", "Right": "right", "Top-Down": "top"}
ROMAN = {"I": 1, "II": 2, "III": 3, "III vertex": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}
# The default rules' Norwood cut points on the top view's fraction to cover (rules.toml): a
# boundary no training man falls on either side of keeps its default.
DEFAULT_CUTS = [0.10, 0.20, 0.35, 0.50, 0.65, 0.80]

# Recipes are named and fixed, so every fold of one recipe trains the same way.
RECIPES = {
    # MediaPipe's selfie body, fine-tuned on the renders and the training folds' real labels.
    "selfie-real": {"arch": "selfie", "steps": 600, "batch": 12, "crop": 192, "lr": 0.002, "lr_body": 0.001,
                    "real_p": 0.5, "class_weights": [0.6, 1.0, 1.6, 1.2, 3.0]},
}
# The same with a tenth of each batch generated no-head photos (walls, floors, noise, textiles).
RECIPES["selfie-real-neg"] = dict(RECIPES["selfie-real"], negatives=0.1)
# Twice the steps (DECISIONS.md run 3): the renders are seen about twice each instead of once.
RECIPES["selfie-real-long"] = dict(RECIPES["selfie-real"], steps=1200)
# E with soft Dice beside cross-entropy (DECISIONS.md run 9): weighs thinning by its overlap.
RECIPES["selfie-real-long-dice"] = dict(RECIPES["selfie-real-long"], dice=0.5)
# E with half the weight on hair (DECISIONS.md run 13): labelled loss is read as hair most.
RECIPES["selfie-real-long-hair05"] = dict(RECIPES["selfie-real-long"], class_weights=[0.6, 0.5, 1.6, 1.2, 3.0])
# M with 70 % of each batch from the labelled real photos (DECISIONS.md run 15).
RECIPES["selfie-real-long-hair05-real07"] = dict(RECIPES["selfie-real-long-hair05"], real_p=0.7)
# M with a texture branch of 8 channels on the photo beside the body's features (DECISIONS.md run 16).
RECIPES["selfie-real-long-hair05-tex8"] = dict(RECIPES["selfie-real-long-hair05"], arch="selfie-tex8")
# M reading the photo at 512 px instead of 256, with the same 192 px crops (DECISIONS.md run 17).
RECIPES["selfie-real-long-hair05-in512"] = dict(RECIPES["selfie-real-long-hair05"], input_size=512)
# M with 224 px crops instead of 192: more of the head in each crop (DECISIONS.md run 18).
RECIPES["selfie-real-long-hair05-crop224"] = dict(RECIPES["selfie-real-long-hair05"], crop=224)
# Q with 30 % of each batch from the real photos instead of 50 % (DECISIONS.md runs 20-21): it
# shortened Q's render tail and cost the real maps.
RECIPES["selfie-real-long-hair05-crop224-real03"] = dict(RECIPES["selfie-real-long-hair05-crop224"], real_p=0.3)


def folds(rows):
    """{person: fold}: men sorted by (Norwood level, name) and dealt round-robin into N_FOLDS."""
    men = sorted({(int(r["norwood"]), r["person"]) for r in rows})
    return {p: i % N_FOLDS for i, (_, p) in enumerate(men)}


def skin_colour(photo_uint8):
    """The skin-colour rule's colour test alone, per pixel: R > 95, G > 40, B > 20, R > G, R > B,
    R - min(G, B) > 15."""
    p = photo_uint8.astype(np.float32)
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    return (r > 95) & (g > 40) & (b > 20) & (r > g) & (r > b) & (r - np.minimum(g, b) > 15)


def skin_rule(photo_uint8):
    """The skin-colour rule, a per-pixel mask on the 256x256 photo: R > 95, G > 40, B > 20,
    R > G, R > B, R - min(G, B) > 15 and a luminance gradient magnitude below 12 (central
    differences on 0-255 luminance), inside the central 160x160 only."""
    p = photo_uint8.astype(np.float32)
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    gy, gx = np.gradient(y)
    rule = skin_colour(photo_uint8) & (np.hypot(gx, gy) < 12)
    h, w = y.shape
    centre = np.zeros_like(rule)
    y0, x0 = (h - 160) // 2, (w - 160) // 2
    centre[y0:y0 + 160, x0:x0 + 160] = True
    return rule & centre, centre


def skin_fraction(photo_uint8):
    """The rule's loss fraction: the share of the central 160x160 that is smooth skin."""
    rule, centre = skin_rule(photo_uint8)
    return float(rule.sum() / centre.sum())


def skin_map(photo_uint8):
    """The rule as a class map, for the pixel figures: smooth skin in the centre bare, the rest
    of the centre hair, outside it background."""
    rule, centre = skin_rule(photo_uint8)
    out = np.full(rule.shape, BG, np.uint8)
    out[centre] = HAIR
    out[rule] = contract.CLASSES.index("bare")
    return out


def pixel_figures(cm):
    """Agreement of a confusion matrix (rows labels, columns prediction) over the labelled classes."""
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - inter
    lab = [contract.CLASSES.index(c) for c in LABELLED]
    iou = {contract.CLASSES[i]: float(inter[i] / union[i]) if union[i] else float("nan") for i in lab}
    labelled_loss = cm[[contract.CLASSES.index("thinning"), contract.CLASSES.index("bare")]]
    return {"miou": float(np.nanmean(list(iou.values()))), "iou": iou,
            "pixel_accuracy": float(inter.sum() / max(cm.sum(), 1)),
            "background_read_as_loss": float(cm[BG, LOSS].sum() / max(cm[BG].sum(), 1)),
            "loss_read_as_hair": float(labelled_loss[:, HAIR].sum() / max(labelled_loss.sum(), 1))}


def interval(values_of_men, stat, draws=2000, seed=0):
    """95 % interval of `stat` over the men resampled with replacement (all a man's rows together)."""
    rng = np.random.default_rng(seed)
    men = sorted(values_of_men)
    out = []
    for _ in range(draws):
        pick = [values_of_men[men[i]] for i in rng.integers(0, len(men), len(men))]
        v = stat(pick)
        if v is not None and np.isfinite(v):
            out.append(v)
    if not out:
        return [float("nan"), float("nan")]
    return [float(v) for v in np.percentile(out, [2.5, 97.5])]


def spearman(pairs):
    """Spearman of (score, level) pairs; None when either side is constant."""
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    if len(pairs) < 3 or len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return None
    return float(stats.spearmanr(a, b)[0])


def rank_figures(per_photo, key):
    """Spearman of a per-photo fraction against Norwood per view and over all views, each with
    its interval over men."""
    out = {}
    for view in sorted({p["view"] for p in per_photo}) + ["all"]:
        rows = [p for p in per_photo if view in ("all", p["view"])]
        by_man = {}
        for p in rows:
            by_man.setdefault(p["person"], []).append((p[key], p["norwood"]))
        flat = lambda groups: spearman([x for g in groups for x in g])
        out[view] = {"spearman": spearman([(p[key], p["norwood"]) for p in rows]),
                     "interval": interval(by_man, flat), "photos": len(rows)}
    return out


def agreement_figures(per_photo, key):
    """Pixel figures per view and over all views from the per-photo confusion matrices under
    `key`, each with its interval over men; plus the loss-fraction error against the labels."""
    out = {}
    for view in sorted({p["view"] for p in per_photo}) + ["all"]:
        rows = [p for p in per_photo if view in ("all", p["view"]) and key in p]
        by_man = {}
        for p in rows:
            by_man.setdefault(p["person"], []).append(p)
        total = lambda groups: sum(np.array(p[key]["confusion"]) for g in groups for p in g)
        figs = pixel_figures(total(by_man.values()))
        for name in ("miou", "background_read_as_loss", "loss_read_as_hair", "pixel_accuracy"):
            figs[name + "_interval"] = interval(by_man, lambda g, n=name: pixel_figures(total(g))[n])
        errs = lambda groups: float(np.mean([p[key]["loss_fraction_error"] for g in groups for p in g]))
        figs["loss_fraction_error"] = errs(by_man.values())
        figs["loss_fraction_error_interval"] = interval(by_man, errs)
        figs["photos"] = len(rows)
        out[view] = figs
    return out


def labelled_figures(pred, lab):
    """One photo's confusion against its labels (labelled pixels only) and its loss-fraction
    error, both fractions measured on the pixels the labels call scalp."""
    known = lab != IGNORE
    p, t = pred[known], lab[known]
    scalp = t != BG
    return {"confusion": confusion(p, t).tolist(),
            "loss_fraction_error": abs(labelled_loss_fraction(p, scalp) - labelled_loss_fraction(t, scalp))}


# ---- staging ---------------------------------------------------------------------------------

def fit_cut_points(pairs, default=DEFAULT_CUTS):
    """Norwood cut points on the top view's fraction to cover, from (fraction, level) pairs.

    The absolute staging error is a sum over the six boundaries of "stage and label on different
    sides of it", and which side a patient's stage falls on depends only on that boundary's cut
    point, so each cut point is fit alone: the one that puts the fewest men on the wrong side
    (the middle of the best gap). A boundary with no man on one side keeps its default; the
    cut points are then made non-decreasing."""
    x = np.array([p[0] for p in pairs], float)
    y = np.array([p[1] for p in pairs], int)
    cuts = []
    for j, d in enumerate(default):
        above = y >= j + 2  # stage j+2 or more, in 1-based Norwood levels
        if above.all() or not above.any():
            cuts.append(d)
            continue
        cand = np.unique(np.concatenate([[0.0, 1.0001], (np.sort(x)[1:] + np.sort(x)[:-1]) / 2]))
        errors = np.array([((x >= c) != above).sum() for c in cand])
        best = cand[errors == errors.min()]
        cuts.append(float(np.median(best)))
    return [float(v) for v in np.maximum.accumulate(cuts)]


def stage_of(frac, cuts):
    return int(1 + sum(frac >= c for c in cuts))


def best_constant(levels):
    """The constant stage with the most men within one level, ties to the smallest mean error."""
    levels = np.array(levels)
    return min(range(1, 8), key=lambda c: (-(np.abs(levels - c) <= 1).sum(), np.abs(levels - c).mean()))


def staging_figures(pairs_by_man):
    """Exact, within one level and Spearman over (estimate, label) per man, with intervals."""
    def exact(g):
        return float(np.mean([e == l for e, l in g]))

    def within(g):
        return float(np.mean([abs(e - l) <= 1 for e, l in g]))

    vals = {m: [p] for m, p in pairs_by_man.items()}
    flat = lambda groups: [p for g in groups for p in g]
    return {"men": len(pairs_by_man),
            "exact": exact(pairs_by_man.values()), "exact_interval": interval(vals, lambda g: exact(flat(g))),
            "within_one": within(pairs_by_man.values()), "within_one_interval": interval(vals, lambda g: within(flat(g))),
            "spearman": spearman(list(pairs_by_man.values())),
            "spearman_interval": interval(vals, lambda g: spearman(flat(g)))}


def run_plan(binary, model, rows, real, out, rules=None, sex=None):
    """`scalpmap plan` on these photos (one patient per man, views from labels.csv); returns
    {man: patient report}. Run again in the same `out` (new rules, same model), it reuses the
    photos' reports (`--resume`) and only plans again. `sex` ("m"): the manifest gives it for
    every man (crate 0.3.1 and later), so the stage is on the Norwood scale whatever the pattern."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient", "view", "file"] + (["sex"] if sex else []))
        for r in rows:
            w.writerow([r["person"], SCALP_VIEWS[r["view"]], os.path.abspath(Path(real) / r["file"])] + ([sex] if sex else []))
    # The manifest names the photos where they are, outside its own folder: allowed on purpose.
    cmd = [binary, "plan", "--manifest", str(manifest), "--out", str(out / "plan"), "--model", str(model), "--jobs", "2",
           "--resume", "--allow-any-path"]
    if rules:
        cmd += ["--rules", str(rules)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    # Every photo must be planned: a refused or failed photo would silently drop a man.
    summary = out / "plan" / "summary.json"
    failed = json.loads(summary.read_text())["failed"] if summary.exists() else None
    if done.returncode != 0 or failed:
        raise RuntimeError(f"scalpmap plan failed ({done.returncode}, {failed} photos failed): {done.stderr[-2000:]}")
    reports = {}
    for p in sorted((out / "plan" / "patients").glob("*.json")):
        r = json.loads(p.read_text())
        reports[r["patient"]] = r
    return reports


def top_fraction(report):
    """The top view's fraction to cover in a patient report (the number the Norwood cut points
    are set on), or None without a top view."""
    for v in report["fusion"]["views"] if "fusion" in report else report["assessment"]["views"]:
        if v.get("view") == "top":
            return float(v["to_cover_fraction"])
    return None


def stage_number(report):
    s = report["assessment"]["stage"]
    return ROMAN.get(s["stage"]) if s["scale"] == "hamilton-norwood" else None


def staging(binary, model_of_fold, rows, real, fold_of, work, sex=None):
    """Staging through `scalpmap plan`: first each fold's men planned by their fold's model with
    the default rules (their out-of-fold fractions to cover), then, for each fold, cut points fit
    on the other folds' men, and the fold planned again with them (`sex`: see run_plan)."""
    men = sorted({r["person"] for r in rows})
    level = {r["person"]: int(r["norwood"]) for r in rows}
    frac = {}
    for k in range(N_FOLDS):
        fold_rows = [r for r in rows if fold_of[r["person"]] == k]
        for man, rep in run_plan(binary, model_of_fold(k), fold_rows, real, Path(work) / f"fold{k}-default", sex=sex).items():
            frac[man] = top_fraction(rep)
    est, const_est, cuts_of = {}, {}, {}
    for k in range(N_FOLDS):
        train = [m for m in men if fold_of[m] != k]
        cuts = fit_cut_points([(frac[m], level[m]) for m in train if frac[m] is not None])
        cuts_of[k] = cuts
        rules = Path(work) / f"fold{k}-rules.toml"
        rules.write_text("# Norwood cut points fit on the other folds' men (cv.fit_cut_points)\n[stage]\n"
                         f"norwood_top_upper = [{', '.join(f'{c:.4f}' for c in cuts)}]\n")
        fold_rows = [r for r in rows if fold_of[r["person"]] == k]
        for man, rep in run_plan(binary, model_of_fold(k), fold_rows, real, Path(work) / f"fold{k}-default", rules, sex).items():
            est[man] = stage_number(rep)
        c = best_constant([level[m] for m in train])
        for m in men:
            if fold_of[m] == k:
                const_est[m] = c
    # A Ludwig answer for a man labelled Norwood is wrong by at least its level: scored as 1.
    pairs = {m: (est[m] if est.get(m) is not None else 1, level[m]) for m in men}
    return {"sex_given": sex, "model": staging_figures(pairs), "best_constant": staging_figures({m: (const_est[m], level[m]) for m in men}),
            "not_norwood": sorted(m for m in men if est.get(m) is None),
            "cut_points_per_fold": cuts_of,
            "cut_points_all_men": fit_cut_points([(frac[m], level[m]) for m in men if frac[m] is not None]),
            "per_man": {m: {"level": level[m], "estimate": pairs[m][0], "top_fraction": frac[m], "fold": fold_of[m]} for m in men}}


def skin_staging(per_photo, fold_of):
    """The skin rule staged the same way (its top-view fraction, cut points fit on the other
    folds), for comparison; computed here, not by `scalpmap plan`."""
    top = {p["person"]: (p["skin_fraction"], p["norwood"]) for p in per_photo if p["view"] == "top"}
    pairs = {}
    for m, (f, lv) in top.items():
        cuts = fit_cut_points([v for n, v in top.items() if fold_of[n] != fold_of[m]])
        pairs[m] = (stage_of(f, cuts), lv)
    return staging_figures(pairs)


# ---- scoring ---------------------------------------------------------------------------------

def class_map(sess, photo_uint8, mirror=False):
    """The class map the analyser draws: the most probable class, without scar when the model's
    metadata switches scar detection off (as `scalpmap analyze` does); with `mirror`, from the mean
    of the probabilities on the photo and on its mirror image (DECISIONS.md run 12). `photo_uint8`
    is at the model's input size; a larger model's probabilities are averaged down to the 256 px
    grid first (`evaluate.predict`), so its map compares pixel for pixel with the labels."""
    from .data import normalise
    from .evaluate import to_grid

    probs = sess.run(["probs"], {"image": normalise(photo_uint8[None])})[0][0]
    if mirror:
        flipped = sess.run(["probs"], {"image": normalise(np.ascontiguousarray(photo_uint8[None, :, ::-1]))})[0][0]
        probs = (probs + flipped[:, :, ::-1]) / 2
    probs = to_grid(probs)
    if sess.get_modelmeta().custom_metadata_map.get("scalpmap.scar_detection") == "off":
        probs[contract.CLASSES.index("scar")] = -1.0
    return probs.argmax(0).astype(np.uint8)


def score(model_of_fold, real, label_files, binary, work, sheet=None, face_stage=None, mirror=False, face_accept=None,
          sex=None):
    """`face_stage`: the face detector's ONNX file; the lower face is then set to background on
    side views, as `scalpmap analyze` does (facedet.py, DECISIONS.md run 11), for faces scoring at
    least `face_accept` (default facedet.ACCEPT)."""
    from .evaluate import contact_sheet, input_side, session

    rows = read_rows(real)
    fold_of = folds(rows)
    spec = read_labels(label_files)
    photos = np.stack([prepare_photo(Image.open(Path(real) / r["file"])) for r in rows])
    pred = np.zeros(photos.shape[:3], np.uint8)
    sessions = {}
    # Labels, face stage, baseline and sheet stay on the 256 px grid; each model reads its own size.
    at_side = {contract.INPUT_SIZE: photos}
    for i, r in enumerate(rows):
        path = str(model_of_fold(fold_of[r["person"]]))
        sessions.setdefault(path, session(path))
        side = input_side(sessions[path])
        if side not in at_side:
            at_side[side] = np.stack([prepare_photo(Image.open(Path(real) / q["file"]), side) for q in rows])
        pred[i] = class_map(sessions[path], at_side[side][i], mirror)
    labels = {i: label_mask(photos[i], spec[r["file"]]) for i, r in enumerate(rows) if r["file"] in spec}
    faces = {}
    if face_stage:
        from . import facedet

        run = facedet.onnx_runner(face_stage)
        accept = facedet.ACCEPT if face_accept is None else face_accept
        for i, r in enumerate(rows):
            if SCALP_VIEWS[r["view"]] in facedet.SIDE_VIEWS:
                region, found = facedet.region(run, photos[i], accept)
                pred[i][region] = BG
                faces[r["file"]] = {"found": found is not None, "score": None if found is None else found[0],
                                    "region_share": float(region.mean()),
                                    "labelled_scalp_removed": None}
                if i in labels:
                    scalp = (labels[i] > 0) & (labels[i] != IGNORE)
                    faces[r["file"]].update(scalp=int(scalp.sum()), labelled_scalp_removed=int((scalp & region).sum()))
    per_photo = []
    for i, r in enumerate(rows):
        p = {"file": r["file"], "person": r["person"], "view": SCALP_VIEWS[r["view"]], "norwood": int(r["norwood"]),
             "fold": fold_of[r["person"]], "loss_fraction": loss_fraction(pred[i]), "skin_fraction": skin_fraction(photos[i]),
             "scalp_share": float((pred[i] != BG).mean())}
        if i in labels:
            p["model"] = labelled_figures(pred[i], labels[i])
            p["skin_rule"] = labelled_figures(skin_map(photos[i]), labels[i])
        per_photo.append(p)
    result = {
        "protocol": f"{N_FOLDS} folds of 3 men (sorted by Norwood and name, dealt round-robin); every photo scored by "
                    "the model that did not see its man; intervals: 95 % over 2,000 resamplings of the men",
        "folds": {k: sorted(m for m, f in fold_of.items() if f == k) for k in range(N_FOLDS)},
        "models": sorted({str(model_of_fold(k)) for k in range(N_FOLDS)}),
        "photos": len(rows), "men": len(fold_of),
        "rank": {"model": rank_figures(per_photo, "loss_fraction"), "skin_rule": rank_figures(per_photo, "skin_fraction")},
        "labels": {"model": agreement_figures(per_photo, "model"), "skin_rule": agreement_figures(per_photo, "skin_rule")},
        "staging": staging(binary, model_of_fold, rows, real, fold_of, work, sex),
        "per_photo": per_photo,
    }
    if face_stage:
        removed = sum(f.get("labelled_scalp_removed") or 0 for f in faces.values())
        result["face_stage"] = {"model": str(face_stage), "views": list(facedet.SIDE_VIEWS), "accept": accept,
                                "faces_found": sum(f["found"] for f in faces.values()), "side_photos": len(faces),
                                "labelled_scalp_removed": removed / max(1, sum(f.get("scalp", 0) for f in faces.values())),
                                "per_photo": faces}
    result["staging"]["skin_rule"] = skin_staging(per_photo, fold_of)
    if sheet:
        contact_sheet(photos, pred, rows, [p["loss_fraction"] for p in per_photo], sheet)
    return result


def summary(r):
    """The headline table, as text."""
    lines = ["view      spearman model [95%]        skin rule     mIoU model / skin   bg->loss   loss->hair"]
    for v in r["rank"]["model"]:
        m, s = r["rank"]["model"][v], r["rank"]["skin_rule"][v]
        lm, ls = r["labels"]["model"].get(v, {}), r["labels"]["skin_rule"].get(v, {})
        fmt = lambda x: "  n/a" if x is None else f"{x:5.2f}"
        lines.append(f"{v:8s}  {fmt(m['spearman'])} [{m['interval'][0]:5.2f},{m['interval'][1]:5.2f}]   {fmt(s['spearman'])}"
                     f"        {lm.get('miou', float('nan')):.3f} / {ls.get('miou', float('nan')):.3f}"
                     f"      {lm.get('background_read_as_loss', float('nan')):.3f}      {lm.get('loss_read_as_hair', float('nan')):.3f}")
    st = r["staging"]
    for name in ("model", "best_constant", "skin_rule"):
        s = st[name]
        lines.append(f"staging {name:13s} exact {s['exact']:.2f} within one {s['within_one']:.2f} "
                     f"[{s['within_one_interval'][0]:.2f},{s['within_one_interval'][1]:.2f}] spearman {s['spearman']}")
    return "\n".join(lines)


def train_folds(recipe_name, data, real, out, label_files, seed=7, only=None):
    """One model per fold (its 3 men's labels left out) and one on all men ("all"), exported."""
    import torch

    from . import export
    from .data import load_synth
    from .train import train

    recipe = RECIPES[recipe_name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps({"name": recipe_name, **recipe, "seed": seed}, indent=1))
    fold_of = folds(read_rows(real))
    size = recipe.get("input_size", contract.INPUT_SIZE)
    synth = load_synth(data, size)
    torch.set_num_threads(2)
    for k in (only or [*range(N_FOLDS), "all"]):
        onnx_path = out / f"fold{k}.onnx"
        if onnx_path.exists():
            continue
        leave = tuple(sorted(m for m, f in fold_of.items() if f == k)) if k != "all" else ()
        net, info = train(data, recipe["steps"], recipe["batch"], recipe["crop"], recipe["lr"], seed,
                          class_weights=recipe["class_weights"], real=(real, list(label_files)), real_p=recipe["real_p"],
                          arch=recipe["arch"], leave_out=leave, lr_body=recipe.get("lr_body"), synth=synth,
                          negatives=recipe.get("negatives", 0.0), dice=recipe.get("dice", 0.0), input_size=size)
        info["recipe"], info["fold"] = recipe_name, k
        state = out / f"fold{k}.pt"
        torch.save(net.state_dict(), state)
        (out / f"fold{k}.pt.json").write_text(json.dumps(info, indent=1))
        m, reference = export.export(str(state), str(onnx_path) + ".tmp", info)
        checked = export.check(m, str(onnx_path) + ".tmp", reference, contract.input_size(info))
        (out / f"fold{k}.check.json").write_text(json.dumps(checked, indent=1))
        export.write_reference(reference, str(out / f"fold{k}.reference.json"), contract.input_size(info))
        os.replace(str(onnx_path) + ".tmp", onnx_path)
        print(f"fold {k}: {info['seconds']:.0f} s, left out {', '.join(leave) or 'none'}", flush=True)


def ship(models, cv_json, out, variant=""):
    """The all-men model with the cut points fit on every man's out-of-fold fractions written
    into its metadata (`scalpmap plan` reads them), atomically to `out`."""
    import onnx

    result = json.loads(Path(cv_json).read_text())
    cuts = result["staging"]["cut_points_all_men"]
    m = onnx.load(str(Path(models) / f"foldall{variant}.onnx"))
    meta = {p.key: p for p in m.metadata_props}
    entry = meta.get("scalpmap.norwood_top_upper") or m.metadata_props.add()
    entry.key, entry.value = "scalpmap.norwood_top_upper", ",".join(f"{c:.4f}" for c in cuts)
    onnx.save(m, str(out) + ".tmp")
    os.replace(str(out) + ".tmp", out)
    return cuts


def gate(models):
    """Each fold model of a folder exported again with the person stage (selfie.Gated) as
    fold{k}.gated.onnx, with its check and reference outputs; no training."""
    from . import export

    for k in [*range(N_FOLDS), "all"]:
        state = Path(models) / f"fold{k}.pt"
        out = Path(models) / f"fold{k}.gated.onnx"
        if out.exists() or not state.exists():
            continue
        info = dict(json.loads(Path(str(state) + ".json").read_text()), person_gate=True)
        m, reference = export.export(str(state), str(out) + ".tmp", info)
        checked = export.check(m, str(out) + ".tmp", reference, contract.input_size(info))
        (Path(models) / f"fold{k}.gated.check.json").write_text(json.dumps(checked, indent=1))
        export.write_reference(reference, str(Path(models) / f"fold{k}.gated.reference.json"), contract.input_size(info))
        os.replace(str(out) + ".tmp", out)
        print(f"fold {k}: gated", flush=True)


def synthetic_figures(model, val, face_stage=None, face_accept=None):
    """evaluate.py's figures on unseen renders, and the speed, for the card."""
    from .evaluate import session, synthetic, timings

    return {"synthetic": synthetic(session(str(model)), val, face_stage, face_accept), "speed": timings(str(model))}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("folds", help="print the fixed folds")
    f.add_argument("--real", default="../../shared/real/uze-dev")
    t = sub.add_parser("train", help="train a recipe's fold models and its all-men model")
    t.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    t.add_argument("--data", default="data/train")
    t.add_argument("--real", default="../../shared/real/uze-dev")
    t.add_argument("--out", required=True)
    t.add_argument("--only", nargs="*", default=None, help="folds to train (0-6, all)")
    t.add_argument("--seed", type=int, default=7, help="training seed (7 for every shipped recipe)")
    s = sub.add_parser("score", help="cross-validated real-photo figures")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--models", help="a folder of fold0.onnx ... fold6.onnx (cv train's output)")
    g.add_argument("--model", help="one model for every fold (one that never trained on these photos)")
    s.add_argument("--variant", default="", help="fold model file suffix, e.g. .gated (cv gate's exports)")
    s.add_argument("--real", default="../../shared/real/uze-dev")
    s.add_argument("--binary", default="../target/release/scalpmap")
    s.add_argument("--sheet", default=None, help="contact sheet PNG (default: beside --out)")
    s.add_argument("--face-stage", default=None, help="the face detector (../models/face-detector.onnx): side views' lower face set to background")
    s.add_argument("--face-accept", type=float, default=None, help="the face stage's acceptance score (default facedet.ACCEPT)")
    s.add_argument("--sex", choices=["m"], default=None,
                   help="give every man's sex in the plan manifest (crate 0.3.1+): staged on the Norwood scale whatever the pattern")
    s.add_argument("--mirror", action="store_true", help="maps from the mean over the photo and its mirror image (run 12)")
    s.add_argument("--out", required=True)
    gp = sub.add_parser("gate", help="export a folder's fold models again with the person stage")
    gp.add_argument("--models", required=True)
    y = sub.add_parser("synth", help="a model's figures on unseen renders and its speed")
    y.add_argument("--model", required=True)
    y.add_argument("--val", default="data/val")
    y.add_argument("--face-stage", default=None, help="the face detector: side views' lower face set to background first")
    y.add_argument("--face-accept", type=float, default=None, help="the face stage's acceptance score (default facedet.ACCEPT)")
    y.add_argument("--out", required=True)
    h = sub.add_parser("ship", help="the all-men model with its cross-validated cut points, to --out")
    h.add_argument("--models", required=True)
    h.add_argument("--cv", required=True, help="cv score's JSON for these models")
    h.add_argument("--out", required=True)
    h.add_argument("--variant", default="")
    a = ap.parse_args()
    if a.cmd == "synth":
        result = synthetic_figures(a.model, a.val, a.face_stage, a.face_accept)
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(json.dumps({"miou": result["synthetic"]["miou"], **result["speed"]}))
        return
    if a.cmd == "gate":
        gate(a.models)
        return
    if a.cmd == "ship":
        print("cut points:", ship(a.models, a.cv, a.out, a.variant))
        return
    if not photos_present(a.real):
        return
    if a.cmd == "folds":
        fold_of = folds(read_rows(a.real))
        for k in range(N_FOLDS):
            print(k, ", ".join(sorted(m for m, v in fold_of.items() if v == k)))
        return
    if a.cmd == "train":
        only = [int(k) if k != "all" else k for k in a.only] if a.only else None
        train_folds(a.recipe, a.data, a.real, a.out, LABEL_FILES, seed=a.seed, only=only)
        return
    model_of_fold = (lambda k: Path(a.models) / f"fold{k}{a.variant}.onnx") if a.models else (lambda k: Path(a.model))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        result = score(model_of_fold, a.real, LABEL_FILES, a.binary, work,
                       a.sheet or str(out.with_suffix("")) + "_sheet.png", a.face_stage, a.mirror, a.face_accept, a.sex)
    out.write_text(json.dumps(result, indent=1))
    print(summary(result))


if __name__ == "__main__":
    main()

"""The head check: is there a head in the photo at all?

A segmentation model answers every pixel, so a photo of a wall, a floor or a hand still gets a
class map, and the fine-tuned models read a flat beige wall as 100 % bare scalp (DECISIONS.md,
run 2: training on no-head photos cost the maps more than it gained). The check is a separate,
whole-photo answer on top of the segmentation model, which it leaves unchanged: a logistic
regression on features the model already computes (the global average pools of its body, which
the squeeze-and-excitation blocks take anyway, and the mean class probabilities), written into
the same ONNX graph as a third output `head` (1 x 1, the probability that the photo shows a
head) with its threshold in the metadata (`scalpmap.head_threshold`). The analyser reports a
photo whose score is under it as "no scalp found", a retake, and measures nothing on it.

What it learns from (RECIPES): positives are the development photos of the men a model trained
on and 2,000 renders; negatives are generated no-head photos (walls, floors, noise, textiles,
blobs: the generator of run 2; and hands) and, in recipe H, real backdrops: the largest rectangle
of each development photo whose cells are labelled background and are not skin-coloured, cut
from the photo at full resolution. Skin-coloured ellipses are scored, never fit (a bald crown
filling the frame is one), and so are the close crops of faces, ears and necks the labels call
background (run 5 fit on those and sent bald heads back).

How it is judged (`cv`): for each of the 7 person folds, the fold's segmentation model (one that
never saw the fold's men) gives the features and the check is fit on the other 18 men's photos
and backdrops, training renders and generated photos (seeded by the fold); it is scored on the
fold's men's photos and backdrops, on unseen renders, and on freshly generated photos. Each
generated kind is also left out of the fit once and scored, to say how the check does on a kind
of non-head photo it never saw. `outside` scores a model's check on scikit-image's bundled sample
photos (a brick wall, grass, coffee, a cat, coins, text... and two photos of people), which no
one chose for it.

python -m scalpmap_train.headgate cv --models out/cv-selfie-real-long --out out/headgate/cv.json
python -m scalpmap_train.headgate attach --model M.onnx --version 0.6.1 --out M.onnx
python -m scalpmap_train.headgate outside --model ../models/scalpmap-seg.onnx --out out/outside.json
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from . import contract
from .cv import LABEL_FILES, N_FOLDS, folds, skin_colour
from .data import load_photos, normalise, prepare_photo
from .evaluate import read_labels
from .real_labels import photos_present, read_rows
from .real_labels import mask as label_mask

# Fixed before any figure was seen (DECISIONS.md, run 5).
THRESHOLD = 0.5
L2 = 1.0
N_RENDERS = 2000         # training renders per fit (the first of data/train)
N_GENERATED = 100        # generated photos per kind per fit
N_GENERATED_TEST = 50    # fresh ones per kind per fold, to score
MIN_SIDE = 80            # a head-part crop is at least this many cells of the 256 grid on each side
BACKDROP_SIDE = 48       # a backdrop crop (run 7) at least this many
MAX_ASPECT = 2.5
BG_SHARE = 0.98
KINDS = ["wall", "floor", "noise", "textile", "blobs", "hand", "skin ellipse"]
# Run 6: skin ellipses are what a bald crown filling the frame looks like; they are scored, never fit.
TRAIN_KINDS = KINDS[:6]
# Run 7: real backdrops as a fourth group of negatives (the recipe "H"; "G" is run 6's, without them).
RECIPES = {"G": {"backdrops": False}, "H": {"backdrops": True}}
SHIPPED = "H"  # the check in the shipped model (DECISIONS.md run 7)
MAX_FALSE_RETAKES = 0.01
OUTPUT = "head"


# ---- what the check looks at ---------------------------------------------------------------

def pooled_outputs(model):
    """Names of the body's global average pools (ReduceMean to N x C x 1 x 1), in graph order."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    return [n.output[0] for n in model.graph.node
            if n.op_type == "ReduceMean" and len(shapes.get(n.output[0], [])) == 4 and shapes[n.output[0]][2:] == [1, 1]]


def feature_session(path):
    """An onnxruntime session of the model with its pools and probabilities as outputs."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    names = pooled_outputs(m)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.add().name = n
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]), names


def features(sess_names, photos_uint8):
    """N x D: the pools (flattened, in order) and the mean probability of each class."""
    sess, names = sess_names
    rows = []
    for p in photos_uint8:
        out = sess.run(["probs", *names], {"image": normalise(p[None])})
        rows.append(np.concatenate([o.reshape(-1) for o in out[1:]] + [out[0].mean(axis=(2, 3)).reshape(-1)]))
    return np.stack(rows).astype(np.float64)


# ---- the photos ------------------------------------------------------------------------------

def generated(rng, kind, n, size=contract.INPUT_SIZE):
    """n no-head photos of one kind (KINDS)."""
    from .train import no_head_photos

    k = KINDS.index(kind)
    if k < 5:
        return no_head_photos(rng, n, size, kind=k)
    return skin_photos(rng, n, size, hand=(kind == "hand"))


def draw_skin_colour(rng):
    """A colour the skin-colour rule accepts, from pale to dark brown."""
    while True:
        r = rng.uniform(100, 250)
        c = np.array([r, r * rng.uniform(0.55, 0.85), r * rng.uniform(0.4, 0.75)])
        if c[0] - min(c[1], c[2]) > 15:
            return c


def skin_photos(rng, n, size, hand):
    """Skin-coloured shapes without hair on a generated backdrop: a hand (palm and five fingers,
    shaded, with creases) or a smooth ellipse. A bald crown is skin too; what tells it from these
    is the head around it (hair fringe, ears, neck, outline), which is what the check must learn."""
    from scipy import ndimage

    from .train import no_head_photos

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = no_head_photos(rng, n, size).astype(np.float32)
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2)
        a = rng.uniform(0, np.pi)
        u = np.cos(a) * (x - cx) + np.sin(a) * (y - cy)
        v = -np.sin(a) * (x - cx) + np.cos(a) * (y - cy)
        s = rng.uniform(0.6, 1.4)
        if hand:
            shape = (u / (0.2 * s)) ** 2 + (v / (0.24 * s)) ** 2 < 1
            for f in range(4):  # fingers: capsules above the palm
                fu = (-0.15 + 0.1 * f) * s
                length = rng.uniform(0.25, 0.4) * s
                in_finger = (np.abs(u - fu) < 0.045 * s) & (v < -0.1 * s) & (v > -0.1 * s - length)
                shape |= in_finger
            thumb = (np.abs(0.7 * (u - 0.2 * s) + 0.7 * (v + 0.05 * s)) < 0.05 * s) & (np.abs(-0.7 * (u - 0.2 * s) + 0.7 * (v + 0.05 * s)) < 0.2 * s)
            shape |= thumb
        else:
            shape = (u / (0.3 * s)) ** 2 + (v / (0.22 * s)) ** 2 < 1
        shade = 1.0 + rng.uniform(-0.25, 0.25) * u / 0.3 + rng.uniform(-0.25, 0.25) * v / 0.3
        skin = draw_skin_colour(rng)[None, None, :] * shade[..., None]
        if hand:
            for _ in range(int(rng.integers(2, 6))):  # creases: thin darker lines
                c0, g = rng.uniform(-0.15, 0.15), rng.normal(0, 1, 2)
                line = np.abs(g[0] * u + g[1] * v - c0) < 0.004 * np.hypot(*g)
                skin[line] *= 0.8
        alpha = ndimage.gaussian_filter(shape.astype(np.float32), rng.uniform(0.5, 2.5))[..., None]
        out[i] = out[i] * (1 - alpha) + skin * alpha + rng.normal(0, rng.uniform(0, 5), (size, size, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def largest_background_rect(lab, min_side=MIN_SIDE, step=8):
    """(y0, x0, y1, x1) on the label grid of the largest rectangle at least `min_side` on a side,
    no longer than MAX_ASPECT, whose cells are at least BG_SHARE background (ignored cells are
    not background); None when there is none."""
    bg = (lab == contract.CLASSES.index("background")).astype(np.float64)
    ii = np.zeros((bg.shape[0] + 1, bg.shape[1] + 1))
    ii[1:, 1:] = bg.cumsum(0).cumsum(1)
    h, w = bg.shape
    ys, xs = np.arange(0, h + 1, step), np.arange(0, w + 1, step)
    best, best_area = None, 0
    for y0 in ys:
        for y1 in ys[ys >= y0 + min_side]:
            for x0 in xs:
                x1 = xs[xs >= x0 + min_side]
                if not len(x1):
                    continue
                hh, ww = y1 - y0, x1 - x0
                area = hh * ww
                share = (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) / area
                ok = (share >= BG_SHARE) & (np.maximum(hh, ww) <= MAX_ASPECT * np.minimum(hh, ww)) & (area > best_area)
                if ok.any():
                    j = int(np.argmax(np.where(ok, area, 0)))
                    best, best_area = (int(y0), int(x0), int(y1), int(x1[j])), int(area[j])
    return best


def crops(real):
    """Two sets of crops of the labelled development photos, each {file: (person, crop uint8 at
    the model size)}: the photo's largest background rectangle, cut at full resolution and resized
    as the analyser would. "head_parts" (at least MIN_SIDE cells a side) are mostly faces, ears and
    necks (run 5's "backdrops", which the labels call background because they are not scalp);
    "backdrops" (at least BACKDROP_SIDE) count skin-coloured pixels as not background, so they are
    walls, doors, tiles and clothes."""
    spec = read_labels([Path(__file__).resolve().parent.parent / f for f in LABEL_FILES])
    out = {"head_parts": {}, "backdrops": {}}
    for r in read_rows(real):
        if r["file"] not in spec:
            continue
        img = Image.open(Path(real) / r["file"]).convert("RGB")
        p = prepare_photo(img)
        lab = label_mask(p, spec[r["file"]])
        no_skin = np.where(skin_colour(p), contract.CLASSES.index("hair"), lab)
        for kind, grid, side in (("head_parts", lab, MIN_SIDE), ("backdrops", no_skin, BACKDROP_SIDE)):
            rect = largest_background_rect(grid, side)
            if rect is None:
                continue
            y0, x0, y1, x1 = rect
            sx, sy = img.width / p.shape[1], img.height / p.shape[0]
            crop = img.crop((round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
            out[kind][r["file"]] = (r["person"], prepare_photo(crop))
    return out


def outside_photos():
    """scikit-image's bundled sample images that load offline, as (name, has a person, RGB uint8):
    photos nobody chose for this check (run 7's outside set)."""
    import skimage.data as data

    people = {"astronaut", "camera"}
    out = []
    for name in sorted(n for n in dir(data) if not n.startswith("_")):
        f = getattr(data, name)
        # binary_blobs draws a new random picture at every call: not a fixed sample.
        if not callable(f) or name in ("download_all", "lbp_frontal_face_cascade_filename", "binary_blobs"):
            continue
        try:
            img = f()
        except Exception:  # needs a download: not bundled
            continue
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or min(img.shape[:2]) < 64:
            continue
        if img.dtype != np.uint8:
            img = img.astype(np.float64)
            img = (255 * (img - img.min()) / (np.ptp(img) + 1e-9)).astype(np.uint8)
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        if img.ndim == 3 and img.shape[2] != 3:
            continue
        out.append((name, name in people, prepare_photo(Image.fromarray(img).convert("RGB"))))
    return out


def outside(model):
    """The shipped check on the outside set: each image's score and whether it is sent back."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    t = float(sess.get_modelmeta().custom_metadata_map["scalpmap.head_threshold"])
    rows = [(n, person, float(sess.run([OUTPUT], {"image": normalise(p[None])})[0].reshape(-1)[0])) for n, person, p in outside_photos()]
    return {"threshold": t, "images": {n: {"person": person, "score": sc, "sent_back": sc < t} for n, person, sc in rows},
            "no_person_sent_back": sum(1 for _, person, sc in rows if not person and sc < t),
            "no_person": sum(1 for _, person, _ in rows if not person),
            "person_sent_back": sum(1 for _, person, sc in rows if person and sc < t)}


# ---- the fit ---------------------------------------------------------------------------------

def fit(X, y, w, l2=L2, iters=50):
    """Weighted L2 logistic regression on standardised features (Newton's method). Returns
    (mean, std, coef, bias) such that p = sigmoid(((X - mean) / std) @ coef + bias)."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    Z = np.hstack([(X - mean) / std, np.ones((len(X), 1))])
    w = w / w.sum() * len(w)
    beta = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(Z @ beta, -40, 40)))
        grad = Z.T @ (w * (p - y)) + reg * beta
        H = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(reg)
        step = np.linalg.solve(H, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, std, beta[:-1], beta[-1]


def predict(params, X):
    mean, std, coef, bias = params
    return 1 / (1 + np.exp(-np.clip(((X - mean) / std) @ coef + bias, -40, 40)))


def weights(groups):
    """Positives and negatives weigh the same: real photos and renders a quarter each; the
    generated photos half, or, with backdrops, a quarter each."""
    groups = np.asarray(groups)
    share = {"real": 0.25, "render": 0.25, "generated": 0.25 if "backdrop" in groups else 0.5, "backdrop": 0.25}
    w = np.zeros(len(groups))
    for g in np.unique(groups):
        w[groups == g] = share[g] / (groups == g).sum()
    return w


def stack(real_f, render_f, gen_f, kinds, bd_f=None):
    """Features, labels (1: a head) and weights of one fit."""
    gen = [gen_f[k] for k in kinds]
    n_gen = sum(len(g) for g in gen)
    bd_f = np.zeros((0, real_f.shape[1])) if bd_f is None else bd_f
    X = np.vstack([real_f, render_f, *gen, bd_f])
    y = np.concatenate([np.ones(len(real_f) + len(render_f)), np.zeros(n_gen + len(bd_f))])
    return X, y, weights(["real"] * len(real_f) + ["render"] * len(render_f) + ["generated"] * n_gen + ["backdrop"] * len(bd_f))


def fit_with_threshold(real_f, real_groups, render_f, gen_f, leave_kind=None, bd_f=None, bd_groups=None):
    """The check fit on these photos, and its threshold: THRESHOLD, or lower where that would
    send back more than 1 % of the real photos or renders, judged on inner out-of-fold scores
    (real photos by `real_groups`, each inner fold's share of the renders, and of each
    generated kind, left out with it). Returns (params, threshold)."""
    gen_f = {k: v for k, v in gen_f.items() if k != leave_kind}
    kinds = [k for k in TRAIN_KINDS if k in gen_f]
    groups = sorted(set(real_groups))
    real_groups = np.asarray(real_groups)
    oof_real, oof_render = np.zeros(len(real_f)), np.zeros(len(render_f))
    render_group = np.arange(len(render_f)) % len(groups)
    for j, g in enumerate(groups):
        tr = {k: gen_f[k][np.arange(len(gen_f[k])) % len(groups) != j] for k in kinds}
        bd = None if bd_f is None else bd_f[np.asarray(bd_groups) != g]
        params = fit(*stack(real_f[real_groups != g], render_f[render_group != j], tr, kinds, bd))
        oof_real[real_groups == g] = predict(params, real_f[real_groups == g])
        oof_render[render_group == j] = predict(params, render_f[render_group == j])
    threshold = min(THRESHOLD, float(np.quantile(oof_real, MAX_FALSE_RETAKES)), float(np.quantile(oof_render, MAX_FALSE_RETAKES)))
    return fit(*stack(real_f, render_f, gen_f, kinds, bd_f)), threshold


def cv(models, real, train_dir, val_dir, out, recipe=SHIPPED):
    """The check's cross-validated figures (module docstring) for a recipe of RECIPES."""
    use_bd = RECIPES[recipe]["backdrops"]
    rows = read_rows(real)
    fold_of = folds(rows)
    photos = np.stack([prepare_photo(Image.open(Path(real) / r["file"])) for r in rows])
    persons = np.array([r["person"] for r in rows])
    sets = crops(real)
    files = {k: sorted(v) for k, v in sets.items()}
    owner = {k: np.array([sets[k][f][0] for f in files[k]]) for k in sets}
    pics = {k: np.stack([sets[k][f][1] for f in files[k]]) for k in sets}
    train_renders = load_photos(train_dir, contract.INPUT_SIZE, limit=N_RENDERS)
    val_renders = load_photos(val_dir, contract.INPUT_SIZE, limit=300)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    result = {"recipe": recipe, "threshold_rule": f"min({THRESHOLD}, 1 % quantiles of inner out-of-fold scores)", "l2": L2,
              "train_kinds": TRAIN_KINDS, "renders": len(train_renders), "val_renders": len(val_renders), "folds": {}}
    scores = {"real": np.zeros(len(rows)), **{k: np.zeros(len(files[k])) for k in sets}}
    flagged = {k: np.zeros(len(v), bool) for k, v in scores.items()}
    render_flagged, gen_flagged, left_out = [], {k: [] for k in KINDS}, {k: [] for k in TRAIN_KINDS}
    for k in range(N_FOLDS):
        held = sorted(p for p, f in fold_of.items() if f == k)
        fs = feature_session(Path(models) / f"fold{k}.onnx")
        real_f = features(fs, photos)
        crop_f = {c: features(fs, pics[c]) for c in sets}
        tr_f = features(fs, train_renders)
        val_f = features(fs, val_renders)
        rng = np.random.default_rng(1000 + k)
        gen_f = {kind: features(fs, generated(rng, kind, N_GENERATED)) for kind in TRAIN_KINDS}
        rng_test = np.random.default_rng(5000 + k)
        gen_test = {kind: features(fs, generated(rng_test, kind, N_GENERATED_TEST)) for kind in KINDS}
        mine = np.isin(persons, held)
        mine_c = {c: np.isin(owner[c], held) for c in sets}
        inner = np.array([fold_of[p] for p in persons[~mine]])
        bd = dict(bd_f=crop_f["backdrops"][~mine_c["backdrops"]],
                  bd_groups=[fold_of[p] for p in owner["backdrops"][~mine_c["backdrops"]]]) if use_bd else {}
        params, t = fit_with_threshold(real_f[~mine], inner, tr_f, gen_f, **bd)
        scores["real"][mine] = predict(params, real_f[mine])
        flagged["real"][mine] = scores["real"][mine] < t
        for c in sets:
            scores[c][mine_c[c]] = predict(params, crop_f[c][mine_c[c]])
            flagged[c][mine_c[c]] = scores[c][mine_c[c]] < t
        render_flagged.append(float((predict(params, val_f) < t).mean()))
        for kind in KINDS:
            gen_flagged[kind].append(float((predict(params, gen_test[kind]) < t).mean()))
        for kind in TRAIN_KINDS:
            pl, tl = fit_with_threshold(real_f[~mine], inner, tr_f, gen_f, leave_kind=kind, **bd)
            left_out[kind].append(float((predict(pl, gen_test[kind]) < tl).mean()))
        result["folds"][k] = {"men": held, "threshold": t, "val_renders_flagged": render_flagged[-1],
                              "generated_flagged": {kind: gen_flagged[kind][-1] for kind in KINDS}}
        print(f"fold {k}: threshold {t:.3f}, real flagged {int(flagged['real'][mine].sum())}/{mine.sum()}, "
              f"backdrops flagged {int(flagged['backdrops'][mine_c['backdrops']].sum())}/{mine_c['backdrops'].sum()}, "
              f"head parts flagged {int(flagged['head_parts'][mine_c['head_parts']].sum())}/{mine_c['head_parts'].sum()}, "
              f"renders flagged {render_flagged[-1]:.3f}", flush=True)
    result["real_flagged"] = int(flagged["real"].sum())
    result["real_photos"] = len(rows)
    result["real_flagged_files"] = [rows[i]["file"] for i in np.nonzero(flagged["real"])[0]]
    result["real_score_min"] = float(scores["real"].min())
    for c in sets:
        result[f"{c}_flagged"] = int(flagged[c].sum())
        result[c] = len(files[c])
        result[f"per_{c}"] = {f: float(v) for f, v in zip(files[c], scores[c])}
        sheet(pics[c], scores[c], str(Path(out).with_suffix("")) + f"_{c}.png")
    result["val_renders_flagged"] = float(np.mean(render_flagged))
    result["generated_flagged"] = {k: float(np.mean(v)) for k, v in gen_flagged.items()}
    result["generated_flagged_kind_left_out"] = {k: float(np.mean(v)) for k, v in left_out.items()}
    result["per_photo"] = {rows[i]["file"]: float(scores["real"][i]) for i in range(len(rows))}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
    return result


def sheet(photos, scores, path, cols=12, cell=96):
    """The backdrop crops with their head scores (out/, never committed: they are cut from the
    development photos)."""
    from PIL import ImageDraw

    rows = (len(photos) + cols - 1) // cols
    img = Image.new("RGB", (cols * cell, rows * (cell + 14)), "white")
    d = ImageDraw.Draw(img)
    for i, (p, s) in enumerate(zip(photos, scores)):
        x, y = (i % cols) * cell, (i // cols) * (cell + 14)
        img.paste(Image.fromarray(p).resize((cell, cell)), (x, y))
        d.text((x + 2, y + cell), f"{s:.2f}", fill="red" if s >= THRESHOLD else "black")
    img.save(path)


# ---- the shipped check -----------------------------------------------------------------------

def attach(model_path, params, out_path, provenance, version):
    """Writes the model with the check (`params`: the fit and its threshold) as output `head`
    (1 x 1): Flatten each pool, the class means of `probs`, Concat, one MatMul and Add (the
    standardisation folded into them), Sigmoid. Nothing before them changes, so `probs` and
    `density` are the same numbers as before."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (mean, std, coef, bias), threshold = params
    m = onnx.load(str(model_path))
    g = m.graph
    if any(o.name == OUTPUT for o in g.output):
        raise SystemExit(f"{model_path} already has a '{OUTPUT}' output")
    names = pooled_outputs(m)
    flat = []
    for i, n in enumerate(names):
        flat.append(f"/head/flat{i}")
        g.node.append(helper.make_node("Flatten", [n], [flat[-1]], axis=1))
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 18:
        g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "/head/axes"))
        g.node.append(helper.make_node("ReduceMean", ["probs", "/head/axes"], ["/head/class_means"], keepdims=0))
    else:
        g.node.append(helper.make_node("ReduceMean", ["probs"], ["/head/class_means"], axes=[2, 3], keepdims=0))
    g.node.append(helper.make_node("Concat", flat + ["/head/class_means"], ["/head/features"], axis=1))
    w = (coef / std).astype(np.float32)[:, None]
    b = np.array([bias - float((coef * mean / std).sum())], np.float32)
    g.initializer.append(numpy_helper.from_array(w, "/head/weight"))
    g.initializer.append(numpy_helper.from_array(b, "/head/bias"))
    g.node.append(helper.make_node("MatMul", ["/head/features", "/head/weight"], ["/head/logit0"]))
    g.node.append(helper.make_node("Add", ["/head/logit0", "/head/bias"], ["/head/logit"]))
    g.node.append(helper.make_node("Sigmoid", ["/head/logit"], [OUTPUT]))
    g.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, 1]))
    meta = {p.key: p for p in m.metadata_props}
    for key, value in (("scalpmap.head_threshold", f"{threshold:.4f}"), ("scalpmap.head_check", provenance),
                       ("scalpmap.model_version", version)):
        entry = meta.get(key) or m.metadata_props.add()
        entry.key, entry.value = key, value
    outs = meta.get("scalpmap.outputs")
    if outs is not None and OUTPUT not in outs.value:
        outs.value += "; head: probability that the photo shows a head, Nx1 (under scalpmap.head_threshold: no scalp found)"
    onnx.checker.check_model(m)
    onnx.save(m, str(out_path) + ".tmp")
    os.replace(str(out_path) + ".tmp", out_path)


def add_reference(model_path, reference_path):
    """The check's output on export.py's formula input, into the reference file the Rust tests
    compare both engines with (the probabilities there are PyTorch's; this one is ONNX Runtime's,
    since the check was never a PyTorch module)."""
    import onnxruntime as ort

    from .export import formula_input

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    head = float(sess.run([OUTPUT], {"image": formula_input()})[0].reshape(-1)[0])
    ref = json.loads(Path(reference_path).read_text())
    ref["head"] = head
    Path(str(reference_path) + ".tmp").write_text(json.dumps(ref))
    os.replace(str(reference_path) + ".tmp", reference_path)
    return head


def fit_shipped(model, real, train_dir, recipe=SHIPPED):
    """The check for the shipped model, made as each fold's was: fit on every man's photos (and
    backdrops, for H), the renders and a fresh draw of every trained kind with the shipped model's
    own features, its threshold from out-of-fold scores over the 7 folds of men."""
    rows = read_rows(real)
    fold_of = folds(rows)
    photos = np.stack([prepare_photo(Image.open(Path(real) / r["file"])) for r in rows])
    fs = feature_session(model)
    real_f = features(fs, photos)
    tr_f = features(fs, load_photos(train_dir, contract.INPUT_SIZE, limit=N_RENDERS))
    rng = np.random.default_rng(999)
    gen_f = {kind: features(fs, generated(rng, kind, N_GENERATED)) for kind in TRAIN_KINDS}
    bd, n_bd = {}, 0
    if RECIPES[recipe]["backdrops"]:
        b = crops(real)["backdrops"]
        n_bd = len(b)
        bd = dict(bd_f=features(fs, np.stack([v[1] for _, v in sorted(b.items())])), bd_groups=[fold_of[v[0]] for _, v in sorted(b.items())])
    params, threshold = fit_with_threshold(real_f, [fold_of[r["person"]] for r in rows], tr_f, gen_f, **bd)
    return params, threshold, {"recipe": recipe, "photos": len(rows), "renders": len(tr_f), "backdrops": n_bd,
                               "generated_per_kind": N_GENERATED, "threshold": threshold,
                               "real_training_score_min": float(predict(params, real_f).min())}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cv", help="cross-validated figures of the head check")
    c.add_argument("--models", required=True, help="a cv train folder (fold0.onnx ... fold6.onnx)")
    c.add_argument("--real", default="../../shared/real/uze-dev")
    c.add_argument("--train", default="data/train")
    c.add_argument("--val", default="data/val")
    c.add_argument("--out", required=True)
    c.add_argument("--recipe", default=SHIPPED, choices=sorted(RECIPES))
    o = sub.add_parser("outside", help="a model's head check on scikit-image's sample photos")
    o.add_argument("--model", required=True)
    o.add_argument("--out", required=True)
    a = sub.add_parser("attach", help="fit the check on every man and write it into a model")
    a.add_argument("--model", required=True)
    a.add_argument("--real", default="../../shared/real/uze-dev")
    a.add_argument("--train", default="data/train")
    a.add_argument("--out", required=True)
    a.add_argument("--version", required=True, help="the model version with the check (0.6.1 for 0.6.0's weights)")
    a.add_argument("--recipe", default=SHIPPED, choices=sorted(RECIPES))
    a.add_argument("--reference", default=None, help="the model's reference JSON, to add the check's output to")
    args = ap.parse_args()
    if args.cmd == "outside":
        r = outside(args.model)
        Path(args.out).write_text(json.dumps(r, indent=1))
        print(json.dumps({k: v for k, v in r.items() if k != "images"}))
        return
    if not photos_present(args.real):
        return
    if args.cmd == "cv":
        r = cv(args.models, args.real, args.train, args.val, args.out, args.recipe)
        print(json.dumps({k: v for k, v in r.items() if not k.startswith("per_") and k != "folds"}, indent=1))
    else:
        params, threshold, info = fit_shipped(args.model, args.real, args.train, args.recipe)
        prov = (f"logistic regression (L2 {L2}) on the body's pools and class means (training/scalpmap_train/headgate.py, "
                f"recipe {args.recipe}); fit on the {info['photos']} development photos, {info['renders']} renders, "
                f"{info['backdrops']} backdrops cut from the development photos and "
                f"{N_GENERATED} generated photos of each kind ({', '.join(TRAIN_KINDS)})")
        attach(args.model, (params, threshold), args.out, prov, args.version)
        if args.reference:
            info["reference_head"] = add_reference(args.out, args.reference)
        print(json.dumps(info))


if __name__ == "__main__":
    main()

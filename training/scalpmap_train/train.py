"""Trains the U-Net on `scalpmap synth` renders, deterministically from a seed, on CPU.

python -m scalpmap_train.train --data DATA/train --out OUT/model.pt  (the shipped recipe: 3,600 steps)
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import contract
from .data import load_synth, normalise
from .model import DEFAULT_WIDTHS, UNet, param_count
from .real_labels import IGNORE

# Scar and thinning are rarer and matter more to a treatment plan than background. These are
# the weights of the shipped model v0.1.0 (see models/MODEL_CARD.md for what was tried since).
CLASS_WEIGHTS = list(contract.SHIPPED_RECIPE["class_weights"])


# Classes a crop may be centred on: thinning, bare and scar cover a small share of the pixels
# (scar about 0.1 %), so uniform crops rarely show the model a scar or a thinning edge.
FOCUS_CLASSES = (2, 3, 4)


def focus_index(labels, step=4):
    """Where focused crops may be centred: per photo and focus class, the (y, x) of every
    `step`-th pixel of that class (subsampled: 3,000 photos index in seconds), and per class
    the photos that show it."""
    pixels = []
    for lab in labels:
        sub = lab[::step, ::step]
        per = {}
        for c in FOCUS_CLASSES:
            ys, xs = np.nonzero(sub == c)
            if len(ys):
                per[c] = np.stack([ys, xs], axis=1).astype(np.int32) * step
        pixels.append(per)
    photos = {c: np.array([i for i, per in enumerate(pixels) if c in per], np.int64) for c in FOCUS_CLASSES}
    return {"pixels": pixels, "photos": photos}


def crop_origin(rng, size, crop, centre=None):
    """Top-left of a crop: uniform, or around `centre` (y, x) with some jitter, clamped."""
    if centre is None:
        y0, x0 = rng.integers(0, size - crop + 1, 2)
        return int(y0), int(x0)
    cy, cx = centre
    y0 = int(np.clip(cy - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, size - crop))
    x0 = int(np.clip(cx - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, size - crop))
    return y0, x0


def draw_batch(rng, n_photos, batch, focus, focus_p):
    """Photo indices and crop centres for one batch. A share `focus_p` of the items first
    draws a focus class (each as often as the others), then a photo showing it, then one of
    its pixels: scars are in a fifth of the photos and 0.1 % of the pixels, so without this
    a crop centred on a scar is one in hundreds. The rest are uniform photos and crops."""
    idx, centres = [], []
    for _ in range(batch):
        if rng.random() < focus_p:
            c = FOCUS_CLASSES[int(rng.integers(0, len(FOCUS_CLASSES)))]
            having = focus["photos"][c]
            if len(having):
                i = int(having[int(rng.integers(0, len(having)))])
                px = focus["pixels"][i][c]
                idx.append(i)
                centres.append(tuple(px[int(rng.integers(0, len(px)))]))
                continue
        idx.append(int(rng.integers(0, n_photos)))
        centres.append(None)
    return np.array(idx), centres


def smooth_field(rng, n, size, cells, sigma):
    """n smooth random fields of size x size: normal noise on a cells x cells grid, scaled
    by a per-photo sigma drawn from [0, sigma], bilinearly upsampled."""
    g = rng.normal(0, 1, (n, 1, cells, cells)).astype(np.float32) * rng.uniform(0, sigma, (n, 1, 1, 1)).astype(np.float32)
    up = F.interpolate(torch.from_numpy(g), size=(size, size), mode="bilinear", align_corners=True)
    return up[:, 0].numpy()


def restyle(rng, x):
    """Style randomisation for the gap to real photos (float NHWC in 0-255): uneven light
    and skin tone across the photo (a smooth multiplicative brightness field and a colour
    field), gamma and saturation. Real bald scalps shine and shade unevenly, and the
    contact sheet shows v0.1 reading such gradients as hair."""
    n, size = x.shape[0], x.shape[1]
    light = np.exp(smooth_field(rng, n, size, 4, 0.35))[..., None]
    tint = np.stack([np.exp(smooth_field(rng, n, size, 3, 0.08)) for _ in range(3)], axis=-1)
    x = x * light * tint
    gamma = rng.uniform(0.75, 1.35, (n, 1, 1, 1)).astype(np.float32)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** gamma
    grey = x.mean(axis=3, keepdims=True)
    sat = rng.uniform(0.6, 1.35, (n, 1, 1, 1)).astype(np.float32)
    return grey + (x - grey) * sat


def skin_texture(rng, x, y):
    """Pores, mottling and stubble dots on skin that is not hair (labels background, bare,
    scar; float NHWC in 0-255, changed in place). The renders draw bald skin smooth, and the
    real contact sheet shows the model calling textured bald scalp hair: this teaches it that
    fine texture alone is not hair (strands are long and oriented)."""
    from scipy import ndimage

    n = x.shape[0]
    skin = (y == 0) | (y == 3) | (y == 4)
    for i in range(n):
        if rng.random() < 0.3:
            continue
        grain = ndimage.gaussian_filter(rng.normal(0, 1, y[i].shape).astype(np.float32), rng.uniform(0.5, 1.5))
        grain /= grain.std() + 1e-6
        amp = rng.uniform(0.02, 0.12)
        x[i] *= (1.0 + amp * grain * skin[i])[..., None]
        if rng.random() < 0.5:
            dots = (rng.random(y[i].shape) < rng.uniform(0.002, 0.03)) & (y[i] == 3)
            x[i][dots] *= rng.uniform(0.4, 0.8)
    return x


def augment(rng, photos, labels, density, crop, centres=None, style=False, texture=False):
    """Random crop (or one around the given centre, see `draw_batch`), 90-degree turns and flips
    (real photos arrive turned), and photometric jitter beyond the renderer's own: exposure,
    contrast, colour cast, noise; with `style`, also `restyle`."""
    n, size = photos.shape[0], photos.shape[1]
    xs, ys, ds = [], [], []
    for i in range(n):
        y0, x0 = crop_origin(rng, size, crop, centres[i] if centres else None)
        p = photos[i, y0:y0 + crop, x0:x0 + crop]
        l = labels[i, y0:y0 + crop, x0:x0 + crop]
        d = density[i, y0:y0 + crop, x0:x0 + crop]
        k = int(rng.integers(0, 4))
        p, l, d = np.rot90(p, k), np.rot90(l, k), np.rot90(d, k)
        if rng.random() < 0.5:
            p, l, d = p[:, ::-1], l[:, ::-1], d[:, ::-1]
        xs.append(p)
        ys.append(l)
        ds.append(d)
    x = np.stack(xs).astype(np.float32)
    if texture:
        x = skin_texture(rng, x, np.stack(ys))
    gain = rng.uniform(0.75, 1.3, (n, 1, 1, 1)) * rng.uniform(0.92, 1.08, (n, 1, 1, 3))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.75, 1.25, (n, 1, 1, 1))
    x = (x - mean) * contrast + mean
    x = x * gain + rng.normal(0, 1, x.shape).astype(np.float32) * rng.uniform(0, 5, (n, 1, 1, 1))
    if style:
        x = restyle(rng, x)
    x = np.clip(x, 0, 255).astype(np.uint8)
    return normalise(x), np.stack(ys).astype(np.int64), np.stack(ds).astype(np.float32)


def soft_dice_loss(logits, y):
    """1 - mean soft Dice over the classes present in the batch: unlike cross-entropy it
    weighs a class by its overlap, not its pixel count, which is what IoU rewards.
    Unlabelled pixels (IGNORE) count for nothing."""
    probs = torch.softmax(logits, dim=1)
    valid = (y != IGNORE).unsqueeze(1).to(probs.dtype)
    probs = probs * valid
    onehot = F.one_hot(torch.where(y == IGNORE, 0, y), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype) * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    dice = (2 * inter + 1.0) / (total + 1.0)
    return 1.0 - dice[present].mean()


def no_head_photos(rng, n, size, kind=None):
    """n generated photos with no head in them (uint8 NHWC), every pixel background: smooth walls
    and gradients of any colour (beige too), wood-grain floors, colour noise, woven or striped
    textures and blurred blobs (`kind` 0-4 gives only one of them). No skin-coloured blob: a bald crown is one. Without these a fine-tuned
    model reads a flat beige wall as bare scalp."""
    from scipy import ndimage

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size

    def skin(c):
        r, g, b = c
        return r > 95 and g > 40 and b > 20 and r > g and r > b and r - min(g, b) > 15

    def colour(saturation, skin_ok=False):
        while True:
            c = rng.uniform(0, 255, 3)
            c = c.mean() + (c - c.mean()) * saturation
            if skin_ok or not skin(c):
                return c

    out = np.zeros((n, size, size, 3), np.float32)
    for i in range(n):
        # Walls, floors and fabrics are mostly of muted colours; a flat wall may be beige.
        base = colour(rng.uniform(0.0, 1.0), skin_ok=True)
        k = int(rng.integers(0, 5)) if kind is None else kind
        if k == 0:  # wall: a smooth light gradient, a little grain
            g = rng.normal(0, 1, 2) * rng.uniform(10, 60)
            img = base + (g[0] * (x - 0.5) + g[1] * (y - 0.5))[..., None]
        elif k == 1:  # floor: wood grain along a random direction
            a = rng.uniform(0, np.pi)
            u, v = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
            grain = np.sin(u * rng.uniform(20, 120) + 3 * np.sin(v * rng.uniform(2, 12))) * rng.uniform(5, 30)
            img = base * rng.uniform(0.4, 1.0) + grain[..., None] * np.array([1.0, 0.7, 0.4])
        elif k == 2:  # noise, fine or coarse
            noise = rng.uniform(0, 255, (size, size, 3))
            img = ndimage.uniform_filter(noise, (rng.choice([1, 3, 7]),) * 2 + (1,)) if rng.random() < 0.5 else noise
        elif k == 3:  # woven or striped textile
            f1, f2 = rng.uniform(10, 80, 2)
            img = base + (np.sin(x * f1 * np.pi) * np.sin(y * f2 * np.pi) * rng.uniform(10, 60))[..., None]
        else:  # blurred blobs of random colours
            img = np.zeros((size, size, 3), np.float32) + base
            for _ in range(int(rng.integers(2, 8))):
                cx, cy, r = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.05, 0.3)]
                img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = colour(1.0)
            img = ndimage.gaussian_filter(img, (rng.uniform(1, 8),) * 2 + (0,))
        out[i] = img + rng.normal(0, rng.uniform(0, 6), (size, size, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def mix_negatives(rng, photos, labels, density, share):
    """Replace a share of a batch (already drawn) by generated no-head photos, all background."""
    swap = np.nonzero(rng.random(len(photos)) < share)[0]
    if len(swap):
        photos, labels, density = photos.copy(), labels.copy(), density.copy()
        photos[swap] = no_head_photos(rng, len(swap), photos.shape[1])
        labels[swap] = contract.CLASSES.index("background")
        density[swap] = 0.0
    return photos, labels, density


def mix_real(rng, idx, n_synth, n_real, real_p):
    """Replace a share `real_p` of a batch's synthetic photo indices by labelled real photos
    (indices n_synth.. in the joined arrays)."""
    swap = rng.random(len(idx)) < real_p
    idx = idx.copy()
    idx[swap] = n_synth + rng.integers(0, n_real, int(swap.sum()))
    return idx


def train(data, steps, batch, crop, lr, seed, dice=0.0, focus_p=0.0, style=False, bg_weight=None, texture=False,
          real=None, real_p=0.0, widths=DEFAULT_WIDTHS, class_weights=CLASS_WEIGHTS, input_size=contract.INPUT_SIZE,
          bf16=False, arch="unet", leave_out=(), lr_body=None, synth=None, negatives=0.0, log_every=50, extra_real=None):
    """Trains a network; `synth` is load_synth's result when the caller already loaded the renders
    (cross-validation trains several models on the same ones)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    if real is not None and input_size % contract.INPUT_SIZE:
        # The coarse real labels are superpixels drawn at the contract's size, enlarged whole.
        raise ValueError(f"real labels need an --input-size that is a multiple of {contract.INPUT_SIZE}")
    photos, labels, density, _, digest = synth if synth is not None else load_synth(data, input_size)
    n_synth, real_info = len(photos), None
    if real is not None and real_p > 0:
        # Real photos join the arrays with no density truth (NaN: left out of the density loss)
        # and coarse labels, IGNORE where nobody said what a region is.
        from .real_labels import load as load_real

        r_photos, r_masks, r_persons, r_digest = load_real(*real, leave_out=leave_out, size=input_size)
        photos = np.concatenate([photos, r_photos])
        labels = np.concatenate([labels, r_masks])
        density = np.concatenate([density, np.full(r_masks.shape, np.nan, np.float32)])
        real_info = {"photos": len(r_photos), "persons": sorted(set(r_persons)), "sha256": r_digest, "share": real_p,
                     "left_out": sorted(leave_out)}
    corrections_info = None
    if extra_real is not None and real_p > 0:
        # Practitioners' corrections (corrections.py): labelled in every cell, drawn from the same
        # share of each batch as the coarse labels.
        c_photos, c_masks, c_digest = extra_real
        photos = np.concatenate([photos, c_photos])
        labels = np.concatenate([labels, c_masks])
        density = np.concatenate([density, np.full(c_masks.shape, np.nan, np.float32)])
        corrections_info = {"photos": len(c_photos), "sha256": c_digest}
        if real_info is None:
            real_info = {"photos": 0, "persons": [], "sha256": c_digest, "share": real_p, "left_out": []}
        real_info["photos"] += len(c_photos)
    focus = focus_index(labels) if focus_p > 0 else None
    net = build(arch, widths, seed).to(memory_format=torch.channels_last)
    # A pretrained body may learn more slowly than the new layers on it (`lr_body`).
    body = [p for n, p in net.named_parameters() if n.startswith("body.")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("body.")]
    groups = [{"params": rest, "lr": lr}] + ([{"params": body, "lr": lr_body or lr}] if body else [])
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1)
    class_weights = list(class_weights)
    if bg_weight is not None:
        class_weights[0] = bg_weight
    weights = torch.tensor(class_weights)
    log = []
    started = time.time()
    net.train()
    for step in range(steps):
        if focus is None:
            idx, centres = rng.integers(0, n_synth, batch), None
        else:
            idx, centres = draw_batch(rng, n_synth, batch, focus, focus_p)
        if real_info is not None:
            idx = mix_real(rng, idx, n_synth, real_info["photos"], real_p)
        bp, bl, bd = photos[idx], labels[idx], density[idx]
        if negatives > 0:
            bp, bl, bd = mix_negatives(rng, bp, bl, bd, negatives)
        x, y, d = augment(rng, bp, bl, bd, crop, centres, style, texture)
        x = torch.from_numpy(x).to(memory_format=torch.channels_last)
        y, d = torch.from_numpy(y), torch.from_numpy(d)
        # bf16: the convolutions in bfloat16 (about twice as fast on CPUs with AVX512-BF16), the
        # weights, the optimiser and the loss in float32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, dens = net(x)
        logits, dens = logits.float(), dens.float()
        ce = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE)
        scalp = ((y > 0) & (y != IGNORE) & ~torch.isnan(d)).float()
        dl = (torch.abs(dens[:, 0] - torch.nan_to_num(d)) * scalp).sum() / scalp.sum().clamp(min=1.0)
        loss = ce + 0.5 * dl
        if dice > 0:
            loss = loss + dice * soft_dice_loss(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            el = time.time() - started
            ce_v, dl_v = ce.item(), dl.item()
            log.append({"step": step, "ce": ce_v, "density_l1": dl_v, "seconds": round(el, 1)})
            print(f"step {step}/{steps} ce {ce_v:.4f} dens {dl_v:.4f} {el:.0f}s ({(step + 1) * batch / el:.1f} img/s)", flush=True)
    return net, {"data_sha256": digest, "images": n_synth, "steps": steps, "batch": batch, "crop": crop,
                 "lr": lr, "seed": seed, "seconds": round(time.time() - started, 1), "log": log,
                 "params": param_count(net), "widths": list(widths), "class_weights": class_weights,
                 "input_size": input_size, "bf16": bf16, "arch": arch, "lr_body": lr_body, "negatives": negatives, "dice": dice, "focus_p": focus_p, "style": style, "texture": texture, "threads": torch.get_num_threads(),
                 "real_labels": real_info, **({"corrections": corrections_info} if corrections_info else {})}


def build(arch, widths=DEFAULT_WIDTHS, seed=0):
    """The network of an architecture: "unet" (trained from scratch, 0.1.x), "selfie"
    (MediaPipe's pretrained selfie segmentation body with a scalp head, see selfie.py) or
    "selfie-texN" (the same with a texture branch of N channels, `SelfieScalp`'s `tex_channels`)."""
    if arch == "unet":
        return UNet(widths)
    if arch == "selfie" or arch.startswith("selfie-tex"):
        from .selfie import SelfieScalp, pretrained_path

        tex = int(arch[len("selfie-tex"):]) if arch != "selfie" else 0
        return SelfieScalp(pretrained_path(), len(contract.CLASSES), contract.MEAN, contract.STD, seed, tex)
    raise ValueError(f"unknown architecture {arch}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=contract.SHIPPED_RECIPE["steps"])
    ap.add_argument("--batch", type=int, default=contract.SHIPPED_RECIPE["batch"])
    ap.add_argument("--crop", type=int, default=contract.SHIPPED_RECIPE["crop"])
    ap.add_argument("--lr", type=float, default=contract.SHIPPED_RECIPE["lr"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dice", type=float, default=0.0, help="weight of the soft Dice term")
    ap.add_argument("--focus-p", type=float, default=0.0, help="share of crops centred on a rare class")
    ap.add_argument("--style", action="store_true", help="style randomisation (see restyle)")
    ap.add_argument("--texture", action="store_true", help="skin texture on non-hair pixels (see skin_texture)")
    ap.add_argument("--class-weights", default=",".join(map(str, CLASS_WEIGHTS)),
                    help="cross-entropy weight per class, in the contract's class order")
    ap.add_argument("--bg-weight", type=float, default=None, help="background class weight (overrides --class-weights)")
    ap.add_argument("--real-labels", nargs="+", default=None, help="coarse labels on real photos (real_labels*.json, merged)")
    ap.add_argument("--leave-out", default="", help="comma-separated persons whose labelled photos are not trained on (a fold)")
    ap.add_argument("--arch", default="unet", choices=["unet", "selfie", "selfie-tex8"])
    ap.add_argument("--lr-body", type=float, default=None, help="peak learning rate of a pretrained body (default: --lr)")
    ap.add_argument("--real", default="../../shared/real/uze-dev", help="folder of the labelled real photos")
    ap.add_argument("--real-p", type=float, default=0.0, help="share of batch items drawn from the labelled real photos")
    ap.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)),
                    help="channels per U-Net level, the last the bottleneck; one more level, one more halving")
    ap.add_argument("--input-size", type=int, default=contract.INPUT_SIZE,
                    help="side of the square the whole render is resized to (the model's input size)")
    ap.add_argument("--bf16", action="store_true", help="convolutions in bfloat16 (mixed precision; weights stay float32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    weights = [float(w) for w in a.class_weights.split(",")]
    if len(weights) != len(contract.CLASSES):
        ap.error(f"--class-weights needs {len(contract.CLASSES)} numbers ({', '.join(contract.CLASSES)})")
    torch.set_num_threads(a.threads)
    real = (a.real, a.real_labels) if a.real_labels else None
    net, info = train(a.data, a.steps, a.batch, a.crop, a.lr, a.seed, a.dice, a.focus_p, a.style, a.bg_weight, a.texture,
                      real, a.real_p, tuple(int(w) for w in a.widths.split(",")),
                      weights, a.input_size, a.bf16, a.arch, tuple(p for p in a.leave_out.split(",") if p), a.lr_body)
    torch.save(net.state_dict(), a.out)
    with open(a.out + ".json", "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()

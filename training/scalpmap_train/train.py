"""Trains the U-Net on `scalpmap synth` renders, deterministically from a seed, on CPU.

python -m scalpmap_train.train --data DATA/train --steps 3000 --out OUT/model.pt
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import load_synth, normalise
from .model import UNet, param_count

# Scar and thinning are rarer and matter more to a treatment plan than background. These are
# the weights of the shipped model v0.1.0 (see models/MODEL_CARD.md for what was tried since).
CLASS_WEIGHTS = [0.6, 1.0, 1.6, 1.2, 3.0]


def augment(rng, photos, labels, density, crop):
    """Random crop, 90-degree turns and flips (real photos arrive turned), and photometric
    jitter beyond the renderer's own: exposure, contrast, colour cast, noise."""
    n, size = photos.shape[0], photos.shape[1]
    xs, ys, ds = [], [], []
    for i in range(n):
        y0, x0 = rng.integers(0, size - crop + 1, 2)
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
    gain = rng.uniform(0.75, 1.3, (n, 1, 1, 1)) * rng.uniform(0.92, 1.08, (n, 1, 1, 3))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.75, 1.25, (n, 1, 1, 1))
    x = (x - mean) * contrast + mean
    x = x * gain + rng.normal(0, 1, x.shape).astype(np.float32) * rng.uniform(0, 5, (n, 1, 1, 1))
    x = np.clip(x, 0, 255).astype(np.uint8)
    return normalise(x), np.stack(ys).astype(np.int64), np.stack(ds).astype(np.float32)


def train(data, steps, batch, crop, lr, seed, log_every=50):
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    photos, labels, density, _, digest = load_synth(data)
    net = UNet().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    weights = torch.tensor(CLASS_WEIGHTS)
    log = []
    started = time.time()
    net.train()
    for step in range(steps):
        idx = rng.integers(0, len(photos), batch)
        x, y, d = augment(rng, photos[idx], labels[idx], density[idx], crop)
        x = torch.from_numpy(x).to(memory_format=torch.channels_last)
        y, d = torch.from_numpy(y), torch.from_numpy(d)
        logits, dens = net(x)
        ce = F.cross_entropy(logits, y, weight=weights)
        scalp = (y > 0).float()
        dl = (torch.abs(dens[:, 0] - d) * scalp).sum() / scalp.sum().clamp(min=1.0)
        loss = ce + 0.5 * dl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            el = time.time() - started
            ce_v, dl_v = ce.item(), dl.item()
            log.append({"step": step, "ce": ce_v, "density_l1": dl_v, "seconds": round(el, 1)})
            print(f"step {step}/{steps} ce {ce_v:.4f} dens {dl_v:.4f} {el:.0f}s ({(step + 1) * batch / el:.1f} img/s)", flush=True)
    return net, {"data_sha256": digest, "images": int(len(photos)), "steps": steps, "batch": batch, "crop": crop,
                 "lr": lr, "seed": seed, "seconds": round(time.time() - started, 1), "log": log,
                 "params": param_count(net), "class_weights": CLASS_WEIGHTS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, info = train(a.data, a.steps, a.batch, a.crop, a.lr, a.seed)
    torch.save(net.state_dict(), a.out)
    with open(a.out + ".json", "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()

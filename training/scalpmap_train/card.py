"""Writes models/MODEL_CARD.md from the training, export-check and evaluation JSON files."""

import argparse
import hashlib
import json
import os

from . import contract


def focus_text(train):
    p = train.get("focus_p", 0.0)
    return f" ({p:.0%} of them centred on a thinning, bare or scar pixel)" if p else ""


def augment_text(train):
    parts = []
    if train.get("style"):
        parts.append("style randomisation (smooth uneven light and colour fields across the photo, gamma, saturation)")
    if train.get("texture"):
        parts.append("skin texture (pores, mottling, stubble dots) on non-hair pixels")
    return "".join(f" and {p}" for p in parts)


def dice_text(train):
    d = train.get("dice", 0.0)
    return f" + {d:g} x soft Dice over the classes in the batch" if d else ""


def real_text(train):
    r = train.get("real_labels")
    if not r:
        return ""
    return (f" In {r['share']:.0%} of the crops the photo is instead one of {r['photos']} real photos of {len(r['persons'])} men"
            f" with coarse region labels (`training/real_labels.json`; unlabelled regions and the density term left out;"
            f" labels and photos sha256 `{r['sha256'][:16]}...`).")


def trained_on(train):
    r = train.get("real_labels")
    if not r:
        return "Trained only on `scalpmap synth` renders."
    return f"Trained on `scalpmap synth` renders and on coarse labels of {r['photos']} real photos of {len(r['persons'])} men."


def f3(x):
    return "n/a" if x is None else f"{x:.3f}"


def labels_section(lab):
    """The model's maps against the coarse real labels, pixel by pixel."""
    iou = lab["iou"]
    return [
        f"## Real photos: agreement with coarse labels ({lab['photos']} photos of {lab['persons']} men)",
        "",
        "The same photos, compared pixel by pixel with the coarse region labels (`training/real_labels.py`:",
        f"superpixels named per class by eye; {lab['labelled_pixel_share'] * 100:.0f} % of the pixels are labelled, the rest are ambiguous",
        "edges and left out; no scar is labelled). A coarse, single-annotator truth: it says where the maps",
        "disagree with what the photo shows, within the labels' own uncertainty.",
        "",
        "| " + " | ".join(iou) + " | mean IoU | pixel accuracy | loss fraction: mean abs. error | bias (model - labels) |",
        "|" + "---|" * (len(iou) + 4),
        "| " + " | ".join(f3(v) for v in iou.values())
        + f" | **{f3(lab['miou_labelled_classes'])}** | {f3(lab['pixel_accuracy'])} | {f3(lab['loss_fraction_mae'])} | {lab['loss_fraction_bias']:+.3f} |",
        "",
        "The loss fractions here are both taken over the pixels the labels call scalp, so they leave out",
        "skin outside the scalp read as loss, which the product's own fraction counts (it is the main error",
        "of side views). By view, as shares of the labelled pixels, the errors that move the loss fraction:",
        "",
        "| view | pixel accuracy | background read as loss | loss read as hair | hair read as loss | background read as hair |",
        "|---|---|---|---|---|---|",
    ] + [
        f"| {v} | {f3(x['pixel_accuracy'])} | {x['background_as_loss']:.2f} | {x['loss_as_hair']:.2f} | {x['hair_as_loss']:.2f} | {x['background_as_hair']:.2f} |"
        for v, x in lab.get("per_view", {}).items()
    ] + [""]


def repeat_lines(rep):
    """How repeatable the coarse labels are, next to the model on the same pixels."""
    if not rep:
        return []
    iou = ", ".join(f"{c} {v:.2f}" for c, v in rep["iou"].items())
    diffs = [abs(p["loss_fraction_first"] - p["loss_fraction_second"]) for p in rep["per_photo"]]
    shares = [p["both_labelled_share"] for p in rep["per_photo"]]
    lines = [
        f"How repeatable the labels are: a second labelling pass over {rep['photos']} of the photos (`training/real_labels_second.json`,",
        "one per view, men picked by rule, made without looking at the first pass, by the same kind of labeller, so it",
        f"measures repeatability, not an independent expert's view) agrees with the first on {rep['agreement'] * 100:.0f} % of the pixels both",
        f"passes name ({min(shares) * 100:.0f}-{max(shares) * 100:.0f} % of each photo; the edges either pass left out are not compared):",
        f"IoU {iou}; mean **{rep['miou']:.2f}**. The labels' loss fractions differ by",
        f"{min(diffs):.2f} to {max(diffs):.2f} per photo.",
    ]
    m = rep.get("model_on_same_pixels")
    if m:
        lines.append(f"On the same pixels the model agrees with the first pass on {m['agreement'] * 100:.0f} % (mean IoU {m['miou']:.2f}): far below the labels' own"
                     " repeatability, so label noise is not what holds the model's figures down.")
    return lines + [""]


def scar_lines(sp):
    """Scars as a plan sees them: renders where a scar region survives the analyser's clean-up."""
    if not sp:
        return []
    return [f"Scars as a plan sees them (a scar region the analyser's clean-up keeps): found on {sp['found']} of the "
            f"{sp['with_scar']} renders that show a scar, drawn on {sp['false']} of the {sp['without_scar']} that show none."]


def fit_lines(fit, unseen):
    """Fit against unseen renders: the same mIoU on renders of the training folder."""
    if not fit:
        return []
    verdict = ("no better than on unseen renders: the network underfits, so more renders cannot help it; capacity and compute can"
               if fit["miou"] < unseen + 0.02 else "better than on unseen renders")
    return [f"On every {fit['every']}th render of the training folder ({fit['images']}) mIoU {f3(fit['miou'])}, {verdict}."]


def write(model, train, check, ev, out, command, crosscheck=None):
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    size = os.path.getsize(model)
    s = ev["synthetic"]
    side = contract.input_size(train)
    lines = [
        "# scalpmap-seg model card",
        "",
        f"`models/scalpmap-seg.onnx`: version {contract.version_for(train)}, {size / 1e6:.2f} MB, sha256 `{sha}`.",
        "",
        "A small U-Net that maps every pixel of a scalp photo to background / hair / thinning / bare / scar",
        f"and estimates follicle density (hairs per cm² of scalp). {trained_on(train)}",
        "",
        "## Contract (also in the ONNX `metadata_props`)",
        "",
        f"- input `image`: 1x3x{side}x{side} float32, RGB, pixel/255 then (x - mean) / std with mean {contract.MEAN}, std {contract.STD}",
        f"- resize rule: {contract.resize_rule(side)}",
        f"- output `probs`: 1x5x{side}x{side} softmax over classes {', '.join(contract.CLASSES)} (in this order)",
        f"- output `density`: 1x1x{side}x{side}, hairs/cm² divided by {contract.DENSITY_UNIT:g}",
        f"- operators: {', '.join(check['ops'])}; opset {contract.OPSET}; BatchNorm folded; fixed shape, no `value_info`",
        f"- training data sha256: `{contract.training_data_sha256(train)}`"
        + (f" (renders `{train['data_sha256']}` with the real labels and photos)" if train.get("real_labels") else ""),
        "",
        "## Training",
        "",
        f"{train['images']} renders (`scalpmap synth --seed 1000 --size 512`, resized to {side}), {train['steps']} steps of",
        f"{train['batch']} random {train['crop']}x{train['crop']} crops{focus_text(train)} with 90-degree turns, flips and photometric jitter{augment_text(train)};",
        f"AdamW, one-cycle learning rate {train['lr']}, seed {train['seed']}, {train.get('threads', 2)} CPU threads{', convolutions in bfloat16' if train.get('bf16') else ''}: {train['seconds'] / 60:.1f} minutes.",
        f"{train['params']:,} parameters. Loss: class-weighted cross-entropy (weights {train['class_weights']}){dice_text(train)} + 0.5 x L1 density on scalp.{real_text(train)}",
        "",
        "## Agreement of runtimes with PyTorch (random input, max abs difference)",
        "",
        "| runtime | probs | density |",
        "|---|---|---|",
    ]
    for rt in ("onnxruntime", "tract"):
        lines.append(f"| {rt} | {check[rt]['probs_max_abs_diff']:.1e} | {check[rt]['density_max_abs_diff']:.1e} |")
    lines += [
        "",
        f"## Accuracy on synthetic photos from unseen seeds ({s['images']} renders, seed {', '.join(map(str, s['seeds']))})",
        "",
        "| class | IoU |",
        "|---|---|",
    ]
    for c, v in s["iou"].items():
        lines.append(f"| {c} | {f3(v)} |")
    lines += [
        f"| **mean (mIoU)** | **{f3(s['miou'])}** |",
        "",
        f"Pixel accuracy {f3(s['pixel_accuracy'])}; density mean absolute error on scalp {s['density_mae_per_cm2_on_scalp']:.1f} hairs/cm²;",
        f"(thinning + bare) / scalp fraction per photo: mean absolute error {f3(s['loss_fraction_mae'])}, Pearson r {f3(s['loss_fraction_pearson'])}.",
    ]
    lines += scar_lines(s.get("scar_photos"))
    lines += fit_lines(ev.get("fit"), s["miou"])
    lines += [
        "Confusion matrix (rows truth, columns prediction, order as the classes):",
        "",
        "```",
    ]
    lines += [" ".join(f"{v:>9}" for v in row) for row in s["confusion_rows_truth_cols_pred"]]
    lines += ["```", ""]
    if "real" in ev:
        r = ev["real"]
        excluded = r.get("excluded_persons") or []
        seen = (f"The model trained on coarse labels of the photos of {len(excluded)} other men"
                " (`training/real_labels.json`); they are left out here, so no figure comes from a photo the model saw."
                if excluded else "No real photo was used in training.")
        lab = r.get("against_labels")
        ceiling = lab["labels_as_model"] if lab and lab["photos"] == r["photos"] else None
        lines += [
            f"## Real photos: rank check against Norwood ({r['photos']} photos of {r.get('persons', 21)} men, `../shared/real/uze-dev`)",
            "",
            "Spearman correlation between the predicted (thinning + bare) / scalp fraction and the labelled",
            "Norwood level, next to the trivial baseline (fraction of skin-coloured, smooth pixels in the",
            f"central half of the photo) computed on the same photos. {seen}",
            f"The 95 % interval resamples the men (with all their photos) 2,000 times: with {r.get('persons', 21)} men the",
            "figures are uncertain by a tenth or more, so small differences between models mean little.",
        ]
        if ceiling:
            lines += [
                "The last column is the same figure computed from the coarse labels' own loss fractions",
                "(`training/real_labels*.json`): what a model that drew exactly the labels would score. The Norwood",
                "level grades a man from all his views, so a per-photo fraction cannot rank perfectly; pooling two",
                "views whose fractions run on different scales (a bald crown seen from the back shows less of",
                "itself than from above) lowers the pooled figures most.",
            ]
        lines += [
            "",
            "| views | n | model | model, 95 % interval | baseline |" + (" coarse labels |" if ceiling else ""),
            "|---|---|---|---|---|" + ("---|" if ceiling else ""),
        ]

        def row(name, x, bold=False, label=None):
            ci = x.get("spearman_95")
            ci = f"{ci[0]:.2f} to {ci[1]:.2f}" if ci else "n/a"
            value = f"**{f3(x['spearman'])}**" if bold else f3(x["spearman"])
            tail = f" {f3(label['spearman'])} |" if label else ""
            return f"| {name} | {x['n']} | {value} | {ci} | {f3(x['baseline_spearman'])} |{tail}"

        pick = lambda key, v=None: (ceiling[key][v] if v else ceiling[key]) if ceiling else None
        for v, x in r["per_view"].items():
            lines.append(row(v, x, label=pick("per_view", v)))
        lines.append(row("**top-down + back**", r["top_down_and_back"], bold=True, label=pick("top_down_and_back")))
        lines.append(row("all", r["all_views"], label=pick("all_views")))
        lines.append("")
        if "photos_with_scar" in r:
            lines += [
                f"False scars: none of these men is known to have a scar, and {r['photos_with_scar']} of the {r['photos']} photos' maps",
                "keep a scar region that the analyser's clean-up would not remove (each would add a scar session to",
                "the man's plan; `real_plan_check.py` counts the plans).",
                "",
            ]
        if lab:
            lines += labels_section(lab)
            lines += repeat_lines(r.get("labels_repeatability"))
        if crosscheck:
            c = crosscheck
            lines += [
                f"Cross-check of the recipe on all {c['persons']} men: a second model, trained the same way on the other",
                "men's labels (`training/real_labels_other.json`), scored on the men the shipped model trained on, pooled",
                "with the shipped model's scores above (every photo scored by the model that never saw it; two models'",
                "loss fractions are not on one scale, which lowers a pooled rank correlation):",
                "",
                "| views | n | pooled | 95 % interval | baseline |",
                "|---|---|---|---|---|",
            ]
            for v, x in c["per_view"].items():
                lines.append(row(v, x))
            lines.append(row("**top-down + back**", c["top_down_and_back"], bold=True))
            lines.append(row("all", c["all_views"]))
            lines.append("")
    sp = ev["speed"]
    lines += [
        "## Speed (one 256x256 image, median, this 2-core machine)",
        "",
        f"ONNX Runtime {sp['onnxruntime_ms_1_threads']:.1f} ms on 1 thread, {sp['onnxruntime_ms_2_threads']:.1f} ms on 2; tract {sp['tract_ms']:.1f} ms.",
        "",
        "## Reproduce",
        "",
        "```sh",
        command,
        "```",
        "",
        "Every figure above is recomputed by that command (evaluate.py writes `training/out/eval.json`).",
        "Training is deterministic for a given seed and thread count on one machine; across machines",
        "and library builds expect the same figures within about ±0.01 IoU, not identical bytes.",
        "",
    ]
    with open(out, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--check", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--limits", required=True, help="markdown file with the honest limits, appended")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bash training/run.sh")
    ap.add_argument("--crosscheck", default=None, help="pooled real-photo figures of the cross-check (evaluate --pool)")
    a = ap.parse_args()
    cross = json.load(open(a.crosscheck)) if a.crosscheck else None
    write(a.model, json.load(open(a.train)), json.load(open(a.check)), json.load(open(a.eval)), a.out, a.command, cross)
    with open(a.out, "a") as f:
        f.write(open(a.limits).read())


if __name__ == "__main__":
    main()

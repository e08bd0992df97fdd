"""What a face stage could take off the maps (DECISIONS.md run 10): a measurement, not a stage.

MediaPipe's face detector (short range, from the same 0.10.14 wheel as the selfie network) runs on
each development photo's 256x256 model input at four turns; the most confident face gives a
"lower face" region (below the eyes, within the box's width, down to the box's bottom plus half
its height), fixed in advance, fit on nothing. `score` sets that region to background in a
recipe's out-of-fold class maps and computes `cv score`'s label figures again.

Two steps, because the detector needs the `mediapipe` package, which the training environment
does not carry (`pip install mediapipe==0.10.14` in a separate environment):

/path/to/mediapipe-env/bin/python -m scalpmap_train.facestage faces --out out/faces.npz
python -m scalpmap_train.facestage score --faces out/faces.npz --models out/cv-selfie-real-long --out out/facestage.json
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .data import prepare_photo
from .real_labels import photos_present, read_rows

MIN_CONFIDENCE = 0.5


def lower_face(det, k, size):
    """The region's mask (size x size) from one MediaPipe detection on the photo turned k times
    (the rule is facedet.lower_face's, which the product uses)."""
    from .facedet import lower_face as region_of

    box = det.location_data.relative_bounding_box
    kps = np.array([(p.x, p.y) for p in det.location_data.relative_keypoints])
    return region_of((box.xmin, box.ymin, box.width, box.height), kps, k, size)


def faces(real, out):
    import mediapipe as mp

    rows = read_rows(real)
    masks, found = {}, {}
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=MIN_CONFIDENCE) as fd:
        for r in rows:
            photo = prepare_photo(Image.open(Path(real) / r["file"]))
            best = None
            for k in range(4):
                res = fd.process(np.ascontiguousarray(np.rot90(photo, k)))
                for det in res.detections or []:
                    if best is None or det.score[0] > best[0].score[0]:
                        best = (det, k)
            size = photo.shape[0]
            masks[r["file"]] = lower_face(*best, size) if best else np.zeros((size, size), bool)
            found[r["file"]] = {"view": r["view"], "face": best is not None,
                                "score": float(best[0].score[0]) if best else None, "turn": best[1] if best else None,
                                "share": float(masks[r["file"]].mean())}
            print(r["file"], found[r["file"]], flush=True)
    np.savez_compressed(out, files=np.array(list(masks)), masks=np.stack(list(masks.values())))
    Path(str(out) + ".json").write_text(json.dumps(found, indent=1))


def score(faces_npz, models, real, out):
    from .cv import LABEL_FILES, SCALP_VIEWS, agreement_figures, class_map, folds, labelled_figures
    from .evaluate import read_labels, session
    from .real_labels import IGNORE
    from .real_labels import mask as label_mask

    z = np.load(faces_npz)
    region = dict(zip(z["files"], z["masks"]))
    rows = read_rows(real)
    fold_of = folds(rows)
    spec = read_labels(LABEL_FILES)
    sessions, before, after, cost = {}, [], [], []
    for r in rows:
        if r["file"] not in spec:
            continue
        path = str(Path(models) / f"fold{fold_of[r['person']]}.onnx")
        sessions.setdefault(path, session(path))
        photo = prepare_photo(Image.open(Path(real) / r["file"]))
        pred = class_map(sessions[path], photo)
        masked = np.where(region[r["file"]], 0, pred).astype(np.uint8)
        lab = label_mask(photo, spec[r["file"]])
        base = {"person": r["person"], "view": SCALP_VIEWS[r["view"]]}
        before.append(dict(base, model=labelled_figures(pred, lab)))
        after.append(dict(base, model=labelled_figures(masked, lab)))
        scalp = (lab > 0) & (lab != IGNORE)
        cost.append(dict(base, scalp=int(scalp.sum()), removed=int((scalp & region[r["file"]]).sum())))
    def headline(figs):
        return {v: {k: f[k] for k in ("miou", "iou", "background_read_as_loss", "loss_read_as_hair", "miou_interval",
                                      "background_read_as_loss_interval")} for v, f in figs.items()}
    result = {"models": str(models), "before": headline(agreement_figures(before, "model")),
              "after": headline(agreement_figures(after, "model")),
              "labelled_scalp_removed": {v: sum(c["removed"] for c in cost if v in ("all", c["view"])) /
                                         max(1, sum(c["scalp"] for c in cost if v in ("all", c["view"])))
                                         for v in ["top", "front", "back", "left", "right", "all"]}}
    Path(out).write_text(json.dumps(result, indent=1))
    for v in ["top", "front", "back", "left", "right", "all"]:
        b, a = result["before"][v], result["after"][v]
        print(f"{v:6s} mIoU {b['miou']:.3f} -> {a['miou']:.3f}  bg->loss {b['background_read_as_loss']:.3f} -> "
              f"{a['background_read_as_loss']:.3f}  loss->hair {b['loss_read_as_hair']:.3f} -> {a['loss_read_as_hair']:.3f}  "
              f"scalp removed {result['labelled_scalp_removed'][v]:.3f}")
    return result


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faces", help="the lower-face region of every development photo (needs mediapipe)")
    f.add_argument("--real", default="../../shared/real/uze-dev")
    f.add_argument("--out", required=True)
    s = sub.add_parser("score", help="a recipe's out-of-fold maps with the region set to background")
    s.add_argument("--faces", required=True)
    s.add_argument("--models", required=True)
    s.add_argument("--real", default="../../shared/real/uze-dev")
    s.add_argument("--out", required=True)
    a = ap.parse_args()
    if not photos_present(a.real):
        return
    if a.cmd == "faces":
        faces(a.real, a.out)
    else:
        score(a.faces, a.models, a.real, a.out)


if __name__ == "__main__":
    main()

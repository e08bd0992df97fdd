"""MediaPipe's short-range face detector (BlazeFace), converted for the product's side-view face
stage (DECISIONS.md run 11), and the reference of what the product does with it.

The network (128x128 RGB -> 896 anchor scores and box/keypoint regressions, trained by Google on
real faces) ships in the same PyPI `mediapipe` wheel (0.10.14, Apache-2.0) as the selfie network:
`mediapipe/modules/face_detection/face_detection_short_range.tflite`. Its graph is replayed with
`selfie.read_graph` (CONV_2D, DEPTHWISE_CONV_2D, RELU, ADD, channel PAD, MAX_POOL_2D, RESHAPE,
CONCATENATION) and exported to ONNX with MediaPipe's input scaling ([0, 1] -> [-1, 1]) and the
score's sigmoid written in, so the graph takes `image` (4 x 3 x 128 x 128, RGB in [0, 1]: the four
turns of one photo) and gives `scores` (4 x 896) and `boxes` (4 x 896 x 16, raw regressions in
input pixels).

What the product does with the outputs (`src/model/face.rs` is the same, tested against this):
- input: the 256x256 model input's odd pixels (128x128), at four quarter turns;
- anchors: MediaPipe's SSD anchors for this network (strides 8 and 16, 2 and 6 anchors per cell,
  fixed size), decoding x, y, w, h and six keypoints relative to the input;
- per turn the most confident detection (score >= 0.5), merged as MediaPipe's weighted
  non-maximum suppression merges it (score-weighted mean of the detections overlapping it by an
  IoU above 0.3); over the four turns the most confident;
- its "lower face" (`lower_face`, run 10's rule): below the eye line, within the box's width,
  down to the box's bottom plus half its height; set to background on side views only.

python -m scalpmap_train.facedet convert --out ../models      # the ONNX file + provenance
python -m scalpmap_train.facedet check                        # against Google's interpreter and run 10's detections
python -m scalpmap_train.facedet reference --out ../models/face-detector.reference.json
"""

import argparse
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .selfie import LICENCE_MEMBER, WHEEL_SHA256, add_conv, checked_file, conv, read_graph

MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
TFLITE_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
SIZE = 128
TURNS = 4
MIN_SCORE = 0.5
# A merged face is accepted only from this score. Run 14 measured 0.70 (set on the training
# renders' side views) and did not ship it: real profile faces score as low (DECISIONS.md).
ACCEPT = 0.5
MIN_SUPPRESSION_IOU = 0.3
BELOW_BOX = 0.5  # run 10: the region reaches this many box heights below the box (chin, beard)
# The views that get the stage (src/model/face.rs `applies_to`): every development side view
# shows a face; on top, back and front views its answers land on scalp (run 10).
SIDE_VIEWS = ("left", "right")
# MediaPipe's SsdAnchorsCalculator options for this network (face_detection_short_range.pbtxt).
STRIDES = (8, 16, 16, 16)
DEFAULT_TFLITE = Path(__file__).resolve().parent.parent / "data" / "pretrained" / "face_detection_short_range.tflite"


class FaceNet(nn.Module):
    """The detector, replayed from its tflite graph: N x 3 x 128 x 128 in [0, 1] -> (scores
    N x 896 after the sigmoid, boxes N x 896 x 16)."""

    def __init__(self, path):
        super().__init__()
        ops, consts, self.input = read_graph(path)
        self.weights = nn.ParameterDict()
        self.ops = [add_conv(self.weights, spec, consts, trainable=False) if spec["kind"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
                    else spec for spec in ops]

    def forward(self, x):
        env = {self.input: x * 2.0 - 1.0}  # MediaPipe feeds this network [-1, 1]
        for spec in self.ops:
            kind, ins = spec["kind"], spec["inputs"]
            a = env[ins[0]]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                y = conv(a, spec, self.weights)
            elif kind == "RELU":
                y = torch.relu(a)
            elif kind == "ADD":
                y = a + env[ins[1]]
            elif kind == "PAD":
                (_, _), (t, b), (l, r), (c0, c1) = spec["pads"]
                y = F.pad(a, (l, r, t, b, c0, c1))
            elif kind == "MAX_POOL_2D":
                if a.shape[2] % 2 or a.shape[3] % 2:
                    raise ValueError("the detector's pools expect even sizes (128x128 input)")
                y = F.max_pool2d(a, spec["k"], spec["stride"])
            elif kind == "RESHAPE":
                # NCHW back to the graph's NHWC order before flattening anchors and values.
                y = a.permute(0, 2, 3, 1).reshape(-1, spec["shape"][1], spec["shape"][2])
            elif kind == "CONCATENATION":
                y = torch.cat([env[n] for n in ins], dim=spec["axis"])
            else:
                raise ValueError(f"operator {kind} is not in the face detector")
            env[spec["outputs"][0]] = y
        scores = torch.sigmoid(torch.clamp(env["classificators"][..., 0], -100.0, 100.0))
        return scores, env["regressors"]


def anchors():
    """MediaPipe's SSD anchor centres for this network (x, y in [0, 1]), in its output order."""
    out = []
    layer = 0
    while layer < len(STRIDES):
        stride, n = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:
            n += 2  # one anchor of aspect 1 and one interpolated, per layer of the same stride
            layer += 1
        cells = -(-SIZE // stride)
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * n
    return np.array(out, np.float32)


ANCHORS = anchors()


def decode(scores, boxes):
    """One image's most confident face, merged as MediaPipe's weighted non-maximum suppression
    merges it: (score, box (xmin, ymin, w, h), keypoints 6 x 2), all relative to the input; or
    None when no anchor reaches MIN_SCORE."""
    keep = np.flatnonzero(scores >= MIN_SCORE)
    if keep.size == 0:
        return None
    raw = boxes[keep].astype(np.float64) / SIZE
    cx = raw[:, 0] + ANCHORS[keep, 0]
    cy = raw[:, 1] + ANCHORS[keep, 1]
    w, h = raw[:, 2], raw[:, 3]
    rect = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    kps = raw[:, 4:].reshape(-1, 6, 2) + ANCHORS[keep, None, :]
    s = scores[keep].astype(np.float64)
    top = int(np.argmax(s))
    ix = np.clip(np.minimum(rect[:, 2], rect[top, 2]) - np.maximum(rect[:, 0], rect[top, 0]), 0, None)
    iy = np.clip(np.minimum(rect[:, 3], rect[top, 3]) - np.maximum(rect[:, 1], rect[top, 1]), 0, None)
    inter = ix * iy
    area = (rect[:, 2] - rect[:, 0]) * (rect[:, 3] - rect[:, 1])
    iou = inter / np.maximum(area + area[top] - inter, 1e-12)
    near = iou > MIN_SUPPRESSION_IOU
    near[top] = True
    wt = s[near] / s[near].sum()
    r = (rect[near] * wt[:, None]).sum(0)
    k = (kps[near] * wt[:, None, None]).sum(0)
    return float(s[top]), (r[0], r[1], r[2] - r[0], r[3] - r[1]), k


def halve(photo_uint8):
    """The 256x256 model input taken to the detector's 128x128 (pixel 2i + 1, 2j + 1), as floats
    in [0, 1]. MediaPipe's own resampling is not reproduced exactly; of those tried on the 105
    development photos (2x2 mean, PIL bilinear, bilinear at offsets 0 to 1.25) this one agrees
    best with its detections (found or not on 103 of 105, scores within 0.011 at the median)."""
    return photo_uint8[1::2, 1::2].astype(np.float32) / 255.0


def turn(xy, k):
    """Normalised (x, y) in a photo turned k quarter turns anticlockwise (np.rot90) back to the
    unturned photo's normalised coordinates."""
    x, y = xy
    for _ in range(k):
        # np.rot90 once puts the old pixel (x = 1 - y', y = x') at the new (x', y').
        x, y = 1.0 - y, x
    return x, y


def lower_face(box, kps, k, size):
    """Run 10's region (size x size mask) from one detection on the photo turned k times: box
    (xmin, ymin, w, h) and keypoints (right eye, left eye, nose, mouth, right ear, left ear)
    relative to the turned photo."""
    xmin, ymin, bw, bh = box
    reye, leye, mouth = (np.array(turn(tuple(kps[i]), k)) * size for i in (0, 1, 3))
    corners = np.array([turn((xmin + dx * bw, ymin + dy * bh), k) for dx in (0, 1) for dy in (0, 1)]) * size
    eyes = (reye + leye) / 2
    down = mouth - eyes
    down /= max(np.linalg.norm(down), 1e-6)
    right = np.array([-down[1], down[0]])
    centre = corners.mean(0)
    half_w = np.abs((corners - centre) @ right).max()
    bottom = (corners - eyes) @ down
    reach = bottom.max() + BELOW_BOX * (bottom.max() - bottom.min())
    yy, xx = np.mgrid[0:size, 0:size]
    p = np.stack([xx + 0.5, yy + 0.5], -1)
    along = (p - eyes) @ down
    across = (p - centre) @ right
    return (along > 0) & (along <= reach) & (np.abs(across) <= half_w)


def detect(run, photo_uint8, accept=None):
    """The most confident face over four quarter turns of a 256x256 model input: (score, turn,
    box, keypoints), or None when none reaches `accept` (None: ACCEPT). `run` maps
    N x 3 x 128 x 128 floats to (scores, boxes)."""
    accept = ACCEPT if accept is None else accept
    small = halve(photo_uint8)
    batch = np.stack([np.rot90(small, k) for k in range(4)]).transpose(0, 3, 1, 2)
    scores, boxes = run(np.ascontiguousarray(batch, np.float32))
    best = None
    for k in range(4):
        d = decode(scores[k], boxes[k])
        if d is not None and (best is None or d[0] > best[0]):
            best = (d[0], k, d[1], d[2])
    return best if best is not None and best[0] >= accept else None


def region(run, photo_uint8, accept=None):
    """The lower-face mask the product sets to background on a side view (all False when no
    face is found), and the detection."""
    size = photo_uint8.shape[0]
    d = detect(run, photo_uint8, accept)
    if d is None:
        return np.zeros((size, size), bool), None
    return lower_face(d[2], d[3], d[1], size), d


def onnx_runner(path):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(["scores", "boxes"], {"image": x})


def tflite_path(path=None):
    """The extracted detector, checked against the sha256 it was converted from."""
    return checked_file(path or DEFAULT_TFLITE, TFLITE_SHA256,
                        "python -m scalpmap_train.facedet convert --wheel mediapipe-0.10.14-...whl")


def convert(wheel, out):
    """The tflite file out of the wheel (into data/pretrained), the ONNX graph and its provenance
    into `out`."""
    wheel = Path(wheel)
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
        licence = z.read(LICENCE_MEMBER)
    sha = hashlib.sha256(data).hexdigest()
    if (wheel_sha, sha) != (WHEEL_SHA256, TFLITE_SHA256):
        raise SystemExit(f"unexpected wheel or file: wheel {wheel_sha}, tflite {sha}")
    DEFAULT_TFLITE.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_TFLITE.write_bytes(data)
    out = Path(out)
    net = FaceNet(DEFAULT_TFLITE).eval()
    onnx_path = out / "face-detector.onnx"
    # A fixed batch of the four turns: tract optimises a fixed shape much better (90 against
    # 166 ms per photo in bench/run.sh's side-view run).
    torch.onnx.export(net, (torch.zeros(TURNS, 3, SIZE, SIZE),), onnx_path, input_names=["image"],
                      output_names=["scores", "boxes"], opset_version=17, do_constant_folding=True, dynamo=False)
    (out / "MEDIAPIPE_LICENSE").write_bytes(licence)
    prov = {"package": "mediapipe", "version": "0.10.14", "wheel": wheel.name, "wheel_sha256": wheel_sha,
            "file": MEMBER, "file_sha256": sha, "licence": "Apache-2.0", "licence_file": LICENCE_MEMBER,
            "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            "conversion": "python -m scalpmap_train.facedet convert --wheel WHEEL --out ../models "
                          "(training/scalpmap_train/facedet.py: the tflite graph replayed in PyTorch, "
                          "[0, 1] -> [-1, 1] and the score sigmoid written in, exported at opset 17)"}
    (out / "face_provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    return prov


def check(tflite, onnx_path, real, faces_json):
    """The replay against Google's interpreter (raw outputs), the ONNX file against the replay,
    and the whole rule against run 10's detections by MediaPipe's own runtime."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from .data import prepare_photo
    from .real_labels import read_rows

    rows = read_rows(real)
    photos = [prepare_photo(Image.open(Path(real) / r["file"])) for r in rows]
    net = FaceNet(tflite).eval()
    it = Interpreter(model_path=str(tflite))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    worst_raw = worst_onnx = 0.0
    run = onnx_runner(onnx_path)
    for p in photos[::7]:
        x = halve(p)[None]
        it.set_tensor(inp, (x * 2 - 1).astype(np.float32))
        it.invoke()
        ref_s = 1 / (1 + np.exp(-np.clip(it.get_tensor(outs["classificators"])[0, :, 0], -100, 100)))
        ref_b = it.get_tensor(outs["regressors"])[0]
        with torch.no_grad():
            s, b = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        os_, ob = run(np.ascontiguousarray(np.repeat(x.transpose(0, 3, 1, 2), TURNS, 0)))
        worst_raw = max(worst_raw, float(np.abs(s[0].numpy() - ref_s).max()), float(np.abs(b[0].numpy() - ref_b).max()) / SIZE)
        worst_onnx = max(worst_onnx, float(np.abs(os_[0] - s[0].numpy()).max()), float(np.abs(ob[0] - b[0].numpy()).max()) / SIZE)
    result = {"replay_vs_interpreter_max_abs": worst_raw, "onnx_vs_replay_max_abs": worst_onnx}
    if worst_raw > 1e-4 or worst_onnx > 1e-4:
        raise SystemExit(f"the converted detector differs: {result}")
    if not Path(faces_json).exists():
        # MediaPipe's own detections come from `facestage faces`, in an environment with mediapipe.
        return dict(result, mediapipe="no detections at " + str(faces_json))
    mp = json.loads(Path(faces_json).read_text())
    z = np.load(str(faces_json)[: -len(".json")])
    mp_mask = dict(zip(z["files"], z["masks"]))
    agree, ious, score_diff = 0, {}, []
    for r, p in zip(rows, photos):
        mask, d = region(run, p)
        ref = mp[r["file"]]
        agree += (d is not None) == ref["face"]
        if d is not None and ref["face"]:
            score_diff.append(abs(d[0] - ref["score"]))
            u = (mask | mp_mask[r["file"]]).sum()
            ious.setdefault(r["view"], []).append(float((mask & mp_mask[r["file"]]).sum() / max(u, 1)))
    return {**result, "photos": len(rows), "found_agrees_with_mediapipe": agree,
            "score_abs_difference_median": float(np.median(score_diff)) if score_diff else None,
            "region_iou_with_mediapipe": {v: {"n": len(x), "median": float(np.median(x)), "min": float(np.min(x))}
                                          for v, x in ious.items()}}


def reference(onnx_path, out):
    """What the product's tests compare with: the raw outputs on a fixed input, and the decoded
    region on rendered test inputs (a face-like pattern is not needed: agreement is what is tested)."""
    run = onnx_runner(onnx_path)
    # A smooth fixed input (sums of sines), so both engines see the same numbers to float precision.
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    x = np.stack([0.5 + 0.4 * np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in (0.0, 1.0, 2.0)]).astype(np.float32)
    # The batch is the formula image at its four turns, as the product feeds the detector.
    s, b = run(np.ascontiguousarray(np.stack([np.rot90(x, k, axes=(1, 2)) for k in range(TURNS)])))
    top = [np.argsort(-s[k])[:16] for k in range(TURNS)]
    # A decoding case with raw outputs from a formula both sides compute (some scores above the
    # threshold, overlapping boxes among them).
    i = np.arange(896)
    fake_s = (0.3 + 0.3 * np.sin(i * 0.37)).astype(np.float32)
    fake_b = (6.0 * np.sin(i[:, None] * 16 + np.arange(16)[None, :])).astype(np.float32)
    fake_b[:, 2:4] += 30.0
    d = decode(fake_s, fake_b)
    res = {"input": "channel c: 0.5 + 0.4 sin(6 x + c) cos(5 y - c), x and y = pixel index / 128, c = 0, 1, 2; "
                    "batch item k: that image turned k times (np.rot90)",
           "top_anchors": [t.tolist() for t in top], "top_scores": [s[k, t].tolist() for k, t in enumerate(top)],
           "top_boxes": [b[k, t].tolist() for k, t in enumerate(top)],
           "decode_case": {"scores": "0.3 + 0.3 sin(0.37 i), as float32, i = anchor",
                           "boxes": "6 sin(16 i + j) (+ 30 for j = 2, 3), as float32, j = value",
                           "above_threshold": int((fake_s >= MIN_SCORE).sum()),
                           "score": d[0], "box": list(d[1]), "keypoints": d[2].reshape(-1).tolist()}}
    Path(out).write_text(json.dumps(res) + "\n")
    return {k: v for k, v in res.items() if k != "decode_case"}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="the detector out of the mediapipe wheel, to ONNX (pip download mediapipe==0.10.14 --no-deps)")
    c.add_argument("--wheel", required=True)
    c.add_argument("--out", default="../models")
    k = sub.add_parser("check", help="against Google's interpreter and MediaPipe's own detections (run 10's faces)")
    k.add_argument("--onnx", default="../models/face-detector.onnx")
    k.add_argument("--real", default="../../shared/real/uze-dev")
    k.add_argument("--faces", default="out/faces.npz.json", help="`facestage faces`' detections")
    r = sub.add_parser("reference", help="the JSON the Rust tests compare with")
    r.add_argument("--onnx", default="../models/face-detector.onnx")
    r.add_argument("--out", default="../models/face-detector.reference.json")
    a = ap.parse_args()
    if a.cmd == "convert":
        print(json.dumps(convert(a.wheel, a.out), indent=1))
    elif a.cmd == "check":
        from .real_labels import photos_present

        if photos_present(a.real):
            print(json.dumps(check(tflite_path(), a.onnx, a.real, a.faces), indent=1))
    else:
        print(json.dumps(reference(a.onnx, a.out), indent=1))


if __name__ == "__main__":
    main()

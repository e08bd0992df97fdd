"""MediaPipe's selfie segmentation network, read from its .tflite file into a PyTorch module.

The network (256x256 RGB in [0, 1] -> person probability, about 106 k parameters, trained by
Google on a large set of real photos of people) ships inside the PyPI `mediapipe` wheel
(0.10.14, Apache-2.0) as `mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite`.
It is the scalp model's pretrained body: everything up to its last layer is kept and fine-tuned,
and that last layer (a 2x2 stride-2 transposed convolution from 16 channels to 1, MediaPipe's
custom `Convolution2DTransposeBias`) is widened to the scalp classes and the density.

The file is read with the `tflite` package (the flatbuffer schema, no TensorFlow), and the graph
is replayed operator by operator: CONV_2D, DEPTHWISE_CONV_2D (TensorFlow's SAME padding, which
pads more at the bottom and right for even strides), HARD_SWISH, RELU, LOGISTIC, ADD, MUL,
AVERAGE_POOL_2D (the squeeze-and-excitation global pools), RESIZE_BILINEAR (half-pixel centres)
and the custom layer. `check_against_litert` compares this module with Google's own interpreter
on everything before the custom layer (which that interpreter cannot run), and
`python -m scalpmap_train.selfie extract --wheel W --out DIR` takes the file out of the wheel and
writes its provenance.

Only what tract runs is emitted when exported: Conv, Pad, Clip/Mul/Add (hard-swish written out),
Sigmoid, ReduceMean, Resize with constant scales, ConvTranspose.
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

WHEEL = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
LICENCE_MEMBER = "mediapipe-0.10.14.dist-info/LICENSE"
# What the committed conversion was made from (checked by `extract`).
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
TFLITE_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
LAST = "Convolution2DTransposeBias"
# Where `extract` puts the file (training/data is never committed; run.sh extracts it first).
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data" / "pretrained"


def checked_file(path, sha256, how):
    """`path` when it exists with this sha256; otherwise stop, saying `how` to make it."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"{path} is missing: pip download mediapipe==0.10.14 --no-deps, then {how}")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != sha256:
        raise SystemExit(f"{path} has sha256 {sha}, expected {sha256}")
    return path


def pretrained_path():
    """The extracted selfie network, checked against the sha256 it was converted from."""
    return checked_file(DEFAULT_DIR / "selfie_segmentation.tflite", TFLITE_SHA256,
                        "python -m scalpmap_train.selfie extract --wheel mediapipe-0.10.14-...whl")


def _options(op, cls):
    t = op.BuiltinOptions()
    if t is None:
        return None
    o = cls()
    o.Init(t.Bytes, t.Pos)
    return o


def read_graph(path):
    """The graph as a list of operator dicts (kind, inputs, outputs, options) and the constant
    tensors (float32 numpy arrays; float16 weights dequantised), both by tensor name."""
    import tflite

    buf = Path(path).read_bytes()
    m = tflite.Model.GetRootAsModel(buf, 0)
    g = m.Subgraphs(0)
    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.INT32: np.int32}

    def tname(i):
        return g.Tensors(i).Name().decode()

    consts = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        b = m.Buffers(t.Buffer())
        if b is not None and b.DataLength() > 0:
            raw = b.DataAsNumpy().tobytes()
            consts[t.Name().decode()] = np.frombuffer(raw, dtypes[t.Type()]).reshape(t.ShapeAsNumpy()).astype(
                np.float32 if t.Type() != tflite.TensorType.INT32 else np.int32)
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        kind = names[code] if code != tflite.BuiltinOperator.CUSTOM else oc.CustomCode().decode()
        ins = [tname(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
        outs = [tname(op.Outputs(j)) for j in range(op.OutputsLength())]
        spec = {"kind": kind, "inputs": ins, "outputs": outs}
        if kind == "DEQUANTIZE":
            consts[outs[0]] = consts[ins[0]]
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            o = _options(op, tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions)
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1 or o.FusedActivationFunction() != 0:
                raise ValueError(f"{outs[0]}: dilation or fused activation is not supported")
            spec.update(stride=(o.StrideH(), o.StrideW()), same=o.Padding() == tflite.Padding.SAME)
        elif kind == "AVERAGE_POOL_2D":
            o = _options(op, tflite.Pool2DOptions)
            shape = tuple(int(v) for v in g.Tensors(op.Inputs(0)).ShapeAsNumpy()[1:3])
            if (o.FilterHeight(), o.FilterWidth()) != shape or o.Padding() == tflite.Padding.SAME:
                raise ValueError(f"{outs[0]}: only global average pools are supported")
        elif kind == "RESIZE_BILINEAR":
            o = _options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise ValueError(f"{outs[0]}: only half-pixel-centre bilinear resizing is supported")
            # Kept as a scale factor (the graph's output size over its input size), so the
            # network also runs on crops smaller than its 256x256.
            size = consts[ins[1]]
            shape = g.Tensors(op.Inputs(0)).ShapeAsNumpy()[1:3]
            spec.update(factor=(float(size[0]) / shape[0], float(size[1]) / shape[1]))
        elif kind in ("ADD", "MUL"):
            o = _options(op, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
            if o is not None and o.FusedActivationFunction() != 0:
                raise ValueError(f"{outs[0]}: fused activation is not supported")
        # The face detector's (facedet.py) further operators.
        elif kind == "MAX_POOL_2D":
            o = _options(op, tflite.Pool2DOptions)
            if o.FusedActivationFunction() != 0:
                raise ValueError(f"{outs[0]}: fused activation is not supported")
            spec.update(k=(o.FilterHeight(), o.FilterWidth()), stride=(o.StrideH(), o.StrideW()),
                        same=o.Padding() == tflite.Padding.SAME)
        elif kind == "PAD":
            spec.update(pads=consts[ins[1]].tolist())
        elif kind == "RESHAPE":
            spec.update(shape=[int(v) for v in g.Tensors(op.Outputs(0)).ShapeAsNumpy()])
        elif kind == "CONCATENATION":
            o = _options(op, tflite.ConcatenationOptions)
            if o.FusedActivationFunction() != 0:
                raise ValueError(f"{outs[0]}: fused activation is not supported")
            spec.update(axis=o.Axis())
        elif kind not in ("HARD_SWISH", "RELU", "LOGISTIC", LAST):
            raise ValueError(f"operator {kind} is not supported")
        ops.append(spec)
    inp = tname(g.Inputs(0))
    return ops, consts, inp


def same_pad(x, k, s):
    """TensorFlow's SAME padding for a kxk window at stride s (more after than before when odd)."""
    pads = []
    for dim, kk, ss in ((x.shape[3], k[1], s[1]), (x.shape[2], k[0], s[0])):
        out = -(-dim // ss)
        total = max((out - 1) * ss + kk - dim, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


def add_conv(weights, spec, consts, trainable=True):
    """A CONV_2D or DEPTHWISE_CONV_2D operator's kernel and bias as parameters in `weights` (an
    nn.ParameterDict, keys named after the operator's output); returns its spec with what `conv`
    needs."""
    w = consts[spec["inputs"][1]]
    # tflite: conv [out, kh, kw, in]; depthwise [1, kh, kw, channels]; torch [out, in/groups, kh, kw].
    depthwise = spec["kind"] == "DEPTHWISE_CONV_2D"
    w = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)
    key = spec["outputs"][0].replace("/", "_").replace(".", "_")
    weights[key + "_w"] = nn.Parameter(torch.from_numpy(np.ascontiguousarray(w)), requires_grad=trainable)
    weights[key + "_b"] = nn.Parameter(torch.from_numpy(consts[spec["inputs"][2]].copy()), requires_grad=trainable)
    return dict(spec, key=key, kernel=tuple(w.shape[2:]), groups=w.shape[0] if depthwise else 1)


def conv(a, spec, weights):
    """An operator `add_conv` read, on `a` (NCHW), with TensorFlow's padding."""
    if spec["same"]:
        a = same_pad(a, spec["kernel"], spec["stride"])
    return F.conv2d(a, weights[spec["key"] + "_w"], weights[spec["key"] + "_b"], stride=spec["stride"], groups=spec["groups"])


def hard_swish(x):
    # Written out (Clip, Mul) rather than HardSwish: older tract versions lack the operator.
    return x * torch.clamp(x + 3.0, 0.0, 6.0) * (1.0 / 6.0)


class SelfieBody(nn.Module):
    """The selfie network up to its last layer: NCHW RGB in [0, 1] at 256x256 -> 16 channels at
    128x128. `last` holds the original last layer's kernel (16 -> 1, 2x2) and bias."""

    def __init__(self, path):
        super().__init__()
        ops, consts, self.input = read_graph(path)
        self.ops = []
        self.weights = nn.ParameterDict()
        self.static = {}
        for spec in ops:
            kind, ins = spec["kind"], spec["inputs"]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                spec = add_conv(self.weights, spec, consts)
            elif kind == LAST:
                # tflite kernel [out, kh, kw, in] -> ConvTranspose2d [in, out, kh, kw]
                self.last_kernel = np.ascontiguousarray(consts[ins[1]].transpose(3, 0, 1, 2))
                self.last_bias = consts[ins[2]].copy()
                self.features_name = ins[0]
                break
            else:
                for name in ins[1:]:
                    if name in consts:
                        self.static[name] = consts[name]
            self.ops.append(spec)

    def _value(self, env, name):
        if name in env:
            return env[name]
        return torch.from_numpy(self.static[name].reshape(1, -1, 1, 1)) if self.static[name].ndim == 1 else torch.from_numpy(self.static[name])

    def forward(self, x):
        env = {self.input: x}
        for spec in self.ops:
            kind, ins = spec["kind"], spec["inputs"]
            a = env[ins[0]]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                y = conv(a, spec, self.weights)
            elif kind == "HARD_SWISH":
                y = hard_swish(a)
            elif kind == "RELU":
                y = torch.relu(a)
            elif kind == "LOGISTIC":
                y = torch.sigmoid(a)
            elif kind == "ADD":
                y = a + self._value(env, ins[1])
            elif kind == "MUL":
                y = a * self._value(env, ins[1])
            elif kind == "AVERAGE_POOL_2D":
                # Global in the graph (the squeeze-and-excitation pools): a mean over whatever
                # size the input is, so crops other than 256x256 train too.
                y = a.mean(dim=(2, 3), keepdim=True)
            elif kind == "RESIZE_BILINEAR":
                y = F.interpolate(a, scale_factor=spec["factor"], mode="bilinear", align_corners=False)
            env[spec["outputs"][0]] = y
        return env[self.features_name]


class SelfiePerson(nn.Module):
    """The unchanged selfie network: person probability, NCHW in [0, 1] -> N x 1 x 256 x 256."""

    def __init__(self, path):
        super().__init__()
        self.body = SelfieBody(path)
        self.last = nn.ConvTranspose2d(16, 1, 2, stride=2)
        with torch.no_grad():
            self.last.weight.copy_(torch.from_numpy(self.body.last_kernel))
            self.last.bias.copy_(torch.from_numpy(self.body.last_bias))

    def forward(self, x):
        return torch.sigmoid(self.last(self.body(x)))


def litert_features(path, photos_float):
    """Google's interpreter on the graph up to the last layer (the custom layer removed by
    asking for its input tensor): NHWC float photos in [0, 1] -> N x 128 x 128 x 16."""
    from ai_edge_litert.interpreter import Interpreter

    ops, _, _ = read_graph(path)
    name = next(s["inputs"][0] for s in ops if s["kind"] == LAST)
    out = []
    for p in photos_float:
        it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], p[None].astype(np.float32))
        it.invoke()
        idx = next(d["index"] for d in it.get_tensor_details() if d["name"] == name)
        out.append(it.get_tensor(idx)[0])
    return np.stack(out)


def extract(wheel, out):
    """The tflite file and the wheel's licence, out of the wheel, with a provenance file."""
    wheel = Path(wheel)
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
        (out / "selfie_segmentation.tflite").write_bytes(data)
        (out / "MEDIAPIPE_LICENSE").write_bytes(z.read(LICENCE_MEMBER))
    sha = hashlib.sha256(data).hexdigest()
    if (wheel_sha, sha) != (WHEEL_SHA256, TFLITE_SHA256):
        raise SystemExit(f"unexpected wheel or file: wheel {wheel_sha}, tflite {sha}; "
                         f"expected {WHEEL_SHA256} and {TFLITE_SHA256}")
    prov = {"package": "mediapipe", "version": "0.10.14", "wheel": wheel.name, "wheel_sha256": wheel_sha,
            "file": MEMBER, "file_sha256": sha, "licence": "Apache-2.0", "licence_file": LICENCE_MEMBER}
    (out / "selfie_provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    return prov


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract", help="take the network out of the mediapipe wheel (pip download mediapipe==0.10.14 --no-deps)")
    e.add_argument("--wheel", required=True)
    e.add_argument("--out", default="data/pretrained")
    c = sub.add_parser("check", help="this module against Google's interpreter on real or rendered photos")
    c.add_argument("--tflite", default="data/pretrained/selfie_segmentation.tflite")
    c.add_argument("--photos", nargs="+", required=True)
    a = ap.parse_args()
    if a.cmd == "extract":
        print(json.dumps(extract(a.wheel, a.out), indent=1))
        return
    from PIL import Image

    from .data import prepare_photo

    photos = np.stack([prepare_photo(Image.open(p)) for p in a.photos]).astype(np.float32) / 255.0
    ref = litert_features(a.tflite, photos)
    body = SelfieBody(a.tflite).eval()
    with torch.no_grad():
        ours = body(torch.from_numpy(photos.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    diff = float(np.abs(ours - ref).max())
    print(json.dumps({"photos": len(photos), "max_abs_difference": diff, "feature_scale": float(np.abs(ref).max())}))
    if diff > 1e-3:
        raise SystemExit("the PyTorch replay differs from the tflite interpreter")


if __name__ == "__main__":
    main()


class SelfieScalp(nn.Module):
    """The scalp model on the selfie network: the pretrained body (fine-tuned), then its last
    layer widened from the person logit to the scalp classes' logits and the density.

    `person` is the original last layer, with background's logit set to minus a tenth of the person logit
    (a start that already cuts backdrops, doors and furniture away); `detail` adds a 3x3
    convolution's worth of capacity on the same features, starting at zero. Input: the
    contract's normalised NCHW photo, mapped back to [0, 1] as the body expects.

    `tex_channels` > 0 adds a small texture branch of its own on the photo (a 3x3 convolution at
    stride 2, then a 3x3 one, `tex_channels` channels each; not train.py's `texture` augmentation)
    whose output joins the body's 16 features before `detail` (DECISIONS.md run 16): the body's
    last features were trained to outline a person, and thinning is told from hair by fine
    texture they need not keep. `detail` starts at zero, so the network starts where the one
    without the branch does."""

    def __init__(self, path, n_classes, mean, std, seed=0, tex_channels=0):
        super().__init__()
        self.body = SelfieBody(path)
        g = torch.Generator().manual_seed(seed)
        k, b = torch.from_numpy(self.body.last_kernel), torch.from_numpy(self.body.last_bias)
        self.person = nn.ConvTranspose2d(16, n_classes + 1, 2, stride=2)
        self.tex_channels = tex_channels
        if tex_channels:
            self.tex1 = nn.Conv2d(3, tex_channels, 3, stride=2, padding=1)
            self.tex2 = nn.Conv2d(tex_channels, tex_channels, 3, padding=1)
        self.detail_conv = nn.Conv2d(16 + tex_channels, 32, 3, padding=1)
        self.detail = nn.ConvTranspose2d(32, n_classes + 1, 2, stride=2)
        with torch.no_grad():
            w = torch.randn(self.person.weight.shape, generator=g) * 0.01
            # A tenth of the person logit (which runs to +-80): the prior without saturating the
            # softmax, whose first cross-entropy would otherwise be in the hundreds.
            w[:, 0:1] = -0.1 * k
            self.person.weight.copy_(w)
            bias = torch.zeros(n_classes + 1)
            bias[0] = -0.1 * b[0]
            self.person.bias.copy_(bias)
            self.detail.weight.zero_()
            self.detail.bias.zero_()
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(1, 3, 1, 1))
        self.n_classes = n_classes

    def forward(self, x):
        f = self.body(x * self.std + self.mean)
        g = torch.cat([f, hard_swish(self.tex2(hard_swish(self.tex1(x))))], dim=1) if self.tex_channels else f
        out = self.person(f) + self.detail(hard_swish(self.detail_conv(g)))
        return out[:, :self.n_classes], torch.relu(out[:, self.n_classes:])


class Gated(nn.Module):
    """A scalp model's probabilities with the unchanged selfie network as a separate person stage,
    in one graph: where the person probability p is low, the mass goes to background
    (p'(background) = p(background) p + 1 - p, p'(c) = p(c) p), so a wall, a floor or noise
    is never scalp however the fine-tuned model reads it. Outputs probabilities and density."""

    def __init__(self, scalp, path):
        super().__init__()
        self.scalp = scalp
        self.person = SelfiePerson(path)
        for p in self.person.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        logits, dens = self.scalp(x)
        e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        probs = e / e.sum(dim=1, keepdim=True)
        p = self.person(x * self.scalp.std + self.scalp.mean)
        gated = probs * p
        return torch.cat([gated[:, :1] + (1.0 - p), gated[:, 1:]], dim=1), dens

"""Exports the trained U-Net to ONNX under the model contract and checks it.

- BatchNorm folded into the convolutions; fixed input shape 1x3x256x256 (tract runs a fixed
  batch about 2x faster than a symbolic one), no symbolic dimensions left anywhere.
- Class names, input size, normalisation, density unit, resize rule, version and the training
  data's sha256 in `metadata_props`, which the Rust analyser reads at load time.
- Only operators tract runs; ONNX Runtime and tract agree with PyTorch within 1e-4.
"""

import argparse
import json

import numpy as np
import onnx
import torch

from . import contract
from .model import Exported, fold_batchnorm

# The softmax is written out (see model.Exported): tract runs these far faster than Softmax.
# Constant holds the reduction axes.
ALLOWED_OPS = {"Conv", "Relu", "MaxPool", "Concat", "ConvTranspose", "ReduceMax", "Sub", "Exp", "ReduceSum", "Div", "Constant",
               # the selfie network (selfie.py): TensorFlow's padding, hard-swish written out,
               # squeeze-and-excitation, bilinear upsampling, the head's split into classes and density
               "Pad", "Clip", "Mul", "Add", "Sigmoid", "ReduceMean", "Resize", "Slice"}
TOLERANCE = 1e-4


def export(state_path, out_path, train_info):
    from .train import build

    widths = tuple(train_info.get("widths", contract.DEFAULT_WIDTHS))
    arch = train_info.get("arch", "unet")
    net = build(arch, widths)
    net.load_state_dict(torch.load(state_path, map_location="cpu"))
    net.eval()
    reference = Exported(build(arch, widths))
    reference.net.load_state_dict(torch.load(state_path, map_location="cpu"))
    reference.eval()
    folded = Exported(fold_batchnorm(net)).eval()
    if train_info.get("person_gate"):
        from .selfie import Gated, pretrained_path

        reference, folded = Gated(reference.net, pretrained_path()).eval(), Gated(folded.net, pretrained_path()).eval()
    size = contract.input_size(train_info)
    x = torch.zeros(1, 3, size, size)
    torch.onnx.export(folded, (x,), out_path, input_names=["image"], output_names=["probs", "density"],
                      opset_version=contract.OPSET, do_constant_folding=True, dynamo=False)
    m = fold_constants(out_path)
    del m.graph.value_info[:]  # no intermediate shapes, symbolic or not, to trip a runtime
    meta = {
        "scalpmap.contract": "1",
        "scalpmap.model_version": contract.version_for(train_info),
        "scalpmap.classes": ",".join(contract.CLASSES),
        "scalpmap.input_size": f"{size},{size}",
        "scalpmap.input_layout": "NCHW, RGB",
        "scalpmap.mean": ",".join(str(v) for v in contract.MEAN),
        "scalpmap.std": ",".join(str(v) for v in contract.STD),
        "scalpmap.input_scale": "pixel/255 then (x-mean)/std",
        "scalpmap.outputs": "probs: softmax over classes NxCxHxW; density: hairs/cm2 / density_unit Nx1xHxW",
        "scalpmap.density_unit": str(contract.DENSITY_UNIT),
        "scalpmap.resize_rule": contract.resize_rule(size),
        "scalpmap.training_data_sha256": contract.training_data_sha256(train_info),
        "scalpmap.training": training_summary(train_info),
        # No recipe has passed the false-scar check on real photos (DECISIONS.md): the analyser
        # draws no scar from this model's maps until one does.
        "scalpmap.scar_detection": "off",
    }
    if train_info.get("person_gate"):
        meta["scalpmap.person_stage"] = ("MediaPipe selfie segmentation, unchanged, in the same graph: probability mass "
                                         "where it finds no person goes to background")
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "scalpmap-training"
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out_path)
    return m, reference


def fold_constants(path):
    """The exported graph with its constant subgraphs folded by ONNX Runtime's basic
    optimisations (standard operators only): torch writes each padding's amounts as a small
    Shape/Gather/Concat computation, which tract would have to run per photo."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = path
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    m = onnx.load(path)
    if any(n.domain not in ("", "ai.onnx") for n in m.graph.node):
        raise RuntimeError("constant folding left non-standard operators")
    return m


def training_summary(info):
    s = f"{info['images']} renders, {info['steps']} steps x {info['batch']} crops of {info['crop']}, seed {info['seed']}"
    if info.get("arch", "").startswith("selfie"):
        from .selfie import MEMBER, TFLITE_SHA256

        s = f"MediaPipe selfie segmentation body (mediapipe 0.10.14 wheel, Apache-2.0, {MEMBER}, sha256 {TFLITE_SHA256}) fine-tuned; " + s
    real = info.get("real_labels")
    if real:
        s += f"; {real['share']:.0%} of crops from {real['photos']} coarsely labelled real photos of {len(real['persons'])} men"
    return s


def check(m, out_path, reference, size, seed=0):
    ops = {n.op_type for n in m.graph.node}
    bad = ops - ALLOWED_OPS
    assert not bad, f"operators tract may not run: {bad}"
    for t in list(m.graph.input) + list(m.graph.output):
        for d in t.type.tensor_type.shape.dim:
            assert d.HasField("dim_value"), f"symbolic dimension in {t.name}"
    assert not m.graph.value_info, "value_info left in the graph"
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (1, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        want = [t.numpy() for t in reference(torch.from_numpy(x))]

    import onnxruntime as ort

    sess = ort.InferenceSession(out_path, providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, {"image": x})

    import tract

    tm = tract.onnx().load(out_path).into_model().into_runnable()
    got_tract = [v.to_numpy() for v in tm.run([x])]
    result = {"ops": sorted(ops)}
    for name, got in (("onnxruntime", got_ort), ("tract", got_tract)):
        diffs = [float(np.abs(g - w).max()) for g, w in zip(got, want)]
        result[name] = {"probs_max_abs_diff": diffs[0], "density_max_abs_diff": diffs[1]}
        assert max(diffs) < TOLERANCE, f"{name} disagrees with PyTorch: {diffs}"
    return result


def formula_input(size=contract.INPUT_SIZE):
    """A deterministic input both Python and Rust compute bit-identically (f64 sin, then f32):
    x[0, c, y, x] = 2 * sin(0.05 * x + 0.031 * y + 1.7 * c)."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return (2.0 * np.sin(0.05 * x + 0.031 * y + 1.7 * c)).astype(np.float32)[None]


def write_reference(reference, path, size, n=512, seed=1):
    """PyTorch outputs at n fixed pixels for the formula input, for the crate's tests."""
    x = formula_input(size)
    with torch.no_grad():
        probs, dens = [t.numpy() for t in reference(torch.from_numpy(x))]
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, size, (n, 2))
    ref = {
        "input": "x[0, c, y, x] = 2 * sin(0.05 * x + 0.031 * y + 1.7 * c), computed in f64 then cast to f32",
        "tolerance": TOLERANCE,
        "points": pts.tolist(),
        "probs": [[float(probs[0, k, py, px]) for k in range(probs.shape[1])] for py, px in pts],
        "density": [float(dens[0, 0, py, px]) for py, px in pts],
    }
    with open(path, "w") as f:
        json.dump(ref, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    info = json.load(open(a.state + ".json"))
    m, reference = export(a.state, a.out, info)
    result = check(m, a.out, reference, contract.input_size(info))
    write_reference(reference, a.out.replace(".onnx", ".reference.json"), contract.input_size(info))
    print(json.dumps(result, indent=1))
    with open(a.out + ".check.json", "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

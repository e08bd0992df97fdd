"""The model contract shared by training, export and evaluation (see ../shared/DESIGN.md).

The Rust analyser reads all of this from the ONNX metadata; nothing here is hard-coded there.
"""

import hashlib

CLASSES = ["background", "hair", "thinning", "bare", "scar"]
INPUT_SIZE = 256  # square; the whole photo is resized to it (see RESIZE_RULE)
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# The density output is hairs per cm² of scalp divided by this.
DENSITY_UNIT = 100.0


def resize_rule(size=INPUT_SIZE):
    """How a photo becomes the model's input, for a model taking `size` x `size`."""
    return (
        f"whole photo, EXIF-upright, resized to {size}x{size} with an area (box) filter, aspect ratio not kept; "
        "the training renders include photos stretched 0.75-1.3x in one axis and heads filling 60-170% "
        "of the frame, which is the range the model knows"
    )


RESIZE_RULE = resize_rule()
# 0.1.1: the weights of 0.1.0, exported with the softmax written out (same outputs, faster on tract).
# (0.2.0 and 0.3.0 were candidates that were never shipped; see DECISIONS.md.)
MODEL_VERSION = "0.1.1"
# A model trained with the real labels (train.py --real-labels) is the 0.3.0 recipe.
REAL_LABELS_VERSION = "0.3.0"
# The U-Net's channels per level in 0.1.x (model.UNet); other widths are the 0.4.0 recipe.
DEFAULT_WIDTHS = (16, 32, 64, 96)
WIDTHS_VERSION = "0.4.0"
OPSET = 17


# The shipped recipe's settings (train.py's defaults come from here, and run.sh's STEPS is the
# same 3,600); a key missing from an older training
# summary had its default then. A model trained any other way is not the shipped recipe, and its
# version says so.
SHIPPED_RECIPE = {"input_size": INPUT_SIZE, "steps": 3600, "batch": 12, "crop": 160, "lr": 0.003, "class_weights": [0.6, 1.0, 1.6, 1.2, 3.0],
                  "dice": 0.0, "focus_p": 0.0, "style": False, "texture": False, "bf16": False}
CANDIDATE_VERSION = "0.0.0-candidate"
# Cross-validated recipes (cv.RECIPES) and their versions; a fold's model is marked as one.
RECIPE_VERSIONS = {"selfie-real": "0.5.0", "selfie-real-neg": "0.5.1", "selfie-real-long": "0.6.0",
                   "selfie-real-long-hair05-crop224": "0.7.0"}


def input_size(train_info):
    """The side of the square input a model was trained at (a training summary without the key
    predates the option, and had this contract's size)."""
    return int(train_info.get("input_size", INPUT_SIZE))


def version_for(train_info):
    """The version a trained model is exported and described as: the shipped version for the
    shipped recipe, the named candidate recipes' versions (the shipped recipe with real labels, or
    with the wider U-Net, not both), and CANDIDATE_VERSION for anything else. A model retrained on
    a clinic's corrections (corrections.py) is its recipe's version with `+clinic.` and 8 digits
    of the corrections' hash: another clinic's retrain is another model."""
    if train_info.get("corrections"):
        base = RECIPE_VERSIONS.get(train_info.get("recipe"), CANDIDATE_VERSION)
        return f"{base}+clinic.{train_info['corrections']['sha256'][:8]}"
    if train_info.get("recipe") in RECIPE_VERSIONS:
        v = RECIPE_VERSIONS[train_info["recipe"]]
        return v if train_info.get("fold", "all") == "all" else f"{v}-fold{train_info['fold']}"
    differs = any(train_info.get(k, v) != v for k, v in SHIPPED_RECIPE.items())
    wider = tuple(train_info.get("widths", DEFAULT_WIDTHS)) != DEFAULT_WIDTHS
    labelled = bool(train_info.get("real_labels"))
    if differs or (wider and labelled):
        return CANDIDATE_VERSION
    return REAL_LABELS_VERSION if labelled else WIDTHS_VERSION if wider else MODEL_VERSION


def training_data_sha256(train_info):
    """One hash for everything the model learnt from: the renders, and where real photos were
    labelled, sha256(renders hash + real labels hash) so either change shows."""
    real = train_info.get("real_labels")
    if not real:
        return train_info["data_sha256"]
    corrections = (train_info.get("corrections") or {}).get("sha256", "")
    return hashlib.sha256((train_info["data_sha256"] + real["sha256"] + corrections).encode()).hexdigest()

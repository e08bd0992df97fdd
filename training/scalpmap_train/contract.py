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
RESIZE_RULE = (
    "whole photo, EXIF-upright, resized to 256x256 with an area (box) filter, aspect ratio not kept; "
    "the training renders include photos stretched 0.75-1.3x in one axis and heads filling 60-170% "
    "of the frame, which is the range the model knows"
)
# 0.1.1: the weights of 0.1.0, exported with the softmax written out (same outputs, faster on tract).
# (0.2.0 and 0.3.0 were candidates that were never shipped; see LIMITS.md.)
MODEL_VERSION = "0.1.1"
# A model trained with the real labels (train.py --real-labels) is the 0.3.0 recipe.
REAL_LABELS_VERSION = "0.3.0"
# The U-Net's channels per level in 0.1.x (model.UNet); other widths are the 0.4.0 recipe.
DEFAULT_WIDTHS = (16, 32, 64, 96)
WIDTHS_VERSION = "0.4.0"
OPSET = 17


# The shipped recipe's settings (train.py's defaults come from here; steps is run.sh's STEPS,
# train.py's own default being a shorter run); a key missing from an older training
# summary had its default then. A model trained any other way is not the shipped recipe, and its
# version says so.
SHIPPED_RECIPE = {"steps": 3600, "batch": 12, "crop": 160, "lr": 0.003, "class_weights": [0.6, 1.0, 1.6, 1.2, 3.0],
                  "dice": 0.0, "focus_p": 0.0, "style": False, "texture": False}
CANDIDATE_VERSION = "0.0.0-candidate"


def version_for(train_info):
    """The version a trained model is exported and described as: the shipped version for the
    shipped recipe, the named candidate recipes' versions, and CANDIDATE_VERSION otherwise."""
    if train_info.get("real_labels"):
        return REAL_LABELS_VERSION
    if tuple(train_info.get("widths", DEFAULT_WIDTHS)) != DEFAULT_WIDTHS:
        return WIDTHS_VERSION
    if any(train_info.get(k, v) != v for k, v in SHIPPED_RECIPE.items()):
        return CANDIDATE_VERSION
    return MODEL_VERSION


def training_data_sha256(train_info):
    """One hash for everything the model learnt from: the renders, and where real photos were
    labelled, sha256(renders hash + real labels hash) so either change shows."""
    real = train_info.get("real_labels")
    if not real:
        return train_info["data_sha256"]
    return hashlib.sha256((train_info["data_sha256"] + real["sha256"]).encode()).hexdigest()

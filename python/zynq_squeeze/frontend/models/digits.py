"""A small trained SqueezeNet-style classifier for scikit-learn's 8x8 digits.

``digits.onnx`` (opset 13) is produced by ``scripts/train_digits.py``:

    input "input" [1, 1, 8, 8] float32 (pixels / 16, i.e. in [0, 1])
    conv1 3x3 pad 1 -> 32, ReLU                                      8x8
    fire2: squeeze1x1 -> 8, ReLU; expand1x1 -> 32 || expand3x3 -> 32, ReLU, concat (64)
    pool2 max 3x3 stride 2, ceil mode                                4x4
    fire3: squeeze1x1 -> 16, ReLU; expand1x1 -> 64 || expand3x3 -> 64, ReLU, concat (128)
    conv10 1x1 -> 10, ReLU; pool10 global average pool; flatten10
    output "logits" [1, 10]

The held-out split is ``train_test_split(test_size=0.25, random_state=0, stratify=y)``
of ``sklearn.datasets.load_digits()`` (bundled with scikit-learn, no download).
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import onnx

MODEL_FILE = "digits.onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
TEST_SIZE = 0.25
SPLIT_SEED = 0


def digits_model() -> onnx.ModelProto:
    """The packaged trained digits model."""
    data = resources.files(__package__).joinpath(MODEL_FILE).read_bytes()
    return onnx.load_from_string(data)


def digits_data(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` for ``split`` in ``"train"``, ``"test"`` or ``"all"``.

    ``X`` float32 [N, 1, 8, 8] scaled to [0, 1] (raw pixel / 16), ``y`` int64 [N].
    Needs scikit-learn (the ``test`` extra).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    if split == "all":
        return X, y
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    if split == "train":
        return X_tr, y_tr
    if split == "test":
        return X_te, y_te
    raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")

"""Built-in datasets: images are float32 in [0, 1], NCHW; labels int64.

- ``digits``: scikit-learn's bundled 8x8 digits (no install), a fixed stratified 75/25 split.
- ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (IDX files, no download).
- a path to an ``.npz`` file with array ``x`` (and optionally ``y``).
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from neurodeploy.errors import InputError

DATASETS = ("digits", "fashion-mnist")
SPLITS = ("train", "test")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"


def load_dataset(name: str, split: str = "test", limit: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels) of a split; ``limit`` keeps the first samples (deterministic)."""
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}'", hint=f"Use one of: {', '.join(SPLITS)}")
    if name == "digits":
        x, y = _digits(split)
    elif name == "fashion-mnist":
        x, y = _fashion(split)
    elif name.endswith(".npz"):
        x, y = _npz(Path(name))
    else:
        raise InputError(f"unknown dataset '{name}'",
                         hint=f"Use one of: {', '.join(DATASETS)}, or a path to an .npz file "
                              "with arrays x (and y)")
    if limit is not None:
        x, y = x[:limit], (None if y is None else y[:limit])
    return x, y


def calibration_set(name: str, samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` unlabelled training images, a fixed random subset (no labels are used)."""
    split = "test" if name.endswith(".npz") else "train"
    x, _ = load_dataset(name, split=split)
    if samples < 1:
        raise InputError(f"calibration needs at least one sample, got {samples}")
    index = np.random.default_rng(seed).permutation(len(x))[:samples]
    return x[np.sort(index)]


@functools.cache
def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    return (x_train, y_train) if split == "train" else (x_test, y_test)


@functools.cache
def _fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise InputError(f"Fashion-MNIST not found in {FASHION_DIR}",
                         hint=f"Install the Debian package: apt-get install -y {FASHION_PACKAGE}")
    x = _idx(images).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return x, _idx(labels).astype(np.int64)


def _idx(path: Path) -> np.ndarray:
    """Parse an IDX file: magic (2 zero bytes, type, ndim), big-endian dims, then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:
                raise InputError(f"{path}: no array 'x' (found: {', '.join(data.files)})")
            x = data["x"]
            y = data["y"].astype(np.int64) if "y" in data.files else None
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.ndim not in (2, 4):
        raise InputError(f"{path}: x must be (N, features) or NCHW (N, C, H, W), "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InputError(f"{path}: x must hold values in [0, 1] (or uint8)")
    if y is not None and len(y) != len(x):
        raise InputError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    return x, y

"""Datasets for calibration and evaluation: images float32 in [0, 1], NCHW; labels int64.

- ``digits``: scikit-learn's bundled 8x8 digits (no install), a fixed stratified 75/25 split.
- ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (IDX files, no download).
- a path to an ``.npz`` file with array ``x`` and optionally ``y``, or to an ``.npy`` file of
  images (no labels); files have no splits, so ``split`` only selects between train and test
  for the named datasets. ``x`` holds images (N, features) or (N, C, H, W), or input streams
  with a time axis (N, T, features) or (N, T, C, H, W) (core/encoding.py), whose integers
  (event counts, spikes) are kept as they are and range-checked when a network runs them.

Calibration also takes what a PyTorch user has in memory: an array, a tensor or a DataLoader.
"""

from __future__ import annotations

import functools
import gzip
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import InputError, all_whole, whole_number

DATASETS = ("digits", "fashion-mnist")
STREAM_NDIMS = (3, 5)  #: an .npz x of these ranks has a time axis: (N, T, features | C, H, W)
SPLITS = ("train", "test")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
REINSTALL_FASHION = f"Reinstall the Debian package {FASHION_PACKAGE}"
#: the hint when calibration data is none of them
CALIBRATION_FORMS = ("Pass an array or tensor (N, ...) of floats in [0, 1] or uint8, an (images, "
                     "labels) pair, a Dataset or a DataLoader")


def load_dataset(name: str | os.PathLike, split: str = "test", limit: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels) of a split; ``limit`` keeps the first samples (deterministic).

    Labels are None only for an .npz file without ``y`` (enough for calibration). The arrays
    are copies, so callers may modify them without corrupting the in-memory cache.
    """
    if limit is not None:
        whole_number(limit, "limit")
    if not isinstance(name, str | os.PathLike):  # a Path failed as 'no attribute endswith'
        raise InputError(f"a dataset is a name or a path, got {type(name).__name__}",
                         hint=f"Use one of: {', '.join(DATASETS)}, or an .npz file's path")
    x, y = _cached(os.fspath(name), split)
    return _images(x[:limit]), (None if y is None else y[:limit].copy())


def calibration_set(name: str, samples: int, seed: int = 0, skip: int = 0) -> np.ndarray:
    """``samples`` unlabelled training images: a seeded random subset, kept in dataset order.

    Thresholds are chosen on training data so the test split stays an honest measurement.
    The subsets of one seed nest (more samples add images), and ``skip`` passes over the
    first ones: images no smaller draw of the seed contains, to score what they calibrated.
    """
    if samples < 1:
        raise InputError(f"calibration needs at least one sample, got {samples}")
    x, _ = _cached(name, "train")
    index = np.random.default_rng(seed).permutation(len(x))[skip:skip + samples]
    return _images(x[np.sort(index)])


def calibration_images(calib: Any, samples: int, seed: int = 0) -> np.ndarray | None:
    """Unlabelled float images from any calibration source: a dataset name or .npz path
    (``calibration_set``), an array or tensor (used whole), an (images, labels) pair, or a
    torch Dataset or DataLoader whose items are images or (images, labels) pairs (its first
    ``samples`` images)."""
    if calib is None:
        return None
    if isinstance(calib, str | os.PathLike):
        return calibration_set(os.fspath(calib), samples, seed)
    from torch.utils.data import DataLoader, Dataset

    if isinstance(calib, Dataset):
        calib = DataLoader(calib, batch_size=256)
    if isinstance(calib, DataLoader):
        if samples < 1:
            raise InputError(f"calibration needs at least one sample, got {samples}")
        batches, taken = [], 0
        for batch in calib:
            batches.append(_batch_images(batch)[:samples - taken])
            taken += len(batches[-1])
            if taken == samples:
                break
        if len({b.shape[1:] for b in batches}) > 1:
            raise InputError(f"calibration batches hold images of different shapes "
                             f"({', '.join(sorted({str(b.shape[1:]) for b in batches}))})")
        calib = np.concatenate(batches) if batches else np.empty((0,))
    # a list too: a DataLoader's batch, next(iter(loader)), is [images, labels]
    pair = isinstance(calib, tuple | list) and len(calib) == 2 and np.ndim(calib[1]) == 1 \
        and np.ndim(calib[0]) > 1 and len(calib[0]) == len(calib[1])
    try:
        x = as_array(calib[0] if pair else calib)
    except ValueError as err:  # ragged nesting
        raise InputError(f"calibration data cannot be read as one batch of images ({err})",
                         hint=CALIBRATION_FORMS) from None
    if x.ndim < 2 or len(x) == 0 or x.dtype.kind not in "fiu":
        # an object array is numpy's wrapping of what it could not read (a generator, a set)
        got = f"an object of type {type(calib).__name__}" if x.dtype == object else \
            f"{x.dtype} of shape {x.shape}"
        raise InputError(f"calibration data must be a non-empty batch of images (N, ...), got "
                         f"{got}", hint=CALIBRATION_FORMS)
    return encodable_images(x, "calibration data").astype(np.float32)


def _batch_images(batch: Any) -> np.ndarray:
    """A DataLoader batch's images: the batch, or the first of an (images, labels) pair."""
    hint = "Give batches of images or (images, labels) pairs, as the default collate makes"
    if isinstance(batch, dict):
        raise InputError(f"a calibration batch is a dict (keys: {', '.join(map(str, batch))})",
                         hint=hint)
    try:
        images = as_array(batch[0] if isinstance(batch, tuple | list) else batch)
    except ValueError as err:  # a list of samples (collate_fn=lambda b: b)
        raise InputError(f"a calibration batch cannot be read as images ({err})",
                         hint=hint) from None
    if images.ndim < 2 or images.dtype.kind not in "fiu":
        raise InputError(f"a calibration batch must hold images (N, ...), got {images.dtype} "
                         f"of shape {images.shape}", hint=hint)
    return images


def encodable_images(x: np.ndarray, what: str) -> np.ndarray:
    """Images as the network's input encodes them, whether read from a file or given in memory:
    floats in [0, 1] (uint8 scaled from 0..255), or integer event counts for streams (an ``x``
    of a rank in ``STREAM_NDIMS``). Calibrating on another range would set every threshold for
    inputs the deployed network never receives."""
    stream = x.ndim in STREAM_NDIMS
    if stream and x.dtype.kind in "biu":
        x = x.astype(np.int32)  # event counts
    elif x.dtype == np.uint8:
        x = _unit_floats(x)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
    else:
        raise InputError(f"{what} has dtype {x.dtype}; use floats in [0, 1] or uint8 "
                         "(integer event counts for streams)")
    if x.dtype.kind == "f" and (not np.isfinite(x).all() or x.min(initial=0) < 0
                                or x.max(initial=0) > 1):
        raise InputError(f"{what} must hold values in [0, 1] (or be uint8), the range the "
                         "network's input encodes",
                         hint="Give the images unnormalized, and fold a normalization into the "
                              "first layer's weights and bias (a sub or div on the input is not "
                              "supported)")
    return x


def as_array(data: Any) -> np.ndarray:
    """A numpy array of ``data``; a torch tensor is detached and moved to the CPU first."""
    if isinstance(data, np.ma.MaskedArray):
        if np.ma.is_masked(data):
            raise InputError("the data has masked values, which hold no value to run",
                             hint="Fill them (data.filled(0)) or drop those samples")
        return np.asarray(data.data)
    if isinstance(data, np.ndarray):
        return data
    import torch

    if isinstance(data, torch.Tensor):
        if data.is_meta:
            raise InputError("a tensor on the meta device holds no values",
                             hint="Give data that is on the CPU or a GPU")
        data = data.detach().cpu()
        if data.layout != torch.strided:  # a sparse tensor has no numpy view
            data = data.to_dense()
        # numpy has no bfloat16; float32 holds every bfloat16 value exactly
        return (data.float() if data.dtype == torch.bfloat16 else data).numpy()
    return np.asarray(data)


def _unit_floats(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 as float32 in [0, 1]."""
    return pixels.astype(np.float32) / 255


def _images(rows: np.ndarray) -> np.ndarray:
    """A new array of the images ``rows`` of a cached split (``_cached``): uint8 rows are
    pixels (Fashion-MNIST's; every other split is cached as it encodes)."""
    return _unit_floats(rows) if rows.dtype == np.uint8 else rows.copy()


def _cached(name: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The shared (not copied) arrays of a dataset split; validates the name and the split.
    Fashion-MNIST's images are its uint8 pixels (``_images`` makes the ones asked for
    float): its training split as float32 is 188 MB, of which a compile reads a thousand
    images (the Fashion CNN's p99.99 compile peaked 120 MB higher)."""
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}'", hint=f"Use one of: {', '.join(SPLITS)}")
    if name == "digits":
        return _digits(split)
    if name == "fashion-mnist":
        return _fashion(FASHION_DIR, split)
    if name.endswith(".npz"):
        return _npz(Path(name))
    if name.endswith(".npy"):
        return _file_images(Path(name), load_samples(name), "images"), None
    raise InputError(f"unknown dataset '{name}'",
                     hint=f"Use one of: {', '.join(DATASETS)}, a path to an .npz file with "
                          "arrays x (and y), or an .npy file of images")


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


@functools.cache  # keyed by directory too, so tests can point elsewhere
def _fashion(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = directory / f"{prefix}-images-idx3-ubyte.gz"
    labels = directory / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise InputError(f"Fashion-MNIST not found in {directory}",
                         hint=f"Install the Debian package {FASHION_PACKAGE}: "
                              f"apt-get install -y {FASHION_PACKAGE}")
    x, y = _idx(images), _idx(labels)
    top = y.max(initial=0)
    if x.shape[1:] != (28, 28) or y.shape != x.shape[:1] or not len(y) or top > 9:
        raise InputError(f"{directory}: the {prefix} files hold images {x.shape} and labels "
                         f"{y.shape} up to {top}, not N 28x28 images and N labels 0 to 9",
                         hint=REINSTALL_FASHION)
    return x.reshape(-1, 1, 28, 28), y.astype(np.int64)


def _idx(path: Path) -> np.ndarray:
    """Parse an IDX file: magic (2 zero bytes, type 0x08 = uint8, ndim), big-endian dims, data."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable gzip file ({exc})") from None
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise InputError(f"{path}: not an IDX file of uint8",
                         hint=REINSTALL_FASHION)
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise InputError(f"{path}: the header names {ndim} dimensions, the file ends first",
                         hint=REINSTALL_FASHION)
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(np.int64)
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if values.size != np.prod(dims):
        raise InputError(f"{path}: header says {tuple(dims)}, file holds {values.size} values",
                         hint=REINSTALL_FASHION)
    return values.reshape(dims)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Not cached: the file may change between calls."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # one .npy array under an .npz name
            raise InputError(f"{path}: holds one array, not an .npz archive of x (and y)",
                             hint="Save it with np.savez(path, x=images, y=labels)")
        with archive as data:
            if "x" not in data.files:
                raise InputError(f"{path}: no array 'x' (found: {', '.join(data.files) or 'none'})")
            x = data["x"]
            y = data["y"] if "y" in data.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    x = _file_images(path, x, "x")
    if y is None:
        return x, None
    if y.dtype.kind not in "iu" or y.shape != (len(x),):
        raise InputError(f"{path}: y must be {len(x)} integer labels, got {y.dtype} {y.shape}")
    if y.size and y.max() > np.iinfo(np.int64).max:  # uint64 beyond int64 would wrap
        raise InputError(f"{path}: label {y.max()} is not a class index")
    return x, y.astype(np.int64)


def _file_images(path: Path, x: np.ndarray, what: str) -> np.ndarray:
    """A file's images, in memory, checked as ``encodable_images`` checks them."""
    if x.ndim not in (2, 3, 4, 5) or len(x) == 0:
        raise InputError(f"{path}: {what} must be (N, features) or NCHW (N, C, H, W), or streams "
                         f"(N, T, features) or (N, T, C, H, W), with N >= 1, got shape {x.shape}")
    return encodable_images(np.asarray(x), f"{path}: {what}")


def load_samples(path: str | Path) -> np.ndarray:
    """A .npy array of samples (one sample or a batch) for ``simulate``: numbers, not empty;
    memory-mapped, so a run reads only the chunk it simulates."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a .npy array ({' '.join(str(exc).split())})") from None
    if not isinstance(x, np.ndarray):  # an .npz archive opens as a lazy mapping of arrays
        x.close()
        raise InputError(f"{path}: is an .npz archive of several arrays, not one .npy array",
                         hint="Save the samples with np.save")
    if x.dtype.kind not in "biuf":
        raise InputError(f"{path}: holds {x.dtype} values; give floats in [0, 1] or integers")
    if x.size == 0 or x.ndim == 0:
        raise InputError(f"{path}: holds no samples (shape {x.shape})")
    return x


def labelled(images: Any, labels: Any, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, int64 labels) checked: one whole-number label per image, each a class of the
    model (a label 2.5 or 99 could only ever count as wrong, and silently)."""
    images, labels = as_array(images), as_array(labels)
    if images.ndim == 0 or len(images) == 0 or labels.shape != (len(images),):
        raise InputError(f"need one label per image: {len(images) if images.ndim else 0} "
                         f"images, labels of shape {labels.shape}")
    if labels.dtype.kind not in "iuf" or not all_whole(labels):
        raise InputError(f"labels must be whole-number class indices, got {labels.dtype} "
                         f"values such as {labels.ravel()[:3].tolist()}")
    check_labels(labels, classes, "labels")
    return images, labels.astype(np.int64)


def check_labels(labels: np.ndarray, classes: int, source: str) -> None:
    """Labels must index one of the model's ``classes`` outputs: any other label could only
    ever count as wrong (and a training loss cannot use it at all)."""
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        raise InputError(f"{source}: label {int(labels[bad][0])} is not a class of the model, "
                         f"which has {classes} outputs (labels 0 to {classes - 1})")

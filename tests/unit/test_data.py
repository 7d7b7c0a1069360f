"""Datasets: shapes, ranges, fixed splits, .npz round trips and one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from neurodeploy import data
from neurodeploy.data import calibration_set, load_dataset
from neurodeploy.errors import InputError


def test_digits_split_is_stratified_75_25_and_float_in_unit_range() -> None:
    x_train, y_train = load_dataset("digits", split="train")
    x_test, y_test = load_dataset("digits", split="test")
    assert (len(x_train), len(x_test)) == (1347, 450)  # 1797 samples, test_size=0.25
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.array_equal(np.unique(y), np.arange(10))
    # stratified: every class holds about a quarter of its samples in the test split
    counts = np.bincount(y_test) / (np.bincount(y_train) + np.bincount(y_test))
    assert np.all(np.abs(counts - 0.25) < 0.02)


def test_digits_split_is_deterministic_and_train_test_are_disjoint() -> None:
    from sklearn.datasets import load_digits

    x_train, _ = load_dataset("digits", split="train")
    x_test, y_test = load_dataset("digits", split="test")
    again_x, again_y = load_dataset("digits", split="test")
    assert np.array_equal(x_test, again_x) and np.array_equal(y_test, again_y)
    # identify rows of the original data set: the two splits partition it exactly
    original = {row.tobytes() for row in (load_digits().data / 16.0).astype(np.float32)}
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    test_rows = {row.tobytes() for row in x_test.reshape(len(x_test), -1)}
    assert not train_rows & test_rows
    assert train_rows | test_rows == original


def test_limit_keeps_the_first_samples_and_results_are_copies() -> None:
    x, y = load_dataset("digits", limit=5)
    full_x, full_y = load_dataset("digits")
    assert np.array_equal(x, full_x[:5]) and np.array_equal(y, full_y[:5])
    x[:] = 7  # a caller's edit must not reach the cache
    assert load_dataset("digits", limit=5)[0].max() <= 1.0


def test_calibration_set_is_seeded_from_the_train_split() -> None:
    calib = calibration_set("digits", samples=32)
    assert calib.shape == (32, 1, 8, 8) and calib.dtype == np.float32
    assert np.array_equal(calib, calibration_set("digits", samples=32))
    assert not np.array_equal(calib, calibration_set("digits", samples=32, seed=1))
    train_rows = {row.tobytes() for row in load_dataset("digits", split="train")[0]}
    assert all(row.tobytes() in train_rows for row in calib)


def test_fashion_mnist_test_split() -> None:
    x, y = load_dataset("fashion-mnist", split="test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.array_equal(np.unique(y), np.arange(10))
    assert np.array_equal(np.bincount(y), np.full(10, 1000))  # the official test split
    assert np.array_equal(load_dataset("fashion-mnist", limit=3)[1], y[:3])


def test_fashion_mnist_images_are_its_pixels_over_255_in_new_arrays() -> None:
    """The split is kept as uint8 pixels; the images asked for are made float32 alone."""
    pixels = data._idx(data.FASHION_DIR / "train-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28)
    index = np.sort(np.random.default_rng(0).permutation(len(pixels))[:16])
    calib = calibration_set("fashion-mnist", samples=16)
    assert calib.dtype == np.float32
    assert np.array_equal(calib, pixels[index].astype(np.float32) / 255.0)
    calib[:] = 7  # a caller's edit must not reach the cache
    assert calibration_set("fashion-mnist", samples=16).max() <= 1.0
    x, _ = load_dataset("fashion-mnist", split="train", limit=4)
    assert np.array_equal(x, pixels[:4].astype(np.float32) / 255.0)


def test_fashion_mnist_missing_names_the_debian_package(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "fashion-mnist")
    with pytest.raises(InputError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion-mnist", limit=1)


def _idx_file(path: Path, values: np.ndarray, header: bytes | None = None) -> None:
    dims = b"".join(int(d).to_bytes(4, "big") for d in values.shape)
    header = bytes([0, 0, 8, values.ndim]) + dims if header is None else header
    with gzip.open(path, "wb") as f:
        f.write(header + values.astype(np.uint8).tobytes())


@pytest.mark.parametrize(("images", "labels", "message"), [
    (np.zeros((5, 32, 32)), np.zeros(5), r"images \(5, 32, 32\)"),
    (np.zeros((5, 28, 28)), np.zeros(4), r"labels \(4,\)"),
    (np.zeros((5, 28, 28)), np.zeros((5, 2)), r"labels \(5, 2\)"),
    (np.zeros((5, 28, 28)), np.full(5, 200), "up to 200"),
    (np.zeros((0, 28, 28)), np.zeros(0), r"images \(0, 28, 28\)"),
])
def test_fashion_mnist_files_that_do_not_pair_up_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, images: np.ndarray, labels: np.ndarray,
        message: str) -> None:
    """A damaged or replaced IDX file is refused on read, naming what it holds, not reshaped
    into other images or kept with labels that belong to no image or class."""
    _idx_file(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx_file(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path)
    with pytest.raises(InputError, match=message):
        load_dataset("fashion-mnist", limit=1)


def test_fashion_mnist_header_longer_than_its_file_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _idx_file(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros(1), header=b"\x00\x00\x08\x09")
    _idx_file(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5))
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path)
    with pytest.raises(InputError, match="names 9 dimensions, the file ends first"):
        load_dataset("fashion-mnist", limit=1)


@pytest.mark.parametrize("labels", [True, False])
def test_npz_round_trip_float(tmp_path: Path, labels: bool) -> None:
    x = np.random.default_rng(0).random((6, 20)).astype(np.float64)
    y = np.arange(6)
    path = tmp_path / "set.npz"
    np.savez(path, **({"x": x, "y": y} if labels else {"x": x}))
    got_x, got_y = load_dataset(str(path))
    assert got_x.dtype == np.float32 and np.array_equal(got_x, x.astype(np.float32))
    if labels:
        assert got_y.dtype == np.int64 and np.array_equal(got_y, y)
    else:
        assert got_y is None


def test_npz_streams_keep_their_event_counts(tmp_path: Path) -> None:
    """x with a time axis (N, T, features): integers are event counts, kept as they are."""
    x = np.arange(2 * 5 * 3, dtype=np.int16).reshape(2, 5, 3)
    path = tmp_path / "events.npz"
    np.savez(path, x=x, y=np.array([1, 0]))
    got_x, got_y = load_dataset(str(path))
    assert got_x.dtype == np.int32 and np.array_equal(got_x, x)
    assert got_y.tolist() == [1, 0]


def test_npz_uint8_is_scaled_to_unit_range(tmp_path: Path) -> None:
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(3, 1, 1, 1)
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=np.zeros(3, dtype=np.int32))
    got_x, got_y = load_dataset(str(path), limit=2)
    assert got_x.dtype == np.float32 and np.allclose(got_x.ravel(), [0.0, 0.2])
    assert got_y.dtype == np.int64 and got_y.shape == (2,)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"images": np.zeros((2, 4))}, r"no array 'x' \(found: images\)"),
    ({"x": np.zeros((2, 3))[0]}, r"\(N, features\) or NCHW"),
    ({"x": np.zeros((2, 3, 4, 5, 6, 7))}, r"or streams \(N, T, features\)"),
    ({"x": np.full((2, 4), 2.0)}, r"values in \[0, 1\]"),
    ({"x": np.zeros((2, 4), dtype=np.int64)}, "dtype int64"),
    ({"x": np.zeros((2, 4)), "y": np.zeros(3, dtype=int)}, "2 integer labels"),
])
def test_npz_bad_content(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        load_dataset(str(path))


def test_npz_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_dataset(str(tmp_path / "absent.npz"))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a readable .npz file"):
        load_dataset(str(tmp_path / "junk.npz"))
    (tmp_path / "empty.npz").write_bytes(b"")  # internal errors before
    with pytest.raises(InputError, match="empty.npz: not a readable .npz file"):
        load_dataset(str(tmp_path / "empty.npz"))
    np.save(tmp_path / "one.npy", np.zeros((2, 4)))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(InputError, match="one.npz: holds one array, not an .npz archive"):
        load_dataset(str(tmp_path / "one.npz"))
    np.savez(tmp_path / "u64.npz", x=np.zeros((1, 4)), y=np.array([2**63], np.uint64))
    with pytest.raises(InputError, match="label 9223372036854775808 is not a class index"):
        load_dataset(str(tmp_path / "u64.npz"))


def test_npy_images_are_read_as_an_npz_x_without_labels(tmp_path: Path) -> None:
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(3, 1, 1, 1)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    got, labels = load_dataset(str(tmp_path / "x.npy"))
    assert labels is None and np.array_equal(got, load_dataset(str(tmp_path / "x.npz"))[0])
    np.save(tmp_path / "wide.npy", np.full((2, 4), 2.0))
    with pytest.raises(InputError, match=r"wide.npy: images must hold values in \[0, 1\]"):
        load_dataset(str(tmp_path / "wide.npy"))
    np.save(tmp_path / "flat.npy", np.zeros(3))
    with pytest.raises(InputError, match=r"flat.npy: images must be \(N, features\)"):
        load_dataset(str(tmp_path / "flat.npy"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: load_dataset("cifar10"), "unknown dataset 'cifar10'. Use one of: digits, "
                                      "fashion-mnist, a path to an .npz file"),
    (lambda: load_dataset("digits", split="val"), "unknown split 'val'. Use one of: train, test"),
    (lambda: load_dataset("digits", limit=0), "limit must be at least 1"),
    (lambda: calibration_set("digits", samples=0), "at least one sample"),
])
def test_bad_arguments_raise_input_error(call, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_calibration_data_in_memory_is_read_as_a_file_is() -> None:
    # the network's input encodes [0, 1]; thresholds set on another range fit no input it gets
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(3, 1, 1, 1)
    assert np.allclose(data.calibration_images(x, 3).ravel(), [0.0, 0.2, 1.0])
    events = np.arange(12, dtype=np.int64).reshape(2, 3, 2)  # a stream: counts kept
    assert np.array_equal(data.calibration_images(events, 2), events)
    for bad, message in [(np.full((2, 4), -0.5), r"calibration data must hold values in "
                                                  r"\[0, 1\] \(or be uint8\)"),
                         (np.full((2, 4), np.nan), r"values in \[0, 1\]"),
                         (np.zeros((2, 4), np.int64), "calibration data has dtype int64")]:
        with pytest.raises(InputError, match=message):
            data.calibration_images(bad, 2)


def test_calibration_data_comes_as_a_pair_a_dataset_or_a_loader() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.rand(10, 1, 4, 4), torch.arange(10)
    assert np.array_equal(data.calibration_images((x, y), 10), x.numpy())  # labels dropped
    assert np.array_equal(data.calibration_images(TensorDataset(x, y), 6), x[:6].numpy())
    dicts = DataLoader([{"image": image} for image in x], batch_size=4)
    with pytest.raises(InputError, match=r"a calibration batch is a dict \(keys: image\)"):
        data.calibration_images(dicts, 10)
    with pytest.raises(InputError, match="cannot be read as one batch of images"):
        data.calibration_images([np.zeros((1, 4, 4)), np.zeros((1, 3, 3))], 2)


def test_calibration_batches_that_are_no_images_are_refused_by_what_they_are() -> None:
    """Raw numpy errors (inhomogeneous shape, mismatched concatenation, 0-d index)."""
    import torch
    from torch.utils.data import DataLoader, IterableDataset, TensorDataset

    x = torch.rand(8, 1, 4, 4)
    samples = TensorDataset(x, torch.zeros(8, dtype=torch.long))

    class TwoSizes(IterableDataset):
        def __iter__(self):
            yield torch.rand(2, 1, 4, 4)
            yield torch.rand(2, 1, 5, 5)

    for loader, message in [
        (DataLoader(samples, batch_size=4, collate_fn=lambda b: b),
         "a calibration batch cannot be read as images"),
        (DataLoader(TwoSizes(), batch_size=None),
         r"calibration batches hold images of different shapes \(\(1, 4, 4\), \(1, 5, 5\)\)"),
        (DataLoader(["a.png", "b.png"], batch_size=2),
         r"a calibration batch must hold images \(N, ...\), got <U5 of shape \(\)"),
    ]:
        with pytest.raises(InputError, match=f"^{message}"):
            data.calibration_images(loader, 8)


def test_calibration_data_as_a_list_pair_a_masked_array_or_a_sparse_tensor() -> None:
    """next(iter(loader)) is a list [images, labels]; masked arrays and sparse tensors are
    arrays too (all three failed, two with raw errors)."""
    import torch

    x = np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32)
    expected = data.calibration_images(x, 6)
    for given in ([torch.as_tensor(x), torch.zeros(6)], np.ma.masked_array(x),
                  torch.as_tensor(x).to_sparse()):
        np.testing.assert_array_equal(data.calibration_images(given, 6), expected)
    with pytest.raises(InputError, match="^the data has masked values"):
        data.calibration_images(np.ma.masked_array(x, mask=x > 0.9), 6)


def test_normalized_images_get_a_hint_that_works() -> None:
    """"Put any normalization of the images inside the model" led to "sub is not supported"."""
    x = np.random.default_rng(0).random((4, 1, 4, 4)).astype(np.float32)
    with pytest.raises(InputError, match=r"must hold values in \[0, 1\].*fold a normalization "
                                         r"into the first layer's weights and bias"):
        data.calibration_images(x * 2 - 1, 4)

"""Fuzzing compiled .nir files field by field: every dataset of a valid file (records, graph
and input metadata, weights, node fields) replaced by another type, range, shape, NaN, or
removed. ``simulate`` on the damaged file must keep the outcome contract (``contract.py``):
exit 0 with a result (the change was harmless, e.g. a note) or exit 2 with one line; never a
traceback, never a changed input."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy import api
from tests.errors.contract import Workspace, run_case
from tests.models import save_torchscript, trained_digits_mlp

REPLACEMENTS = st.one_of(
    st.sampled_from([np.nan, np.inf, -1, 0, 1, 2**31, -(2**40), 10**12, 0.5, True]),
    st.sampled_from([b"", b"lif", b"zero", b"x" * 100]),
    st.integers(-(2**62), 2**62),
    st.just("empty-array"), st.just("wrong-shape"), st.just("delete"),
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz_nir")
    model = save_torchscript(trained_digits_mlp(steps=20), path / "model.pt")
    api.save(api.compile(model, target="loihi2", calib="digits", timesteps=2,
                         show_progress=False, method="p99.99").graph, path / "good.nir")
    np.save(path / "x.npy", api.dataset("digits", limit=3)[0])
    with h5py.File(path / "good.nir", "r") as f:
        keys = []
        f.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
    return path, sorted(keys)


def mutate(path, key: str, replacement) -> None:
    with h5py.File(path, "r+") as f:
        old = np.asarray(f[key][()])
        del f[key]
        if isinstance(replacement, str) and replacement == "delete":
            return
        if isinstance(replacement, str) and replacement == "empty-array":
            f[key] = np.zeros((0,))
        elif isinstance(replacement, str) and replacement == "wrong-shape":
            f[key] = np.ones((*old.shape, 2)) if old.size else np.ones(3)
        elif isinstance(replacement, bytes) or old.ndim == 0:
            f[key] = replacement
        elif old.size == 0:  # an empty list (e.g. no capacity violations) gets one element
            f[key] = np.asarray([replacement])
        else:
            new = np.array(old, np.float64 if isinstance(replacement, float) else old.dtype)
            new.flat[0] = replacement
            f[key] = new


def check_one(compiled, tmp_path, data) -> None:
    source, keys = compiled
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copy(source / "good.nir", work / "net.nir")
    shutil.copy(source / "x.npy", work / "x.npy")
    key = data.draw(st.sampled_from(keys), label="dataset")
    replacement = data.draw(REPLACEMENTS, label="replacement")
    try:
        mutate(work / "net.nir", key, replacement)
    except (TypeError, ValueError, OverflowError):
        return  # h5py cannot store that value there: nothing to read
    run_case(["simulate", "net.nir", "--input", "x.npy"], Workspace(work))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_file_keeps_the_contract(compiled, tmp_path, data):
    check_one(compiled, tmp_path, data)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_file_keeps_the_contract_many(compiled, tmp_path, data):
    check_one(compiled, tmp_path, data)


@pytest.mark.parametrize("kind", ["complex", "text", "records"])
def test_weights_that_are_not_real_numbers_are_refused(compiled, tmp_path, kind):
    """HDF5 stores complex numbers, text and records where weights belong; numpy dropped the
    imaginary part with a warning (exit 0), and text or records failed deep in the
    arithmetic (exit 3)."""
    def store(f: h5py.File, key: str, old: np.ndarray) -> None:
        f[key] = {"complex": old + 1j, "text": np.full(old.shape, b"a"),
                  "records": np.zeros(old.shape, [("a", "i4"), ("b", "f4")])}[kind]

    stderr, _ = simulate_with_weight(compiled, tmp_path, store)
    assert "'weight' holds" in stderr and "not real numbers" in stderr


def simulate_with_weight(compiled, tmp_path, store) -> tuple[str, str]:
    """``simulate`` (refused) on the good file with its first weight dataset replaced by
    ``store(file, key, old values)``; its stderr and the key."""
    source, keys = compiled
    shutil.copy(source / "good.nir", tmp_path / "net.nir")
    shutil.copy(source / "x.npy", tmp_path / "x.npy")
    key = next(k for k in keys if k.endswith("/weight"))
    with h5py.File(tmp_path / "net.nir", "r+") as f:
        old = f[key][()]
        del f[key]
        store(f, key, old)
    result = run_case(["simulate", "net.nir", "--input", "x.npy"], Workspace(tmp_path),
                      allowed=(2,))
    return result.stderr, key


def test_a_damaged_file_structure_is_unreadable_not_an_internal_error(compiled, monkeypatch):
    """h5py raises RuntimeError for some damage to the file's own structure (a symbol table
    node's signature, a local heap)."""
    from neurodeploy import nir_compat
    from neurodeploy.errors import MetadataError

    def damaged(*args, **kwargs):
        raise RuntimeError("Unable to synchronously check link existence (bad symbol table "
                           "node signature)")

    monkeypatch.setattr(nir_compat.h5py, "File", damaged)
    with pytest.raises(MetadataError, match="unreadable NIR file .*bad symbol table"):
        nir_compat.read_file(compiled[0] / "good.nir")


def test_a_weight_with_chunks_missing_is_refused_not_read_as_zeros(compiled, tmp_path):
    """HDF5 reads a chunk that is not stored as the fill value, without a word: a flipped bit
    in a chunk's index does that to part of a weight matrix, and a huge declared array of
    fill values costs gigabytes to read."""
    def store(f: h5py.File, key: str, old: np.ndarray) -> None:
        partial = f.create_dataset(key, shape=old.shape, dtype=old.dtype, compression="gzip",
                                   chunks=(1, *old.shape[1:]))
        partial[0] = old[0]  # the other rows' chunks are never stored

    stderr, key = simulate_with_weight(compiled, tmp_path, store)
    assert f"'{key}' has parts missing" in stderr


def test_a_graph_type_that_is_not_text_is_not_a_nir_graph(compiled, tmp_path):
    """node/type as an array of numbers was compared element by element: exit 3 (found by
    the fuzz test above)."""
    source, _ = compiled
    shutil.copy(source / "good.nir", tmp_path / "net.nir")
    shutil.copy(source / "x.npy", tmp_path / "x.npy")
    mutate(tmp_path / "net.nir", "node/type", "wrong-shape")
    result = run_case(["simulate", "net.nir", "--input", "x.npy"], Workspace(tmp_path),
                      allowed=(2,))
    assert "not a NIR file (an HDF5 file without a NIR graph)" in result.stderr


def test_a_device_given_as_the_network_is_not_a_regular_file():
    """/dev/null (or a pipe) was said not to exist."""
    from neurodeploy import nir_compat
    from neurodeploy.errors import InputError

    with pytest.raises(InputError, match="/dev/null: not a regular file"):
        nir_compat.read_file("/dev/null")

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

"""Reading our own file gives back an identical graph; bad files fail readably."""

from __future__ import annotations

import dataclasses

import h5py
import nir
import numpy as np
import pytest

from neurodeploy import nir_io
from neurodeploy.core.meta import get_graph_meta, set_graph_meta
from neurodeploy.errors import InputError, MetadataError


def assert_graphs_equal(a: nir.NIRGraph, b: nir.NIRGraph) -> None:
    assert sorted(a.nodes) == sorted(b.nodes)
    assert sorted(a.edges) == sorted(b.edges)
    assert get_graph_meta(a) == get_graph_meta(b)
    for name in a.nodes:
        left, right = a.nodes[name], b.nodes[name]
        assert type(left) is type(right), name
        _assert_equal(left.to_dict(), right.to_dict(), name)


def _assert_equal(x, y, where):
    if isinstance(x, dict):
        assert set(x) == set(y), where
        for key in x:
            _assert_equal(x[key], y[key], f"{where}.{key}")
    elif isinstance(x, bytes | str) or isinstance(y, bytes | str):
        as_text = [v.decode() if isinstance(v, bytes) else v for v in (x, y)]
        assert as_text[0] == as_text[1], where
    else:
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=where)


@pytest.mark.parametrize("fixture", ["mlp_graph", "cnn_graph"])
def test_round_trip_is_lossless(fixture, request, tmp_path):
    graph = request.getfixturevalue(fixture)
    nir_io.write(graph, tmp_path / "net.nir")
    again = nir_io.read(tmp_path / "net.nir")
    assert_graphs_equal(graph, again)
    nir_io.write(again, tmp_path / "net2.nir")
    assert_graphs_equal(graph, nir_io.read(tmp_path / "net2.nir"))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        nir_io.read(tmp_path / "nope.nir")
    with pytest.raises(InputError, match="is a directory, not a .nir file"):
        nir_io.read(tmp_path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.nir"
    path.write_text("hello")
    with pytest.raises(MetadataError, match="not a NIR file"):
        nir_io.read(path)


def test_truncated_file(mlp_graph, tmp_path):
    path = tmp_path / "net.nir"
    nir_io.write(mlp_graph, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MetadataError):
        nir_io.read(path)


def test_plain_nir_without_our_metadata(tmp_path):
    graph = nir.NIRGraph({"input": nir.Input({"input": np.array([2])}),
                          "output": nir.Output({"output": np.array([2])})},
                         [("input", "output")])
    nir.write(tmp_path / "plain.nir", graph)
    with pytest.raises(MetadataError, match="not a neurodeploy graph"):
        nir_io.read(tmp_path / "plain.nir")


def test_unknown_schema_version(mlp_graph, tmp_path):
    graph = nir.NIRGraph(dict(mlp_graph.nodes), list(mlp_graph.edges),
                         metadata=dict(mlp_graph.metadata))
    set_graph_meta(graph, dataclasses.replace(get_graph_meta(mlp_graph), schema=99))
    nir.write(tmp_path / "future.nir", graph)
    with pytest.raises(MetadataError, match="schema version 99"):
        nir_io.read(tmp_path / "future.nir")


def test_failed_write_leaves_no_file(mlp_graph, tmp_path, monkeypatch):
    def explode(path, graph):
        with h5py.File(path, "w") as f:
            f["partial"] = 1
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", explode)
    with pytest.raises(InputError, match="cannot write .disk full."):
        nir_io.write(mlp_graph, tmp_path / "net.nir")
    assert list(tmp_path.iterdir()) == []

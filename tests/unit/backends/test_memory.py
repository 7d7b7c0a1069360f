"""Runs in chunks within a memory budget give the one-run results: the chunk size, the budget
syntax, the machine's free memory, traces joined from chunks, and a trace streamed to a file
chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import simulation
from neurodeploy.backends import Record, Trace, get_backend, memory
from neurodeploy.backends.memory import (
    MAX_CHUNK,
    available_memory,
    chunk_size,
    chunks,
    parse_memory,
    sample_bytes,
)
from neurodeploy.errors import InputError


@pytest.mark.parametrize(("text", "value"), [
    ("2GB", 2_000_000_000), ("512MiB", 512 * 2**20), ("1.5G", 1_500_000_000), ("300", 300),
    ("64 kb", 64_000), ("1TiB", 2**40)])
def test_budgets_are_read_in_decimal_and_binary_units(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["", "2XB", "-1GB", "GB", "0", "two GB"])
def test_a_budget_that_is_not_a_size_is_refused(text):
    with pytest.raises(InputError, match="memory budget"):
        parse_memory(text)


def test_chunks_shrink_with_the_window_and_the_budget(cnn_graph, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: None)  # the budget alone
    per_sample = sample_bytes(cnn_graph, 4)
    assert chunk_size(cnn_graph, 4, 10 * per_sample) == 10
    assert chunk_size(cnn_graph, 8, 10 * per_sample) == 5
    assert chunk_size(cnn_graph, 4, 10 * per_sample, Record.ALL) < 10
    assert chunk_size(cnn_graph, 4, 1) == 1  # always some progress
    assert chunk_size(cnn_graph, 1, 10**15) == MAX_CHUNK
    assert chunks(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]


def test_free_memory_is_the_kernels_estimate_lowered_to_a_containers_limit(tmp_path):
    assert available_memory(tmp_path) is None  # a system that says nothing
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: 9000 kB\nMemAvailable: 1000 kB\n")
    assert available_memory(tmp_path) == 1_024_000
    cgroup = tmp_path / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("100000\n")
    assert available_memory(tmp_path) == 1_024_000  # no limit set
    (cgroup / "memory.max").write_text("500000\n")
    assert available_memory(tmp_path) == 400_000


def test_chunks_fit_the_free_memory_and_a_sample_beyond_it_is_refused(cnn_graph, monkeypatch):
    per_sample = sample_bytes(cnn_graph, 4)
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * per_sample)
    assert chunk_size(cnn_graph, 4, 10**15) == 3
    monkeypatch.setattr(memory, "available_memory", lambda: per_sample - 1)
    with pytest.raises(InputError, match="one sample over 4 steps needs up to .* GB of working "
                                         "memory, and this machine has .* GB free"):
        chunk_size(cnn_graph, 4)


def _assert_same(a: Trace, b: Trace) -> None:
    for key in ("outputs", "logits", "output_steps"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    for kind in ("spikes", "membranes", "currents", "events", "offsets", "synops"):
        x, y = getattr(a, kind), getattr(b, kind)
        assert x.keys() == y.keys(), kind
        assert all(np.array_equal(x[k], y[k]) for k in x), kind


@pytest.mark.parametrize("graph", ["mlp_graph", "cnn_graph"])
def test_traces_joined_from_chunks_equal_one_run(graph, request):
    graph = request.getfixturevalue(graph)
    x = simulation.random_inputs(graph, 11, seed=5)
    engine = get_backend("reference")
    whole = engine.run(graph, x, 4, record=Record.CURRENTS)
    parts = [engine.run(graph, x[rows], 4, record=Record.CURRENTS) for rows in chunks(11, 4)]
    assert whole.events and whole.currents  # the summed and per-sample records are compared
    _assert_same(Trace.concatenate(parts), whole)


def test_a_trace_streamed_in_chunks_equals_the_one_run_trace(cnn_graph, tmp_path):
    x = simulation.random_inputs(cnn_graph, 13, seed=6)
    budget = 3 * sample_bytes(cnn_graph, 5, Record.ALL)  # chunks of 3 samples
    path = tmp_path / "trace.npz"
    outputs, events = simulation.simulate_to_file(cnn_graph, x, path, 5, show_progress=False,
                                                  memory_budget=budget)
    whole = simulation.simulate(cnn_graph, x, 5)
    _assert_same(Trace.load(str(path)), whole)
    assert np.array_equal(outputs, whole.outputs)
    assert all(np.array_equal(events[k], whole.events[k]) for k in whole.events)
    assert [p.name for p in tmp_path.iterdir()] == ["trace.npz"]  # no scratch files left

"""compare() names the earliest divergence and counts what it compared."""

from __future__ import annotations

import dataclasses

import numpy as np

from neurodeploy.backends import Record, get_backend
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.verify import Verification, compare


def _run(graph, x, t=4):
    return get_backend("reference").run(graph, x, t, record=Record.ALL)


def test_identical_traces_have_no_divergence(cnn_graph):
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8)).astype(np.int32)
    result = compare(cnn_graph, _run(cnn_graph, x), _run(cnn_graph, x))
    assert result.divergence is None
    assert result.samples == 2 and result.timesteps == 4 and result.populations == 3
    assert result.neurons == 4 * 8 * 8 + 6 * 2 * 2 + 5


def test_corrupted_threshold_is_found_in_its_population(cnn_graph):
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8)).astype(np.int32)
    meta = population_meta(cnn_graph, "relu2")
    bad = with_record(cnn_graph, "relu2", meta.replace(theta=meta.theta + 1))
    result = compare(cnn_graph, _run(cnn_graph, x), _run(bad, x))
    assert result.divergence is not None
    assert result.divergence.population == "relu2"
    assert "relu2" in str(result.divergence)


def test_each_sample_is_compared_on_its_own(cnn_graph):
    x = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8)).astype(np.int32)
    expected = _run(cnn_graph, x)
    membranes = {name: m.copy() for name, m in expected.membranes.items()}
    membranes["relu2"][2, 1, 5, 1, 0] += 1  # (T, batch, C, H, W): sample 1 only
    actual = dataclasses.replace(expected, membranes=membranes)
    result = Verification(cnn_graph, "mine", compare(cnn_graph, expected, actual), expected,
                          actual)
    per_sample = result.per_sample()
    assert [c.divergence is None for c in per_sample] == [True, False, True]
    assert all(c.samples == 1 for c in per_sample)
    divergence = per_sample[1].divergence
    assert (divergence.population, divergence.sample, divergence.timestep,
            divergence.neuron) == ("relu2", 1, 2, (5, 1, 0))
    assert str(result).startswith("MISMATCH: first divergence in population 'relu2'")
    assert str(result).endswith("(mine)")

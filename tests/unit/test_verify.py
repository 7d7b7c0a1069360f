"""compare() names the earliest divergence and counts what it compared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurodeploy.backends import Record, get_backend
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.errors import BitExactMismatch, InputError
from neurodeploy.verify import Verification, compare, run_and_compare


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


class _Altered:
    """A backend under development: the reference's trace, altered by ``change``."""

    name = "dev"

    def __init__(self, change):
        self.change = change

    def run(self, graph, inputs, timesteps, *, record=Record.OUTPUT):
        return self.change(get_backend("reference").run(graph, inputs, timesteps,
                                                        record=record))


def _membranes(trace, change):
    return dataclasses.replace(trace, membranes={k: change(v) for k, v in
                                                 trace.membranes.items()})


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: _membranes(t, lambda v: v[:-1]),
     r"membranes of population 'relu1': the checked backend recorded shape \(3, 2, 4, 8, 8\), "
     r"the reference shape \(4, 2, 4, 8, 8\)"),
    (lambda t: dataclasses.replace(t, membranes={}),
     "membranes of population 'relu1': the checked backend recorded nothing"),
    (lambda t: dataclasses.replace(t, outputs=np.pad(t.outputs, ((0, 0), (0, 1)))),
     r"outputs: the checked backend recorded shape \(2, 6\), the reference shape \(2, 5\)"),
    (lambda t: None, "backend 'dev' returned NoneType, not a Trace")])
def test_a_backend_that_records_something_else_fails_the_check(cnn_graph, change, message):
    """Its mistakes are findings (BitExactMismatch, an AssertionError), not crashes."""
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8)).astype(np.int32)
    with pytest.raises(BitExactMismatch, match=message):
        run_and_compare(cnn_graph, x, 4, backend=_Altered(change))


def test_a_divergence_shows_the_values_recorded(cnn_graph):
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8)).astype(np.int32)
    result = run_and_compare(cnn_graph, x, 4, backend=_Altered(
        lambda t: _membranes(t, lambda v: v + 0.25)))
    assert result.comparison.divergence.actual == result.comparison.divergence.expected + 0.25
    with pytest.raises(InputError, match="or an object with the Backend protocol"):
        run_and_compare(cnn_graph, x, 4, backend=object())

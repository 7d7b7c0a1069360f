"""Exact trace comparison shared by the bit-exact tests."""

from __future__ import annotations

import numpy as np

from neurodeploy.backends import Backend, Record, Trace
from neurodeploy.verify import compare


def assert_identical(graph, expected: Trace, actual: Trace) -> None:
    """Every recorded spike, membrane and output equal; names the first divergence if not."""
    divergence = compare(graph, expected, actual).divergence
    assert divergence is None, str(divergence)
    assert expected.spikes.keys() == actual.spikes.keys()
    assert expected.membranes.keys() == actual.membranes.keys()
    assert np.array_equal(expected.output_steps, actual.output_steps)
    assert np.array_equal(expected.logits, actual.logits)


def run_both(reference_backend: Backend, lava_backend: Backend, graph, inputs, timesteps,
             record: Record = Record.ALL) -> tuple[Trace, Trace]:
    return (reference_backend.run(graph, inputs, timesteps, record=record),
            lava_backend.run(graph, inputs, timesteps, record=record))

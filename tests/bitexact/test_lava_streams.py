"""Lava against the reference on input streams and recurrent networks: every spike and
membrane equal, over several samples run back to back (a recurrent edge must not carry a
sample's last spikes into the next one)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.core.graph import recurrent_delays
from neurodeploy.testing import assert_bit_exact
from tests import foreign
from tests.bitexact.checks import assert_identical, run_both

T = 10


@pytest.mark.lava
@pytest.mark.parametrize("feedback", [False, True])
def test_recurrent_network_on_streams_is_bit_exact(feedback, reference_backend, lava_backend):
    graph = api.import_nir(foreign.recurrent_net(feedback=feedback), target="loihi2",
                           dt=foreign.DT, timesteps=T, events=True).graph
    assert set(recurrent_delays(graph).values()) == {2 if feedback else 1}
    x = foreign.event_streams(3, T, (6,), 0.4)
    expected, actual = run_both(reference_backend, lava_backend, graph, x, T)
    assert_identical(graph, expected, actual)
    # spikes in the last steps of a window reach the next window on Lava's recurrent synapses
    assert expected.spikes["lif2" if feedback else "lif1"][-2:].any()


@pytest.mark.lava
def test_stream_into_a_convolution_is_bit_exact(cnn_graph):
    shape = tuple(int(d) for d in cnn_graph.nodes["input"].input_type["input"])
    x = np.random.default_rng(5).random((2, 6, *shape)).astype(np.float32)
    assert_bit_exact(api.Deployment(cnn_graph, None), x, timesteps=6)

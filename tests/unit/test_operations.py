"""Synaptic operations counted by the reference simulator, and the per-sample report."""

from __future__ import annotations

import itertools

import nir
import numpy as np
import pytest

from neurodeploy.backends import Record, get_backend
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import SYNAPSE_TYPES
from neurodeploy.core.synapse import fan_out
from neurodeploy.errors import InputError
from neurodeploy.operations import ann_macs, operations
from neurodeploy.targets import load_target
from tests.bitexact.netgen import NetBuilder


def brute_force_fan_out(weight, shape, stride, padding, dilation, groups):
    """For every input position, count (output position, channel) pairs whose nonzero weight
    reads it, by walking the convolution's definition."""
    _, h, w = shape
    cout, cin_g, kh, kw = weight.shape
    hout = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wout = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    counts = np.zeros(shape, np.int64)
    per_group = cout // groups
    for o, y, x, c, i, j in itertools.product(range(cout), range(hout), range(wout),
                                              range(cin_g), range(kh), range(kw)):
        row = y * stride[0] - padding[0] + i * dilation[0]
        col = x * stride[1] - padding[1] + j * dilation[1]
        channel = (o // per_group) * cin_g + c
        if 0 <= row < h and 0 <= col < w and weight[o, c, i, j] != 0:
            counts[channel, row, col] += 1
    return counts


def test_conv_fan_out_matches_the_definition():
    rng = np.random.default_rng(0)
    weight = rng.integers(-2, 3, (4, 1, 3, 2)).astype(np.float64)  # zeros included
    node = nir.Conv2d(input_shape=(5, 6), weight=weight, stride=(2, 1), padding=(1, 0),
                      dilation=(1, 2), groups=2, bias=np.zeros(4))
    expected = brute_force_fan_out(weight, (2, 5, 6), (2, 1), (1, 0), (1, 2), 2)
    np.testing.assert_array_equal(fan_out(node, (2, 5, 6)), expected)


def test_linear_and_pool_fan_out():
    weight = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    np.testing.assert_array_equal(fan_out(nir.Linear(weight=weight), (3,)), [1, 0, 2])
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0]))
    np.testing.assert_array_equal(fan_out(pool, (1, 4, 4)), np.ones((1, 4, 4)))


def chain_graph():
    """input (3,) -> Linear -> IF -> Linear -> readout, integer parameters."""
    from neurodeploy.core.population import Population

    builder = NetBuilder(np.random.default_rng(0), timesteps=4)
    src = builder.input((3,))
    fc0 = builder.add("fc0", nir.Linear(weight=np.array([[50.0, 0, 50], [0, 0, 50]])), [src],
                      (2,))
    hidden = builder.population("if0", [fc0], Population(
        kind="if", theta=np.array(100), v_init=np.array(0), theta_neg=np.array(0)))
    fc1 = builder.add("fc1", nir.Linear(weight=np.array([[1.0, 1.0], [0.0, 1.0]])), [hidden],
                      (2,))
    readout = builder.population("readout", [fc1], Population(kind="readout"))
    return builder.graph(readout, membrane_bits=24)


def test_synaptic_operations_count_events_times_fan_out():
    graph = chain_graph()
    inputs = np.array([[2, 0, 2], [0, 0, 0]])  # sample 1 sends nothing
    trace = get_backend("reference").run(graph, inputs, 4, record=Record.ALL)
    # input: 2 nonzero pixels every step; pixel 0 drives 1 synapse, pixel 2 drives 2
    assert trace.synops["fc0"] == 4 * (1 + 2)
    hidden_events = np.count_nonzero(trace.spikes["if0"], axis=(0, 1))
    assert trace.synops["fc1"] == hidden_events[0] * 1 + hidden_events[1] * 2
    np.testing.assert_array_equal(trace.events["if0"], hidden_events)
    assert hidden_events.sum() > 0


def test_per_sample_operations_and_energy():
    graph = chain_graph()
    trace = get_backend("reference").run(graph, np.array([[2, 0, 2], [2, 0, 2]]), 4,
                                         record=Record.COUNTS)
    ops = operations(graph, trace)
    assert [layer.name for layer in ops.layers] == ["fc0", "fc1"]
    assert ops.layers[0].synops == 12  # per sample: the same as one sample alone
    assert ops.neuron_updates == (2 + 2) * 4
    assert ops.ann_macs == 2 * 3 + 2 * 2
    target = load_target("loihi2")
    expected = ops.synops * target.energy.synop_pj + 16 * target.energy.neuron_update_pj
    assert ops.energy_pj(target) == pytest.approx(expected)
    assert ops.as_dict(target)["layers"][1]["name"] == "fc1"


def test_operations_need_counts():
    graph = chain_graph()
    trace = get_backend("reference").run(graph, np.array([[2, 0, 2]]), 4)
    with pytest.raises(InputError, match="Record.COUNTS"):
        operations(graph, trace)


def test_conv_macs_and_every_compiled_synapse_counted(cnn_graph):
    conv = next(n for n in cnn_graph.nodes.values() if isinstance(n, nir.Conv2d))
    _, cin, kh, kw = conv.weight.shape
    assert ann_macs(conv) == int(np.prod(conv.output_type["output"])) * cin * kh * kw
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 8, 8))
    trace = get_backend("reference").run(cnn_graph, x, 5, record=Record.COUNTS)
    synapses = {n for n, node in cnn_graph.nodes.items() if isinstance(node, SYNAPSE_TYPES)}
    assert set(trace.synops) == synapses
    assert set(trace.events) == set(populations(cnn_graph)[:-1])
    assert all(v >= 0 for v in trace.synops.values())

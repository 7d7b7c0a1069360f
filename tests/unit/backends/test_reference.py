"""The batched reference simulator against a naive per-step loop over the same graph."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.core import neuron
from neurodeploy.core.graph import (
    input_name,
    predecessors,
    readout_name,
    recurrent_delays,
    topological_order,
)
from neurodeploy.core.meta import InputMeta, copy_graph, get_node_meta, population_meta
from neurodeploy.core.population import NEURON_TYPES
from tests import foreign


def naive_run(graph: nir.NIRGraph, x: np.ndarray, timesteps: int
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One sample at a time, one step at a time, float64 synapses (exact for small ints):
    (membranes, synaptic currents), each population -> (batch * T, *shape). A stream
    (batch, T, *shape) injects step t at step t; a recurrent edge delivers its source's value
    of ``recurrent_delays`` steps earlier (nothing before)."""
    preds = predecessors(graph)
    delays = recurrent_delays(graph)
    stream = x.ndim == len(graph.nodes[input_name(graph)].input_type["input"]) + 2
    results, currents = {}, {}
    for sample in x:
        state, history = {}, {name: [] for name in graph.nodes}
        for t in range(timesteps):
            values = {}
            for name in topological_order(graph):
                node = graph.nodes[name]
                ins = [values[p] if (p, name) not in delays else history[p][t - delays[p, name]]
                       for p in preds[name] if t >= delays.get((p, name), 0)]
                if isinstance(node, nir.Input):
                    values[name] = torch.as_tensor(sample[t] if stream else sample,
                                                   dtype=torch.float64)
                elif isinstance(node, nir.Linear):
                    values[name] = torch.as_tensor(node.weight, dtype=torch.float64) @ ins[0]
                elif isinstance(node, nir.Conv2d):
                    values[name] = F.conv2d(ins[0][None], torch.as_tensor(
                        node.weight, dtype=torch.float64), None, tuple(node.stride),
                        tuple(node.padding), tuple(node.dilation), node.groups)[0]
                elif isinstance(node, nir.SumPool2d):
                    values[name] = F.avg_pool2d(ins[0][None], tuple(node.kernel_size),
                                                tuple(node.stride), divisor_override=1)[0]
                elif isinstance(node, nir.Flatten):
                    values[name] = ins[0].flatten()
                elif isinstance(node, NEURON_TYPES):
                    shape = tuple(int(d) for d in node.input_type["input"])
                    p = population_meta(graph, name).neuron_params(shape)
                    current = sum(ins).numpy().astype(np.int32)
                    if t == 0:
                        state[name] = neuron.initial_state(p, current)
                    v, c, u, s = neuron.step(*state[name], current, p, t)
                    state[name] = (v, c, u)
                    values[name] = torch.as_tensor(s, dtype=torch.float64)
                    results.setdefault(name, []).append(v.copy())
                    currents.setdefault(name, []).append(current)
                else:
                    values[name] = ins[0]
                history[name].append(values[name])
    return ({k: np.array(v) for k, v in results.items()},
            {k: np.array(i) for k, i in currents.items()})


@pytest.fixture(scope="module")
def recurrent_graph():
    """An imported network whose hidden layer feeds itself, on a pipelined target."""
    return api.import_nir(foreign.recurrent_net(), target="loihi2", dt=foreign.DT,
                          timesteps=12, events=True).graph


@pytest.mark.parametrize(("fixture", "stream"), [
    ("mlp_graph", False), ("cnn_graph", False), ("mlp_graph", True), ("cnn_graph", True),
    ("recurrent_graph", True), ("recurrent_graph", False)])
def test_reference_matches_naive_loop(fixture, stream, request):
    graph = request.getfixturevalue(fixture)
    shape = tuple(graph.nodes["input"].input_type["input"])
    high = get_node_meta(graph.nodes["input"], InputMeta).high
    steps = (5,) if stream else ()
    x = np.random.default_rng(3).integers(0, high + 1, (3, *steps, *shape)).astype(np.int32)
    trace = get_backend("reference").run(graph, x, 5, record=Record.CURRENTS)
    naive = naive_run(graph, x, 5)
    for recorded, expected in zip((trace.membranes, trace.currents), naive, strict=True):
        assert recorded.keys() == expected.keys()
        for pop, values in recorded.items():
            per_sample = expected[pop].reshape(3, 5, *values.shape[2:]).swapaxes(0, 1)
            np.testing.assert_array_equal(values, per_sample, err_msg=pop)
    assert any(s.any() for s in trace.spikes.values()), "a test without spikes proves little"


def test_a_stream_of_one_repeated_input_is_that_static_input(cnn_graph):
    x = np.random.default_rng(4).integers(0, 256, (2, *cnn_graph.nodes["input"].input_type[
        "input"])).astype(np.int32)
    static = get_backend("reference").run(cnn_graph, x, 6, record=Record.ALL)
    stream = get_backend("reference").run(cnn_graph, np.repeat(x[:, None], 9, axis=1), 6,
                                          record=Record.ALL)
    for kind in ("spikes", "membranes"):
        for pop, values in getattr(static, kind).items():
            np.testing.assert_array_equal(getattr(stream, kind)[pop], values, err_msg=pop)


def test_the_recurrent_edge_changes_the_network(recurrent_graph):
    """The recurrent synapses carry spikes: cutting them changes the hidden layer."""
    x = foreign.event_streams(4, 12, (6,), 0.3)
    cut = copy_graph(recurrent_graph, {})
    cut.edges = [e for e in cut.edges if e != ("rec", "lif1")]
    spikes = [get_backend("reference").run(g, x, 12, record=Record.SPIKES).spikes["lif1"]
              for g in (recurrent_graph, cut)]
    assert spikes[0].sum() > 20 and not np.array_equal(*spikes)


def test_output_only_run_gives_the_same_outputs(cnn_graph):
    x = np.random.default_rng(4).integers(0, 256, (4, 1, 8, 8)).astype(np.int32)
    backend = get_backend("reference")
    full = backend.run(cnn_graph, x, 6, record=Record.ALL)
    lean = backend.run(cnn_graph, x, 6)
    np.testing.assert_array_equal(full.outputs, lean.outputs)
    assert not lean.spikes and not lean.membranes and not lean.currents and not full.currents


def test_shorter_window_is_a_prefix_of_a_longer_one(mlp_graph):
    x = np.random.default_rng(5).integers(0, 256, (4, 1, 4, 4)).astype(np.int32)
    backend = get_backend("reference")
    long = backend.run(mlp_graph, x, 8)
    for t in (1, 3, 8):
        np.testing.assert_array_equal(backend.run(mlp_graph, x, t).outputs,
                                      long.output_steps[t - 1])


def test_offsets_count_synapse_hops(cnn_graph):
    trace = get_backend("reference").run(cnn_graph, np.zeros((1, 1, 8, 8), np.int32), 2)
    assert trace.offsets == {"relu1": 1, "relu2": 3, readout_name(cnn_graph): 4}


def test_float64_and_float32_gemms_agree(cnn_graph):
    from neurodeploy.backends.reference import ReferenceBackend

    x = np.random.default_rng(6).integers(0, 256, (2, 1, 8, 8)).astype(np.int32)
    a = ReferenceBackend(exact_dtype=torch.float32).run(cnn_graph, x, 4, record=Record.ALL)
    b = ReferenceBackend(exact_dtype=torch.float64).run(cnn_graph, x, 4, record=Record.ALL)
    for pop in a.spikes:
        np.testing.assert_array_equal(a.spikes[pop], b.spikes[pop])


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_count_nonzero_matches_a_plain_count(layout):
    from neurodeploy.core.synapse import count_nonzero

    x = torch.randint(-2, 3, (3 * 4, 5, 6, 7)).float().contiguous(memory_format=layout)
    steps = x.view(3, 4, 5, 6, 7)
    assert torch.equal(count_nonzero(steps, lead=2), (steps != 0).sum(dim=(0, 1)))
    assert torch.equal(count_nonzero(x, lead=1), (x != 0).sum(0))
    flat = torch.randint(-1, 2, (3, 4, 9)).float()
    assert torch.equal(count_nonzero(flat, lead=2), (flat != 0).sum(dim=(0, 1)))
    # spikes as the calibration stages keep them: int8, channels last, a chunk of the images
    kept = torch.randint(-2, 3, (3, 8, 6, 7, 5), dtype=torch.int8).permute(0, 1, 4, 2, 3)
    chunk = kept[:, 2:6]
    assert torch.equal(count_nonzero(chunk, lead=2), (chunk != 0).sum(dim=(0, 1)))

"""The kept, population-by-population simulation of the calibration stages equals the whole
network's reference run, also after a layer changed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurodeploy.backends import Record, memory
from neurodeploy.backends.memory import sample_bytes
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.meta import copy_graph, population_meta
from neurodeploy.core.neuron import NeuronParams
from neurodeploy.core.population import population_shape
from neurodeploy.errors import InputError
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.methods.corrections import firing, with_population
from neurodeploy.methods.deployed import DeployedNetwork, SpikeRecord
from neurodeploy.methods.probe import simulate
from neurodeploy.nir_compat import replace_node
from neurodeploy.targets import load_target
from tests.conftest import images, random_cnn, random_mlp, random_resnet


@pytest.mark.parametrize("max_burst", [1, 3], ids=["packed", "int8"])
@pytest.mark.parametrize("ann", [random_cnn(), random_resnet()], ids=["cnn", "resnet"])
def test_kept_populations_equal_the_whole_run_after_a_change(ann, max_burst):
    """Records of single spikes are kept eight to a byte, of bursts as int8 (SpikeRecord)."""
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=24, seed=3),
                        options=ConvertOptions(timesteps=3, max_burst=max_burst),
                        target=load_target("loihi2"), show_progress=False)
    graph = get_method("p99.99").convert(ctx)
    ctx = replace(ctx, memory_budget=5 * sample_bytes(graph, 3))  # chunks of 5 (both runs)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    assert net.chunk < len(ctx.calib)
    pops = firing(graph)
    changed = with_population(graph, pops[1], bias=np.asarray(0.3),
                              v_init=np.asarray(-0.2))
    for g in (graph, changed, graph):
        probe = simulate(g, ctx.calib, ctx, record=Record.CURRENTS)
        for pop in pops:
            assert np.array_equal(net.spikes(g, pop), probe.trace.spikes[pop])
            # counted in integers, then valued: the whole run's float sums round otherwise
            np.testing.assert_allclose(net.mean_rates(g, pop), probe.rates(pop).mean(axis=0),
                                       rtol=1e-12, atol=0)
            currents, record = net.currents(g, pop)
            assert np.array_equal(currents, probe.trace.currents[pop])
            whole = population_meta(probe.graph, pop)
            assert all(np.array_equal(value, getattr(whole, field))
                       for field, value in vars(record).items())
        assert np.array_equal(net.logits(g), probe.logits)
        assert sum(sum(net.synops(g, p)) for p in pops) == sum(
            ops for synapse, ops in probe.trace.synops.items()
            if synapse not in _input_synapses(g))
    # the first layer did not change, so its record is the one kept from the first run
    kept = net._runs[pops[0]]
    net.spikes(changed, pops[-1])
    assert net._runs[pops[0]] is kept


@pytest.mark.parametrize("ann", [random_cnn(), random_resnet()], ids=["cnn", "resnet"])
def test_a_probed_population_runs_on_its_kept_input_until_the_input_changes(ann):
    """AdaFire's tables change one population's threshold again and again: from its second
    run on one input that input is kept, and the inputs after it, each computed once, do not
    replace it; a change of its weights, or upstream (the source's threshold is folded into
    the weights), is not served from it."""
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=24, seed=4),
                        options=ConvertOptions(timesteps=3, max_burst=3),
                        target=load_target("loihi2"), show_progress=False)
    graph = get_method("p99.99").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    net.chunk = 5  # as a small budget makes them, with room to keep an input
    first, probed = firing(graph)[:2]
    theta = population_meta(graph, probed).theta
    probes = [with_population(graph, probed, theta=theta * scale, max_burst=burst)
              for scale, burst in [(1.0, 3), (1.5, 3), (2.0, 1), (2.5, 2)]]
    synapse = net.paths[probed][0].synapse
    weight = np.array(graph.nodes[synapse].weight)
    weight.flat[0] += 0.3 * np.abs(weight).max()
    reweighted = copy_graph(probes[-1], {synapse: replace_node(graph.nodes[synapse],
                                                               weight=weight)})
    upstream = with_population(probes[-1], first, theta=population_meta(graph, first).theta * 2)
    for n, g in enumerate([*probes, reweighted, upstream], start=1):
        probe = simulate(g, ctx.calib, ctx)
        assert np.array_equal(net.logits(g), probe.logits)
        for pop in firing(g):
            assert np.array_equal(net.spikes(g, pop), probe.trace.spikes[pop])
        assert (net._inputs[probed].chunks is not None) == (2 <= n <= len(probes))


@pytest.mark.parametrize("ann", [random_cnn(), random_resnet()], ids=["cnn", "resnet"])
def test_a_corrected_population_runs_again_on_its_kept_input(ann):
    """A layer-by-layer stage corrects a population and runs it again for its consumers: the
    run after the correction reads the input the run before it computed, spike for spike as
    the whole network's run, and the next population's input takes its place."""
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=24, seed=6),
                        options=ConvertOptions(timesteps=3), target=load_target("loihi2"),
                        show_progress=False)
    graph = get_method("p99.99").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    net.chunk = 5  # as a small budget makes them, with room to keep an input
    for pop in firing(graph):
        before = net.spikes(graph, pop)
        meta = population_meta(graph, pop)
        graph = with_population(graph, pop, bias=np.asarray(meta.bias, np.float64)
                                + 0.3 * np.asarray(meta.theta, np.float64))
        after = net.spikes(graph, pop)
        assert not np.array_equal(after, before)  # the correction changed what it sends
        assert np.array_equal(after, simulate(graph, ctx.calib, ctx).trace.spikes[pop])
        assert net._inputs[pop].computed == 1 and net._inputs[pop].chunks is not None
        assert [p for p, i in net._inputs.items() if i.chunks is not None] == [pop]


@pytest.mark.parametrize("ann", [random_mlp(sizes=(16, 24, 20, 16, 12, 5)), random_resnet()],
                         ids=["mlp", "resnet"])
def test_records_behind_a_layer_by_layer_stage_are_released_and_come_back_the_same(ann):
    """Once the first k populations are corrected, the k-th runs again for its consumers, and
    the rest read their sources: every other record of the first k is freed; asked for
    again, a freed record is simulated again, spike for spike (identity shortcuts included)."""
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=24, seed=5),
                        options=ConvertOptions(timesteps=3), target=load_target("loihi2"),
                        show_progress=False)
    graph = get_method("p99.99").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    pops = firing(graph)
    probe = simulate(graph, ctx.calib, ctx)
    sources = {p: {path.source for path in net.paths[p]} for p in net.populations}
    released = set()
    for k, pop in enumerate(pops, start=1):
        net.spikes(graph, pop)
        net.release_behind(pops[:k])
        read = {pop, *sources[pop], *(s for p in net.populations[k:] for s in sources[p])}
        released |= set(pops[:k]) - read
        assert {p for p, run in net._runs.items() if run.released} == released
    assert released  # the last layers' sources stay; the first layers are freed
    for pop in pops:
        assert np.array_equal(net.spikes(graph, pop), probe.trace.spikes[pop])
    assert np.array_equal(net.logits(graph), probe.logits)


def _input_synapses(graph) -> set[str]:
    return {dst for src, dst in graph.edges if src == "input"}


def test_spike_records_the_free_memory_cannot_hold_are_refused_before_a_run(monkeypatch):
    """A byte per neuron, step and image is kept: compile -T 65536 grew past 9 GB first."""
    ann = random_cnn()
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=64, seed=3),
                        options=ConvertOptions(timesteps=1000), target=load_target("loihi2"),
                        show_progress=False)
    graph = get_method("p99.99").convert(ctx)
    kept = sum(np.prod(population_shape(graph.nodes[p])) for p in firing(graph))
    free = 64 * 1000 * int(kept) - 1
    assert sample_bytes(graph, 1000) < free  # one sample's run fits
    monkeypatch.setattr(memory, "available_memory", lambda: free)
    with pytest.raises(InputError, match="^64 samples over 1000 steps need up to .* Calibrate "
                                         "for a shorter window, or on fewer images"):
        DeployedNetwork(graph, ctx.calib, ctx)


@pytest.mark.parametrize("stored", [(0, 1, 3, 4, 2), (0, 1, 2, 3, 4)],
                         ids=["channels-last", "channels-first"])
def test_a_packed_spike_record_reads_back_as_the_int8_record_does(stored):
    """Eight single spikes to a byte, read back with the same values and the same memory
    order as the int8 record (torch rounds a convolution by its input's layout), for a slice
    of images and for an index array."""
    spikes = np.random.default_rng(0).integers(0, 2, (3, 10, 12, 5, 5)).astype(np.int8)
    chunk = np.ascontiguousarray(spikes.transpose(stored)).transpose(np.argsort(stored))
    params = {burst: NeuronParams(theta=np.array(1), bias=np.array(0), v_init=np.array(0),
                                  theta_neg=np.array(0), max_burst=burst) for burst in (1, 2)}
    packed, whole = (SpikeRecord(chunk, 10, params[burst]) for burst in (1, 2))
    for rows in (slice(0, 6), slice(6, 10)):
        packed.write(rows, chunk[:, rows])
        whole.write(rows, chunk[:, rows])
    assert packed.packed and not whole.packed
    assert packed.stored.nbytes * 5 <= whole.stored.nbytes  # 12 or 5 innermost: 2 or 1 bytes
    for rows in (slice(None), slice(2, 7), np.array([1, 4, 9])):
        read, expected = packed.read(rows), whole.read(rows)
        assert np.array_equal(read, spikes[:, rows]) and np.array_equal(expected, read)
        assert np.argsort(read.strides).tolist() == np.argsort(expected.strides).tolist()

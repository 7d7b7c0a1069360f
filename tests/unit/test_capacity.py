"""Fan-in through synapse chains, the core allocator, and the check_capacity pass."""

from __future__ import annotations

import dataclasses
import itertools

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy import nir_io
from neurodeploy.capacity import allocate, fan_in, synapse_layers
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.core.population import Population
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from neurodeploy.targets import LimitSpec, load_target
from tests.bitexact.netgen import NetBuilder
from tests.conftest import compile_ann, random_mlp
from tests.unit.test_nir_io import assert_graphs_equal


def if_meta(**values) -> Population:
    return Population(kind="if", theta=np.array(50), v_init=np.array(25),
                          theta_neg=np.array(0), exponent=0, **values)


def residual_graph(delay: bool = False) -> nir.NIRGraph:
    """input -> conv -> if0 -> pool -> conv -> if1 -> conv -> if2, plus a shortcut
    if0 -> pool -> 1x1 conv (-> delay) -> if2 (a merge); -> flatten -> linear -> readout.
    Weights in [0, 5] (zeros included) so no path cancels another."""
    builder = NetBuilder(np.random.default_rng(3), timesteps=6)
    builder.weights = lambda shape: builder.rng.integers(0, 6, shape).astype(np.float64)
    src = builder.input((1, 8, 8))
    if0 = builder.population("if0", [builder.conv("conv0", src, 2, (3, 3), (1, 1), (1, 1),
                                                  (1, 1), 1)], if_meta())
    pool = builder.pool("pool", if0, (2, 2), (2, 2), (0, 0))
    if1 = builder.population("if1", [builder.conv("conv1", pool, 3, (3, 3), (1, 1), (1, 1),
                                                  (1, 1), 1)], if_meta())
    main = builder.conv("conv2", if1, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    short = builder.conv("short", pool, 3, (1, 1), (1, 1), (0, 0), (1, 1), 1)
    if delay:
        short = builder.add("delay", nir.Delay(delay=np.ones(3 * 4 * 4)), [short],
                            builder.shapes[short])
    if2 = builder.population("if2", [main, short], if_meta())
    fc = builder.linear("fc", builder.flatten("flat", if2), 4)
    readout = builder.population("readout", [fc], Population(kind="readout", exponent=0))
    return builder.graph(readout, membrane_bits=24)


def nonzero_jacobian(fn, shape) -> np.ndarray:
    """(outputs, inputs) count of inputs each output depends on, by autograd."""
    jac = torch.autograd.functional.jacobian(fn, torch.zeros(shape, dtype=torch.float64),
                                             vectorize=True)
    return (jac.reshape(-1, int(np.prod(shape))) != 0).sum(1).numpy()


def test_fan_in_counts_inputs_through_pools_and_merges():
    graph = residual_graph()
    w = {n: torch.as_tensor(graph.nodes[n].weight) for n in ("conv0", "conv1", "conv2",
                                                            "short", "fc")}

    def pool(x):
        return F.avg_pool2d(x, 2, 2, divisor_override=1)

    counts = fan_in(graph)
    expected = {
        "if0": nonzero_jacobian(lambda x: F.conv2d(x[None], w["conv0"], padding=1), (1, 8, 8)),
        "if1": nonzero_jacobian(lambda x: F.conv2d(pool(x[None]), w["conv1"], padding=1),
                                (2, 8, 8)),
        "readout": nonzero_jacobian(lambda x: x.reshape(-1) @ w["fc"].T, (3, 4, 4))}
    for name, values in expected.items():
        np.testing.assert_array_equal(counts[name].reshape(-1), values, err_msg=name)
    # the merge: synapses from if1 (3x3 conv) plus synapses from if0 (pool, then 1x1 conv)
    main = nonzero_jacobian(lambda x: F.conv2d(x[None], w["conv2"], padding=1), (3, 4, 4))
    short = nonzero_jacobian(lambda x: F.conv2d(pool(x[None]), w["short"]), (2, 8, 8))
    np.testing.assert_array_equal(counts["if2"].reshape(-1), main + short)


def test_delays_are_transparent_and_each_synapse_layer_belongs_to_one_population():
    plain, delayed = residual_graph(), residual_graph(delay=True)
    for name, counts in fan_in(plain).items():
        np.testing.assert_array_equal(fan_in(delayed)[name], counts)
    layers = {name: sorted(nodes) for name, nodes in synapse_layers(delayed).items()}
    assert layers == {"if0": ["conv0"], "if1": ["conv1", "pool"], "if2": ["conv2", "short"],
                      "readout": ["fc"]}


def with_limits(**limits):
    target = load_target("loihi")
    values = dataclasses.asdict(target.limits) | limits
    return dataclasses.replace(target, limits=LimitSpec(**values))


def test_allocator_fills_cores_greedily_under_both_limits():
    graph = residual_graph()
    counts = fan_in(graph)
    target = with_limits(cores=0, neurons_per_core=20, synapses_per_core=200)
    allocation = allocate(graph, target)
    for layer in allocation.layers:
        flat = counts[layer.population].reshape(-1)
        expected, used, neurons = 1, 0, 0  # walk the neurons in order, by hand
        for f in flat:
            if neurons == 20 or used + f > 200:
                expected, used, neurons = expected + 1, 0, 0
            used, neurons = used + f, neurons + 1
        assert layer.cores == expected, layer.population
        assert layer.synapses == flat.sum() and layer.neurons == flat.size
    assert allocation.violations == ()
    used = allocation.utilisation()
    assert used["neurons"] == pytest.approx(
        sum(x.neurons for x in allocation.layers) / (allocation.cores_used * 20))
    assert set(used) == {"neurons", "synapses"}, "cores are not modelled here"


def test_nothing_is_counted_without_a_per_core_limit():
    allocation = allocate(residual_graph(), load_target("reference"))
    assert allocation.cores_used == 0 and allocation.utilisation() == {}
    assert allocation.violations == ()


def test_violations_name_the_population_and_the_limit():
    graph = residual_graph()
    widest = int(fan_in(graph)["if2"].max())
    tight = with_limits(cores=4, neurons_per_core=16, synapses_per_core=widest - 1,
                        fan_in_per_neuron=widest - 1)
    found = [(v.population, v.limit) for v in allocate(graph, tight).violations]
    assert ("if2", "fan_in_per_neuron") in found and ("if2", "synapses_per_core") in found
    cores = next(v for v in allocate(graph, tight).violations if v.limit == "cores")
    running = list(itertools.accumulate(x.cores for x in allocate(graph, tight).layers))
    crossing = next(i for i, total in enumerate(running) if total > 4)
    assert cores.population == list(fan_in(graph))[crossing]
    assert cores.value == running[-1] and cores.allowed == 4


def oversized_cnn() -> AnnGraph:
    """Two 3x3 convs on 128x128 images: 4 x 128 x 128 neurons (64 Loihi cores of 1,024), then
    5 x 128 x 128 (80 cores), a 16x16 pool and a Linear readout (5 neurons, each with
    81,920 synapses: one core each)."""
    rng = np.random.default_rng(0)

    def conv(name, src, cin, cout):
        return AnnNode(name, "conv2d", (src,), {
            "weight": rng.normal(0, 0.3, (cout, cin, 3, 3)).astype(np.float32),
            "bias": np.zeros(cout, np.float32), "stride": (1, 1), "padding": (1, 1),
            "dilation": (1, 1), "groups": 1})

    return AnnGraph([
        AnnNode("input", "input", (), {"shape": (1, 128, 128)}),
        conv("conv0", "input", 1, 4), AnnNode("relu0", "relu", ("conv0",)),
        conv("conv1", "relu0", 4, 5), AnnNode("relu1", "relu", ("conv1",)),
        AnnNode("pool", "avgpool2d", ("relu1",), {"kernel_size": (16, 16), "stride": (16, 16),
                                                  "padding": (0, 0)}),
        AnnNode("flat", "flatten", ("pool",)),
        AnnNode("fc", "linear", ("flat",), {
            "weight": rng.normal(0, 0.1, (5, 320)).astype(np.float32),
            "bias": np.zeros(5, np.float32)})], "fc")


def test_an_oversized_network_is_refused_naming_its_layer():
    """64 + 80 + 5 cores: the chip's 128 run out in relu1, the largest layer."""
    with pytest.raises(TargetLimitExceeded, match=r"^relu1: cores is 149, the target allows "
                                                  r"128\. The network needs 149 cores "
                                                  r"\(largest: relu1 80, relu0 64, readout 5\)"):
        compile_ann(oversized_cnn(), target="loihi")


def test_a_neuron_wider_than_a_core_is_refused():
    """Each neuron of the first layer reads all 16 inputs."""
    narrow = with_limits(synapses_per_core=15)
    with pytest.raises(TargetLimitExceeded, match="^relu0: synapses_per_core is 16, the target "
                                                  "allows 15. One neuron of this layer"):
        compile_ann(random_mlp(sizes=(16, 24, 5)), target=narrow)


def test_no_capacity_check_records_what_does_not_fit(tmp_path):
    from neurodeploy import api
    from tests.conftest import images

    ann = random_mlp()
    tiny = with_limits(cores=2, neurons_per_core=16)
    graph = api.compile(ann, target=tiny, calib=images(ann.input_shape),
                        capacity_check=False, method="p99.99").graph
    meta = get_graph_meta(graph)
    assert meta.cores_used == 2 + 1 + 1  # 24 neurons on 16-neuron cores, 12, and 5
    assert meta.capacity_violations == ["relu1: cores is 4, the target allows 2"]
    assert meta.utilisation["cores"] == 2.0
    assert [meta.cores[p] for p in ("relu0", "relu1", "readout")] == [2, 1, 1]
    nir_io.write(graph, tmp_path / "big.nir")
    assert_graphs_equal(graph, nir_io.read(tmp_path / "big.nir"))


def test_unmodelled_capacity_round_trips(tmp_path):
    graph = compile_ann(random_mlp(), target="reference")
    assert get_graph_meta(graph).utilisation == {}
    nir_io.write(graph, tmp_path / "ref.nir")
    assert_graphs_equal(graph, nir_io.read(tmp_path / "ref.nir"))

"""Multi-chip placement and the core memory model: the allocator across chips, kernels
stored once per core, and the report's chips and cross-chip spikes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurodeploy.backends import Record, get_backend
from neurodeploy.capacity import allocate, synapse_layers
from neurodeploy.core.encoding import quantize_inputs
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.report.build import build_report
from neurodeploy.report.reference import EquivalentReference
from neurodeploy.targets import MemorySpec, SystemSpec, load_target
from tests.conftest import compile_ann, images, random_mlp
from tests.unit.report.test_report import validate
from tests.unit.test_capacity import residual_graph


def system(chips: int, cores: int, neurons_per_core: int = 16,
           memory: MemorySpec | None = None):
    """Loihi with ``chips`` chips of ``cores`` cores; synapses counted only by ``memory``."""
    chip = load_target("loihi")
    limits = dataclasses.replace(chip.limits, cores=cores, neurons_per_core=neurons_per_core,
                                 synapses_per_core=0)
    return dataclasses.replace(chip, name="test-system", limits=limits,
                               system=SystemSpec(chips, "test"), memory=memory)


def test_a_network_that_fits_one_chip_stays_on_it():
    """random_mlp on 16-neuron cores: relu0 24 neurons (2 cores), relu1 12 (1), readout 5 (1)."""
    allocation = allocate(compile_ann(random_mlp(), target="reference"), system(2, 4))
    assert [layer.chip_blocks(4) for layer in allocation.layers] == [
        [(0, 2, 0, 24)], [(0, 1, 0, 12)], [(0, 1, 0, 5)]]
    assert allocation.violations == ()
    assert allocation.utilisation()["cores"] == 4 / 8


def test_cores_spill_onto_the_next_chip_in_order():
    allocation = allocate(compile_ann(random_mlp(), target="reference"), system(4, 1))
    assert [layer.chip_blocks(1) for layer in allocation.layers] == [
        [(0, 1, 0, 16), (1, 1, 16, 24)], [(2, 1, 0, 12)], [(3, 1, 0, 5)]]
    assert allocation.violations == ()


def test_only_a_system_too_small_is_refused_naming_the_limit():
    compile_ann(random_mlp(), target=system(4, 1))  # 4 cores on 4 chips of one core: fits
    with pytest.raises(TargetLimitExceeded, match=r"^readout: cores is 4, the target allows 3\. "
                                                  r"The network needs 4 cores, the system's 3 "
                                                  r"chips x 1 cores hold 3"):
        compile_ann(random_mlp(), target=system(3, 1))


def kernel_taps(graph, conv: str) -> np.ndarray:
    """Nonzero weights per output channel of a convolution."""
    weight = np.asarray(graph.nodes[conv].weight)
    return (weight != 0).reshape(weight.shape[0], -1).sum(axis=1)


def memory(shared: bool, bits: int = 10**9) -> MemorySpec:
    return MemorySpec(bits_per_core=bits, weight_bits=8, neuron_bits=72, shared_kernels=shared,
                      source="test")


def test_convolution_kernels_are_stored_once_per_core_and_dense_synapses_per_neuron():
    """One core per population: a shared kernel costs its taps once per channel, composed
    through the 2x2 sum pool (4 inputs per tap); a merge stores both kernels; the Linear
    readout and every population without sharing store each neuron's synapses."""
    graph = residual_graph()
    kernels = {"if0": kernel_taps(graph, "conv0"), "if1": 4 * kernel_taps(graph, "conv1"),
               "if2": kernel_taps(graph, "conv2") + 4 * kernel_taps(graph, "short")}
    shared = {x.population: x for x in allocate(graph, system(1, 8, 10**6, memory(True))).layers}
    dense = {x.population: x for x in allocate(graph, system(1, 8, 10**6, memory(False))).layers}
    for name, layer in shared.items():
        stored = kernels[name].sum() if name in kernels else dense[name].synapses
        assert layer.memory_bits == 72 * layer.neurons + 8 * stored, name
        assert dense[name].memory_bits == 72 * layer.neurons + 8 * dense[name].synapses, name
    assert shared["if2"].memory_bits < dense["if2"].memory_bits


def test_a_channel_split_over_cores_stores_its_kernel_on_each():
    """if0 has 2 channels of 64 neurons; 32-neuron cores split each channel in two."""
    graph = residual_graph()
    layer = allocate(graph, system(1, 16, 32, memory(True))).layers[0]
    assert layer.population == "if0" and layer.core_starts == (0, 32, 64, 96)
    assert layer.memory_bits == 72 * 128 + 8 * 2 * kernel_taps(graph, "conv0").sum()


def test_core_memory_binds_and_a_neuron_wider_than_a_core_is_refused():
    graph = residual_graph()
    kernel = int(kernel_taps(graph, "conv0")[0])
    room = 72 * 10 + 8 * kernel  # the first core of a channel holds its kernel and 10 neurons
    layer = allocate(graph, system(1, 64, 0, memory(True, room))).layers[0]
    assert layer.core_starts[:2] == (0, 10)
    tiny = system(1, 64, 0, memory(False, 71))
    found = [(v.population, v.limit) for v in allocate(graph, tiny).violations]
    assert ("if0", "memory.bits_per_core") in found


def test_the_report_gives_chips_and_the_spikes_crossing_them():
    """Two chips of two 16-neuron cores: relu0 fills chip 0, relu1 and the readout share
    chip 1. Every spike of relu0 that drives a relu1 neuron crosses once; relu1's stay."""
    target = system(2, 2)
    graph = compile_ann(random_mlp(), target=target)
    x = images((1, 4, 4), 12)
    data = build_report(graph, x, np.zeros(len(x), np.int64), target=target,
                        reference=EquivalentReference(graph), timesteps=[4],
                        show_progress=False).data
    validate(data)
    layers = {layer["population"]: layer for layer in data["layers"]}
    assert layers["relu0"]["chips"] == [{"chip": 0, "cores": 2}]
    assert layers["relu1"]["chips"] == layers["readout"]["chips"] == [{"chip": 1, "cores": 1}]
    assert data["capacity"]["chips"] == 2 and data["capacity"]["chips_used"] == 2
    trace = get_backend("reference").run(graph, quantize_inputs(graph, x), 4,
                                         record=Record.SPIKES)
    events = (trace.spikes["relu0"] != 0).sum(axis=(0, 1)).reshape(-1)
    weight = np.asarray(graph.nodes[synapse_layers(graph)["relu1"][0]].weight)
    drives = (weight != 0).any(axis=0)
    expected = float((events * drives).sum()) / len(x)
    assert expected > 0
    assert layers["relu0"]["cross_chip_spikes"] == pytest.approx(expected)
    assert layers["relu1"]["cross_chip_spikes"] == 0 == layers["readout"]["cross_chip_spikes"]
    assert data["capacity"]["cross_chip_spikes"] == pytest.approx(expected)

"""Residual merges, global pooling and delay alignment, from the ANN graph to the integer SNN."""

from __future__ import annotations

import copy
import dataclasses

import nir
import numpy as np
import pytest
import torch

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.graph import hop_offsets, predecessors
from neurodeploy.core.meta import get_graph_meta, population_meta, set_graph_meta
from neurodeploy.errors import MetadataError, UnsupportedLayer
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from neurodeploy.passes import PassContext
from neurodeploy.passes.align_delays import align_delays
from neurodeploy.targets import load_target
from tests.conftest import compile_ann, conv_node, images, random_resnet


@pytest.fixture(scope="module")
def resnet_graphs() -> dict[str, nir.NIRGraph]:
    return {target: compile_ann(random_resnet(), target) for target in ("loihi2", "reference")}


def test_a_merge_is_one_population_with_two_synapse_layers(resnet_graphs):
    graph = resnet_graphs["reference"]
    preds = predecessors(graph)
    assert sorted(preds["relu3"]) == ["add1.shortcut1", "conv3"]
    assert sorted(preds["relu5"]) == ["conv5", "proj"]
    identity = graph.nodes["add1.shortcut1"]
    assert isinstance(identity, nir.Conv2d) and identity.groups == 4
    assert predecessors(graph)["add1.shortcut1"] == ["relu1"]


def test_merged_bias_is_the_sum_of_both_layers():
    ann = random_resnet()
    from neurodeploy.convert import to_snn

    graph = to_snn(ann, {n.name: 1.0 for n in ann.nodes if n.op == "relu"}, ConvertOptions())
    expected = ann.node("conv5").params["bias"] + ann.node("proj").params["bias"]
    np.testing.assert_allclose(population_meta(graph, "relu5").bias, expected, rtol=1e-6)


def test_align_delays_delays_the_shortcuts_on_a_pipelined_target(resnet_graphs):
    graph = resnet_graphs["loihi2"]
    delays = {n: node for n, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    assert sorted(delays) == ["add1.shortcut1.delay", "proj.delay"]
    assert predecessors(graph)["proj"] == ["proj.delay"]
    assert predecessors(graph)["proj.delay"] == ["relu3"]
    assert np.all(delays["proj.delay"].delay == 1)
    assert delays["proj.delay"].delay.shape == (4, 8, 8)
    offsets = hop_offsets(graph, 1)
    assert offsets["relu3"] == 3 and offsets["relu5"] == 5
    assert get_graph_meta(graph).notes["align_delays"]["inserted_steps"] == {
        "add1.shortcut1": 1, "proj": 1}


def test_no_delays_without_pipeline_delay(resnet_graphs):
    graph = resnet_graphs["reference"]
    assert not any(isinstance(node, nir.Delay) for node in graph.nodes.values())
    with pytest.raises(MetadataError, match="^relu3: paths into this node arrive at different"):
        hop_offsets(graph, 1)


def test_align_delays_is_idempotent(resnet_graphs):
    graph = resnet_graphs["loihi2"]
    again = align_delays(graph, PassContext(load_target("loihi2")))
    assert sorted(again.nodes) == sorted(graph.nodes)


def test_delays_do_not_change_the_reference_outputs(resnet_graphs):
    """The same integers with the delays, and without them on a target without pipeline
    delay: the reference runs each population in its own window, so a delay passes through."""
    aligned = resnet_graphs["loihi2"]
    preds = predecessors(aligned)
    kept = {n: node for n, node in aligned.nodes.items() if not isinstance(node, nir.Delay)}
    edges = [(preds[src][0] if src not in kept else src, dst)
             for src, dst in aligned.edges if dst in kept]
    ideal = nir.NIRGraph(kept, edges, metadata=copy.deepcopy(aligned.metadata))
    set_graph_meta(ideal, dataclasses.replace(get_graph_meta(ideal), hop_delay=0))
    x = api.quantize_inputs(aligned, images((1, 8, 8), 16, seed=3))
    with_delays = api.simulate(aligned, x, 6)
    without = api.simulate(ideal, x, 6)
    np.testing.assert_array_equal(with_delays.output_steps, without.output_steps)
    assert with_delays.offsets["relu5"] == 5 and without.offsets["relu5"] == 0


def test_the_snn_approximates_the_resnet():
    ann = random_resnet()
    x = images(ann.input_shape, 128, seed=5)
    expected = ann.run(torch.as_tensor(x))["output"].numpy()
    graph = compile_ann(ann, "loihi2", timesteps=32, method="max")
    logits = api.simulate(graph, x, 32).logits
    assert np.abs(logits - expected).max() < 0.15 * np.abs(expected).max()
    assert (logits.argmax(1) == expected.argmax(1)).mean() > 0.9


def _ann(*nodes: AnnNode, output: str) -> AnnGraph:
    return AnnGraph([AnnNode("input", "input", (), {"shape": (2, 6, 6)}), *nodes], output)


def _conv(name: str, src: str, cout: int = 2) -> AnnNode:
    return conv_node(name, src, 2, cout, np.random.default_rng(0), std=0.3, bias=False)


def _fc(src: str, n_in: int) -> AnnNode:
    return AnnNode("fc", "linear", (src,), {"weight": np.ones((3, n_in), np.float32),
                                            "bias": None})


@pytest.mark.parametrize("ann, message", [
    (_ann(_conv("c1", "input"), AnnNode("r1", "relu", ("c1",)), _conv("c2", "r1"),
          AnnNode("sum", "add", ("c2", "r1")), AnnNode("flat", "flatten", ("sum",)),
          _fc("flat", 72), output="fc"),
     "^sum: a residual add must be followed by a ReLU and nothing else"),
    (_ann(_conv("c1", "input"), AnnNode("r1", "relu", ("c1",)), _conv("c2", "r1"),
          AnnNode("sum", "add", ("c2", "c1")), AnnNode("r2", "relu", ("sum",)),
          AnnNode("flat", "flatten", ("r2",)), _fc("flat", 72), output="fc"),
     r"^sum.shortcut1: 'add' follows 'conv2d' \(c1\) without an activation"),
    (_ann(_conv("c1", "input"), AnnNode("twice", "add", ("c1", "c1")),
          AnnNode("r1", "relu", ("twice",)), AnnNode("flat", "flatten", ("r1",)),
          _fc("flat", 72), output="fc"),
     "^twice: a residual add of a value to itself"),  # an internal KeyError before
    (_ann(_conv("c1", "input", 2), AnnNode("r1", "relu", ("c1",)),
          AnnNode("gap", "adaptive_avgpool2d", ("r1",), {"output_size": (4, 4)}),
          AnnNode("flat", "flatten", ("gap",)), _fc("flat", 32), output="fc"),
     "^gap: adaptive average pooling from 6x6 to 4x4 has windows of different sizes"),
])
def test_unmappable_constructs_name_the_node(ann, message):
    with pytest.raises(UnsupportedLayer, match=message):
        compile_ann(ann, "loihi2")

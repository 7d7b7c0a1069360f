"""torch.cat along channels: the reading layer is split per part, the parts merge in one
population, and align_delays evens out their depths (Lava: tests/bitexact/test_lava_models.py)."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
import torch

from neurodeploy import api
from neurodeploy.core.graph import predecessors
from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend import load_model
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from tests.conftest import compile_ann, conv_node, images
from tests.unit.frontend.test_frontend import CatNet, make


def cat_model(folder) -> AnnGraph:
    path = folder / "cat.pt"
    torch.jit.save(torch.jit.script(make(CatNet)), path)
    return load_model(path, input_shape=CatNet.input_shape)


@pytest.fixture(scope="module")
def cat_ann(tmp_path_factory) -> AnnGraph:
    return cat_model(tmp_path_factory.mktemp("cat"))


@pytest.fixture(scope="module")
def cat_graph(cat_ann) -> nir.NIRGraph:
    return compile_ann(cat_ann, "loihi2", timesteps=32, method="max")


def test_the_reading_layers_are_split_per_part(cat_graph):
    preds = predecessors(cat_graph)
    assert preds["mix.part0"] == ["mix.part0.delay"] and preds["mix.part1"] == ["relu_2"]
    assert preds["mix.part0.delay"] == ["relu"]  # branch a is one hop shallower than b
    assert cat_graph.nodes["mix.part0"].weight.shape[1] == 3
    assert cat_graph.nodes["mix.part1"].weight.shape[1] == 2
    assert sorted(preds["relu_3"]) == ["mix.part0", "mix.part1"]
    assert sorted(preds["readout"]) == ["fc.part0", "fc.part1"]
    assert cat_graph.nodes["fc.part0"].weight.shape == (3, 4 * 36)
    assert preds["fc.part1"] == ["fc.part1.delay"]  # a reaches the readout 2 hops before y
    assert np.all(cat_graph.nodes["fc.part1.delay"].delay == 2)


def test_channels_counted_from_the_end_are_channels(cat_ann, cat_graph):
    """torch.cat(dim=-3) of NCHW maps joins channels as dim=1 does; it was refused."""
    nodes = [dataclasses.replace(n, params={**n.params, "dim": -3}) if n.op == "cat" else n
             for n in cat_ann.nodes]
    assert any(n.op == "cat" for n in nodes)
    from_end = compile_ann(AnnGraph(nodes, cat_ann.output), "loihi2", timesteps=32,
                           method="max")
    assert from_end.nodes.keys() == cat_graph.nodes.keys()
    for name, node in cat_graph.nodes.items():
        if hasattr(node, "weight"):
            np.testing.assert_array_equal(from_end.nodes[name].weight, node.weight)


def test_the_snn_approximates_the_concatenating_model(cat_ann, cat_graph):
    x = images(CatNet.input_shape, 128, seed=4)
    expected = cat_ann.run(torch.as_tensor(x))["output"].numpy()
    logits = api.simulate(cat_graph, x, 32).logits
    assert np.abs(logits - expected).max() < 0.15 * np.abs(expected).max()


def _conv(name: str, src: str, cin: int, cout: int) -> AnnNode:
    return conv_node(name, src, cin, cout, np.random.default_rng(0), std=0.3, bias=False)


@pytest.mark.parametrize("reader, dim, message", [
    (AnnNode("pool", "avgpool2d", ("cat",), {"kernel_size": (2, 2), "stride": (2, 2),
                                             "padding": (0, 0)}), 1,
     r"^cat: the concatenation feeds 'pool' \(avgpool2d\), which cannot be split"),
    (AnnNode("pool", "avgpool2d", ("cat",), {"kernel_size": (1, 1), "stride": (1, 1),
                                             "padding": (0, 0)}), 2,
     "^cat: concatenation along dimension 2"),
])
def test_unsplittable_concatenations_name_the_node(reader, dim, message):
    nodes = [AnnNode("input", "input", (), {"shape": (1, 4, 4)}), _conv("c1", "input", 1, 2),
             AnnNode("r1", "relu", ("c1",)), _conv("c2", "input", 1, 2),
             AnnNode("r2", "relu", ("c2",)), AnnNode("cat", "cat", ("r1", "r2"), {"dim": dim}),
             reader, AnnNode("flat", "flatten", ("pool",))]
    size = int(np.prod(AnnGraph([*nodes], "flat").run(torch.zeros(1, 1, 4, 4))["output"].shape))
    nodes.append(AnnNode("fc", "linear", ("flat",), {"weight": np.ones((2, size), np.float32),
                                                     "bias": None}))
    with pytest.raises(UnsupportedLayer, match=message):
        compile_ann(AnnGraph(nodes, "fc"), "loihi2")

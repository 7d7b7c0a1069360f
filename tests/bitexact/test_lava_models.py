"""Compiled residual and concatenating networks (delays on their shorter paths) run
bit-exact on Lava."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy import api
from neurodeploy.backends.lava.build import CONV_GEOMETRY, _regroup
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from tests.bitexact.checks import assert_identical, run_both
from tests.conftest import compile_ann, conv_node, images, random_resnet
from tests.unit.convert.test_concat import cat_model


@pytest.mark.lava
@pytest.mark.parametrize("build", ["resnet", "cat"])
def test_compiled_merges_match_reference(reference_backend, lava_backend, tmp_path, build):
    ann = random_resnet() if build == "resnet" else cat_model(tmp_path)
    graph = compile_ann(ann, "loihi2", timesteps=5)
    inputs = api.quantize_inputs(graph, images(ann.input_shape, 2, seed=6))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 5)
    assert_identical(graph, expected, actual)


def wide_pool_cnn(channels: int) -> AnnGraph:
    """conv (``channels`` wide) -> relu -> 2x2 average pool -> Linear: a pool wider than
    Lava's int8 Conv ``groups``."""
    rng = np.random.default_rng(3)
    pool = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    nodes = [AnnNode("input", "input", (), {"shape": (1, 4, 4)}),
             conv_node("conv", "input", 1, channels, rng), AnnNode("relu", "relu", ("conv",)),
             AnnNode("pool", "avgpool2d", ("relu",), pool), AnnNode("flat", "flatten", ("pool",)),
             AnnNode("fc", "linear", ("flat",), {
                 "weight": rng.normal(0, 0.1, (3, channels * 4)).astype(np.float32),
                 "bias": None})]
    return AnnGraph(nodes, "fc")


@pytest.mark.lava
@pytest.mark.parametrize("channels", [128, 131])  # grouped in 64 pairs; prime: one group
def test_pools_wider_than_int8_groups_match_reference(reference_backend, lava_backend,
                                                        channels):
    ann = wide_pool_cnn(channels)
    graph = compile_ann(ann, "loihi2", timesteps=3)
    inputs = api.quantize_inputs(graph, images(ann.input_shape, 2, seed=4))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 3)
    assert_identical(graph, expected, actual)


@pytest.mark.slow
@pytest.mark.lava
def test_deep_shapes_match_reference_on_one_sample(reference_backend, lava_backend, deep_shape):
    """VGG-11 / ResNet-18 on 3x32x32 over several Loihi 2 chips: every spike and membrane of
    one sample (benchmarks/lava_scale.py times it)."""
    graph = deep_shape.deployment.graph
    inputs = api.quantize_inputs(graph, deep_shape.images[:1])
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 2)
    assert_identical(graph, expected, actual)


@pytest.mark.parametrize(("groups", "per_group"), [(128, 1), (256, 2), (131, 1), (6, 3)])
def test_regrouped_convolution_is_the_same_convolution(groups, per_group):
    """Lava keeps ``groups`` in int8: more groups merge into at most 127, exactly."""
    rng = np.random.default_rng(groups)
    kernel = rng.integers(-5, 6, (groups * 2, 3, 3, per_group))  # (Cout, kw, kh, Cin/groups)
    x = torch.as_tensor(rng.integers(-3, 4, (1, groups * per_group, 5, 5)), dtype=torch.float64)
    wide, fewer = _regroup(kernel, groups)
    assert fewer <= CONV_GEOMETRY.max and groups % fewer == 0

    def conv(k: np.ndarray, g: int) -> torch.Tensor:  # Lava's (Cout, kw, kh, Cin/g) kernel
        weight = torch.as_tensor(k.transpose(0, 3, 2, 1).copy(), dtype=torch.float64)
        return torch.nn.functional.conv2d(x, weight, groups=g)

    assert torch.equal(conv(wide, fewer), conv(kernel, groups))

"""Compiled residual and concatenating networks (delays on their shorter paths) run
bit-exact on Lava."""

from __future__ import annotations

import pytest

from neurodeploy import api
from tests.bitexact.checks import assert_identical, run_both
from tests.conftest import compile_ann, images, random_resnet
from tests.unit.convert.test_concat import cat_model


@pytest.mark.lava
@pytest.mark.parametrize("build", ["resnet", "cat"])
def test_compiled_merges_match_reference(reference_backend, lava_backend, tmp_path, build):
    ann = random_resnet() if build == "resnet" else cat_model(tmp_path)
    graph = compile_ann(ann, "loihi2", timesteps=5)
    inputs = api.quantize_inputs(graph, images(ann.input_shape, 2, seed=6))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 5)
    assert_identical(graph, expected, actual)

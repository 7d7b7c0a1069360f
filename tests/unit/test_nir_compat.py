"""nir_compat: NIR's Conv2d types are right for grouped and non-square kernels, and the patch
is still needed (this test fails once nir computes them itself: then drop nir_compat)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neurodeploy  # noqa: F401  (installs the patch)
from neurodeploy.nir_compat import original_conv2d_types


def conv(kernel: tuple[int, int], groups: int) -> nir.Conv2d:
    weight = np.ones((4, 4 // groups, *kernel))
    return nir.Conv2d(input_shape=(7, 9), weight=weight, stride=(2, 1), padding=(1, 0),
                      dilation=(1, 2), groups=groups, bias=np.zeros(4))


@pytest.mark.parametrize("kernel, groups", [((3, 3), 1), ((3, 2), 1), ((3, 3), 4), ((1, 3), 2)])
def test_conv2d_types_match_torch(kernel, groups):
    node = conv(kernel, groups)
    x = torch.zeros(1, 4, 7, 9)
    y = F.conv2d(x, torch.as_tensor(node.weight, dtype=torch.float32), None, (2, 1), (1, 0),
                 (1, 2), groups)
    np.testing.assert_array_equal(node.input_type["input"], (4, 7, 9))
    np.testing.assert_array_equal(node.output_type["output"], y.shape[1:])


def test_grouped_conv_graph_round_trips(tmp_path):
    node = conv((3, 2), 4)
    graph = nir.NIRGraph({"input": nir.Input({"input": np.array([4, 7, 9])}), "conv": node,
                          "output": nir.Output({"output": node.output_type["output"]})},
                         [("input", "conv"), ("conv", "output")])
    nir.write(tmp_path / "g.nir", graph)
    back = nir.read(tmp_path / "g.nir").nodes["conv"]
    assert back.groups == 4
    np.testing.assert_array_equal(back.output_type["output"], node.output_type["output"])


def test_the_patch_is_still_needed():
    wrong_in, wrong_out = original_conv2d_types(conv((3, 2), 4))
    assert wrong_in[0] == 1 and tuple(wrong_out) != (4, 4, 7)

"""Passes, the pipeline wrapper and method stages are pure: the graph they are given is
unchanged afterwards, nodes, arrays and graph metadata alike (design.md §1; the contracts in
passes/base.py and methods/base.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.convert import ConvertOptions
from neurodeploy.methods import STAGES, MethodContext, get_method
from neurodeploy.passes import quantize
from neurodeploy.targets import load_target
from tests.conftest import images, random_mlp
from tests.unit.methods.test_trained import clip_model
from tests.unit.passes.test_passes import assert_same, float_graph, snapshot


def test_quantize_leaves_its_input_untouched():
    graph = float_graph()
    before = snapshot(graph)
    out = quantize(graph, load_target("loihi2"))
    assert_same(before, snapshot(graph))
    assert out is not graph


def ann_snapshot(ctx: MethodContext) -> dict:
    arrays = {f"{node.name}.{key}": np.array(value, copy=True)
              for node in ctx.ann.nodes for key, value in node.params.items()
              if isinstance(value, np.ndarray | torch.Tensor)}
    return arrays | {"calib": ctx.calib.copy()}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_registered_stage_leaves_its_input_untouched(name, tmp_path):
    """A builder is given the ANN and calibration images, a refiner also a built graph (a
    learned-clip one for the stages that read clips learned in training)."""
    stage = STAGES[name]()
    learned = name in ("qcfs", "ecl", "dual_phase")
    ann = clip_model(tmp_path, "qcfs" if name == "qcfs" else "ecl") if learned else random_mlp()
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, 32), target=load_target("loihi2"),
                        options=ConvertOptions(timesteps=2), show_progress=False)
    graph = None if stage.builds else get_method("p99.99").stages[0](None, ctx)
    before = ann_snapshot(ctx), None if graph is None else snapshot(graph)
    out = stage(graph, ctx)
    after = ann_snapshot(ctx)
    assert before[0].keys() == after.keys()
    for key, value in before[0].items():
        np.testing.assert_array_equal(value, after[key], err_msg=key)
    if graph is not None:
        assert_same(before[1], snapshot(graph))
        assert out is not graph

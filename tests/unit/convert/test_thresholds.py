"""Threshold statistics from calibration data: per layer and per channel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.convert import activation_thresholds, parse_statistic
from neurodeploy.errors import InputError
from tests.conftest import images, random_cnn


def relu_outputs(ann, calib) -> dict[str, np.ndarray]:
    relus = {n.name for n in ann.nodes if n.op == "relu"}
    acts = ann.run(torch.as_tensor(calib), keep=relus)
    return {name: acts[name].numpy() for name in relus}


def test_layer_statistic_is_the_percentile_of_all_values():
    ann, calib = random_cnn(), images((1, 8, 8), n=100)
    thresholds = activation_thresholds(ann, calib, "p99", per_channel=False)
    for name, values in relu_outputs(ann, calib).items():
        assert thresholds[name] == pytest.approx(np.percentile(values, 99))


def test_channel_statistic_is_taken_per_output_channel():
    ann, calib = random_cnn(), images((1, 8, 8), n=100)
    thresholds = activation_thresholds(ann, calib, "max", per_channel=True)
    for name, values in relu_outputs(ann, calib).items():
        per_channel = values.max(axis=(0, 2, 3))
        layer = values.max()
        expected = np.where(per_channel > 0, per_channel, layer)
        np.testing.assert_allclose(thresholds[name], expected, rtol=1e-6)


def test_a_silent_channel_gets_the_layer_threshold():
    ann = random_cnn()
    conv = ann.node("conv1")
    conv.params["bias"][0] = -1e6  # channel 0 can never be active
    thresholds = activation_thresholds(ann, images((1, 8, 8)), "p99.99", per_channel=True)
    layer = activation_thresholds(ann, images((1, 8, 8)), "p99.99", per_channel=False)
    assert thresholds["relu1"][0] == pytest.approx(layer["relu1"])
    assert (thresholds["relu1"] > 0).all()


@pytest.mark.parametrize("name", ["p100.5", "pmax", "99.9", "median", "", "p0", "p00.0"])
def test_unknown_statistics_are_refused(name):
    with pytest.raises(InputError, match="statistic"):
        parse_statistic(name)

"""The summary `neurodeploy compile` prints."""

from __future__ import annotations

import pytest

from neurodeploy import api
from neurodeploy.targets import TARGETS_DIR
from tests.conftest import images, random_mlp


@pytest.mark.parametrize("options, line", [
    (api.ConvertOptions(), None),
    (api.ConvertOptions(max_burst=3), "spikes: bursts up to 3 spikes a step"),
    (api.ConvertOptions(dual=True), "spikes: dual threshold"),
    (api.ConvertOptions(max_burst=2, dual=True),
     "spikes: bursts up to 2 spikes a step, dual threshold"),
])
def test_the_text_names_bursts_and_the_dual_threshold_when_used(tmp_path, options, line):
    ann = random_mlp()
    result = api.compile(ann, method="p99.99", calib=images(ann.input_shape), options=options,
                         show_progress=False)
    text = result.summary(tmp_path / "net.nir")["text"].splitlines()
    assert [t for t in text if t.startswith("spikes:")] == ([line] if line else [])


def test_weights_a_narrow_mantissa_wrecks_are_warned_of(tmp_path):
    """A 2-bit mantissa left 57 of 8,051 synapses and 10% accuracy with exit 0 and no word."""
    shipped = (TARGETS_DIR / "loihi2.toml").read_text()
    narrow = tmp_path / "narrow.toml"
    narrow.write_text(shipped.replace('name = "loihi2"', 'name = "narrow"').replace(
        "mantissa_bits = 8", "mantissa_bits = 2", 1))
    ann = random_mlp()
    warnings = {}
    for target in ("loihi2", "loihi", narrow):
        result = api.compile(ann, target=target, method="p99.99", calib=images(ann.input_shape),
                             show_progress=False)
        warnings[str(target)] = result.summary(tmp_path / "net.nir")["warnings"]
    assert warnings["loihi2"] == warnings["loihi"] == []
    assert warnings[str(narrow)] and all("narrow's weight mantissa changes its weights by" in w
                                         for w in warnings[str(narrow)])


def test_copies_of_one_calibration_image_are_warned_of(tmp_path):
    """64 copies of one image compiled without a word, every threshold fitted to it."""
    ann = random_mlp()
    varied = images(ann.input_shape, 8)
    copies = varied[[3] * 8]
    said = {}
    for name, calib in (("varied", varied), ("copies", copies), ("one", varied[:1])):
        result = api.compile(ann, method="p99.99", calib=calib, show_progress=False)
        said[name] = result.summary(tmp_path / "net.nir")["warnings"]
    assert said["varied"] == said["one"] == []
    assert said["copies"] == ["the 8 calibration images are all the same image: every "
                              "threshold fits that one input (calibrate on samples of the "
                              "data the network will run on)"]

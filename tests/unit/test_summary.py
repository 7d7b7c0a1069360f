"""The summary `neurodeploy compile` prints."""

from __future__ import annotations

import pytest

from neurodeploy import api
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

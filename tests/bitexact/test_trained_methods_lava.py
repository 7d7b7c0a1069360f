"""Every trained method compiles for loihi2 and runs bit-exact on Lava (a small digits CNN
with learned clips: per-neuron v_init from dual-phase, negative spikes from ECL)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.core.meta import population_meta
from neurodeploy.frontend import load_model
from tests.bitexact.checks import assert_identical, run_both
from tests.models import digits_batch, save_torchscript
from tests.unit.methods.test_trained import _clip_cnn

TIMESTEPS = 4


@pytest.fixture(scope="module")
def clip_ann(tmp_path_factory):
    path = save_torchscript(_clip_cnn(), tmp_path_factory.mktemp("clip") / "cnn.pt")
    return load_model(path, input_shape=(1, 8, 8))


@pytest.mark.lava
@pytest.mark.parametrize("method", ["qcfs", "ecl", "dual_phase"])
def test_trained_method_is_bit_exact_on_lava(method, clip_ann, reference_backend,
                                             lava_backend):
    graph = api.compile(clip_ann, target="loihi2", method=method, calib="digits",
                        calib_samples=64, timesteps=TIMESTEPS, show_progress=False).graph
    inputs = api.quantize_inputs(graph, digits_batch(6))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, TIMESTEPS)
    assert_identical(graph, expected, actual)
    assert np.abs(expected.outputs).sum() > 0
    if method == "ecl":
        assert any((s < 0).any() for s in expected.spikes.values())
    if method == "dual_phase":
        assert any(np.ndim(population_meta(graph, p).v_init) == 3 for p in expected.spikes)

"""Networks compiled by the calibration methods run bit-exact on Lava: per-neuron v_init
(calibrate), per-step bias tables (ftbc) and graded burst spikes (adafire)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import population_meta
from tests.bitexact.checks import assert_identical, run_both
from tests.conftest import images, random_mlp

T = 4


@pytest.mark.parametrize("method", ["calibrate+ftbc", "adafire+ftbc"])
def test_calibrated_network_is_bit_exact_on_lava(method, reference_backend, lava_backend):
    ann = random_mlp(seed=4)
    graph = api.compile(ann, target="loihi2", method=method, calib=images(ann.input_shape, 96),
                        timesteps=T, show_progress=False).graph
    metas = [population_meta(graph, p) for p in populations(graph)[:-1]]
    assert all(m.bias_table is not None and np.abs(m.bias_table).max() > 0 for m in metas)
    if method.startswith("adafire"):
        assert max(m.max_burst for m in metas) > 1
    inputs = api.quantize_inputs(graph, images(ann.input_shape, 3, seed=9))
    assert_identical(graph, *run_both(reference_backend, lava_backend, graph, inputs, T))


def test_both_backends_refuse_a_window_past_the_bias_tables_in_the_same_words(
        reference_backend, lava_backend):
    """Lava said only "2: bias table has 4 rows for 5 timesteps", without the way out."""
    from neurodeploy.errors import InputError

    ann = random_mlp(seed=4)
    graph = api.compile(ann, method="p99.99+ftbc", calib=images(ann.input_shape, 32),
                        timesteps=T, show_progress=False).graph
    inputs = api.quantize_inputs(graph, images(ann.input_shape, 1, seed=9))
    said = []
    for backend in (reference_backend, lava_backend):
        with pytest.raises(InputError) as refused:
            backend.run(graph, inputs, T + 1)
        said.append(str(refused.value))
    assert said[0] == said[1] == (f"the network has per-step bias tables (FTBC) for {T} steps; "
                                  f"it cannot run {T + 1}. Use windows of at most {T} steps, "
                                  "or compile for more")

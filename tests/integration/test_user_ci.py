"""A user's own pytest file with `assert_bit_exact`, run by pytest in a fresh process, against
Lava: it passes on the network and fails, naming the population, where the backend runs it
with a corrupted threshold (as a miscompiled mapping would)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neurodeploy import api
from tests.models import trained_digits_mlp

USER_TEST = '''
import numpy as np

from neurodeploy.backends import get_backend
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.testing import assert_bit_exact

NETWORK = {network!r}
IMAGES = np.load({images!r})


class CorruptedThreshold:
    """Lava, running population net.2 with every threshold one too high."""

    name = "lava"

    def run(self, graph, *args, **kwargs):
        record = population_meta(graph, "net.2")
        corrupted = with_record(graph, "net.2", record.replace(theta=record.theta + 1))
        return get_backend("lava").run(corrupted, *args, **kwargs)


def test_the_deployed_network_is_bit_exact():
    assert_bit_exact(NETWORK, IMAGES)


def test_a_corrupted_threshold_is_caught():
    assert_bit_exact(NETWORK, IMAGES, backend=CorruptedThreshold())
'''


@pytest.mark.lava
def test_a_users_pytest_file_passes_and_fails_where_it_should(tmp_path):
    network, images = tmp_path / "model.nir", tmp_path / "images.npy"
    api.compile(trained_digits_mlp(), calib="digits", timesteps=4,
                show_progress=False, method="p99.99").save(network)
    np.save(images, api.dataset("digits", limit=3)[0])
    user_test = tmp_path / "test_deployment.py"
    user_test.write_text(textwrap.dedent(USER_TEST.format(network=str(network),
                                                          images=str(images))))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(user_test)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=600, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "FAILED test_deployment.py::test_a_corrupted_threshold_is_caught" in result.stdout
    assert "BitExactMismatch: lava is not bit-exact with the reference simulator" \
        in result.stdout
    assert "first divergence in population 'net.2'" in result.stdout

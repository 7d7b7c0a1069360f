"""neurodeploy.testing: the assertion names the first divergence; the JUnit report parses.

The backend under test here is the reference simulator running a copy of the network with one
population's thresholds off by one, as a miscompiled backend would run it (fast, no Lava);
tests/integration/test_user_ci.py runs a user's pytest file against Lava.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import nir
import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.backends.base import Trace
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.errors import BitExactMismatch, NeurodeployError
from neurodeploy.testing import assert_bit_exact, write_junit


class OffByOne:
    """The reference simulator with every threshold of ``population`` raised by one."""

    name = "offbyone"

    def __init__(self, population: str) -> None:
        self.population = population

    def run(self, graph: nir.NIRGraph, *args, **kwargs) -> Trace:
        record = population_meta(graph, self.population)
        corrupted = with_record(graph, self.population, record.replace(theta=record.theta + 1))
        return get_backend("reference").run(corrupted, *args, **kwargs)


@pytest.fixture(scope="module")
def inputs(cnn_graph) -> np.ndarray:
    return api.Deployment(cnn_graph, target=None).random_inputs(4, seed=2)


def test_a_backend_that_agrees_passes(cnn_graph, inputs):
    result = assert_bit_exact(cnn_graph, inputs, backend="reference")
    assert result.bit_exact and result.comparison.samples == 4


def test_a_mismatch_names_population_neuron_step_and_values(cnn_graph, inputs, tmp_path):
    path = tmp_path / "cnn.nir"
    api.save(cnn_graph, path)
    with pytest.raises(AssertionError) as info:
        assert_bit_exact(path, inputs, backend=OffByOne("relu2"), trace_dir=tmp_path / "traces")
    error = info.value
    assert isinstance(error, BitExactMismatch) and isinstance(error, NeurodeployError)
    d = error.divergence
    lines = str(error).splitlines()
    assert lines[0] == "offbyone is not bit-exact with the reference simulator"
    assert lines[1] == (f"first divergence in population 'relu2', {d.quantity} of neuron "
                        f"({','.join(map(str, d.neuron))}) at timestep {d.timestep} of sample "
                        f"{d.sample}: {d.expected} (reference) != {d.actual} (offbyone)")
    assert d.population == "relu2" and d.expected != d.actual
    differing = [str(k) for k in range(4) if _sample_differs(cnn_graph, inputs[k:k + 1])]
    assert lines[2] == f"samples that differ: {len(differing)} of 4 ({', '.join(differing)})"
    saved = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert saved == ["cnn.offbyone.npz", "cnn.reference.npz"]
    assert lines[3] == f"traces: {tmp_path / 'traces/cnn.reference.npz'}, " \
                       f"{tmp_path / 'traces/cnn.offbyone.npz'}"


def test_the_junit_report_has_one_case_per_sample(cnn_graph, inputs, tmp_path):
    deployment = api.Deployment(cnn_graph, target=None)
    result = deployment.verify(inputs, backend=OffByOne("relu2"))
    write_junit(result, tmp_path / "verify.xml", "cnn.nir")
    suite = ET.parse(tmp_path / "verify.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    failed = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in cases] == [f"sample {k}" for k in range(4)]
    assert suite.get("tests") == "4" and suite.get("failures") == str(len(failed)) != "0"
    for case in failed:
        message = case.find("failure").get("message")
        assert message.startswith("first divergence in population 'relu2'")
        assert f"of sample {case.get('name').split()[1]}:" in message
    assert list(tmp_path.iterdir()) == [tmp_path / "verify.xml"]  # no temporary file left


def _sample_differs(graph, x) -> bool:
    """Run alone by both: does any spike, membrane or output differ?"""
    a, b = (backend.run(graph, x, 4, record=Record.ALL)
            for backend in (get_backend("reference"), OffByOne("relu2")))
    return not np.array_equal(a.outputs, b.outputs) or any(
        not np.array_equal(getattr(a, kind)[p], getattr(b, kind)[p])
        for kind in ("spikes", "membranes") for p in a.spikes)

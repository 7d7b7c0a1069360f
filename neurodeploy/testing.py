"""Bit-exactness checks for a user's own CI: a pytest-ready assertion and a JUnit XML report.

    from neurodeploy.testing import assert_bit_exact

    def test_the_deployed_network_is_bit_exact():
        images, _ = neurodeploy.dataset("digits", limit=8)
        assert_bit_exact("model.nir", images)  # Lava == reference, every spike and membrane

On a mismatch the AssertionError (``BitExactMismatch``) names the first population, neuron,
timestep and both values, like ``torch.testing.assert_close`` names the first bad element.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nir

from neurodeploy.api import Deployment
from neurodeploy.backends import Backend
from neurodeploy.errors import BitExactMismatch, InputError
from neurodeploy.fileio import atomic_write
from neurodeploy.verify import Verification


def assert_bit_exact(network: Deployment | nir.NIRGraph | str | Path, inputs: Any,
                     backend: str | Backend = "lava", timesteps: int | None = None, *,
                     trace_dir: str | Path | None = None) -> Verification:
    """Run ``backend`` and the reference simulator on ``inputs`` (float images in [0, 1] or
    integers; arrays or tensors) and raise ``BitExactMismatch`` unless every spike, membrane
    and output is equal. ``trace_dir`` keeps both traces of a mismatch (CI artifacts)."""
    deployment = _deployment(network)
    result = deployment.verify(inputs, backend=backend, timesteps=timesteps)
    if result.bit_exact:
        return result
    differing = [k for k, c in enumerate(result.per_sample()) if c.divergence]
    lines = [f"{result.backend} is not bit-exact with the reference simulator",
             result.describe(result.comparison.divergence),
             f"samples that differ: {len(differing)} of {result.comparison.samples} "
             f"({', '.join(map(str, differing))})"]
    if trace_dir is not None:
        stem = Path(network).stem if isinstance(network, str | Path) else "network"
        lines.append("traces: " + ", ".join(map(str, result.save_traces(trace_dir, stem))))
    raise BitExactMismatch("\n".join(lines), divergence=result.comparison.divergence)


def write_junit(verification: Verification, path: str | Path, name: str) -> None:
    """A JUnit XML report of ``verification`` named ``name``, one test case per sample (each
    sample runs its own window, so each is its own finding); written atomically."""
    cases = verification.per_sample()
    failures = sum(c.divergence is not None for c in cases)
    suites = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"neurodeploy verify {name}",
                          tests=str(len(cases)), failures=str(failures), errors="0",
                          skipped="0")
    properties = ET.SubElement(suite, "properties")
    for key, value in (("backend", verification.backend), ("reference", "reference"),
                       ("timesteps", verification.comparison.timesteps),
                       ("populations", verification.comparison.populations)):
        ET.SubElement(properties, "property", name=key, value=str(value))
    for k, comparison in enumerate(cases):
        case = ET.SubElement(suite, "testcase", classname=f"neurodeploy.verify.{Path(name).stem}",
                             name=f"sample {k}")
        if comparison.divergence is not None:
            message = verification.describe(comparison.divergence)
            failure = ET.SubElement(case, "failure", message=message, type="BitExactMismatch")
            failure.text = message
    ET.indent(suites)
    atomic_write(path, lambda tmp: ET.ElementTree(suites).write(tmp, encoding="utf-8",
                                                                xml_declaration=True))


def _deployment(network: Deployment | nir.NIRGraph | str | Path) -> Deployment:
    if isinstance(network, Deployment):
        return network
    if isinstance(network, nir.NIRGraph):
        return Deployment(network, target=None)
    if not isinstance(network, str | os.PathLike):
        raise InputError(f"network must be a Deployment, a NIR graph or a .nir path, got "
                         f"{type(network).__name__}",
                         hint="Compile a model first: neurodeploy.compile(model, calib=...)")
    return Deployment.load(network)

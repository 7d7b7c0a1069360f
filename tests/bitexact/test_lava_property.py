"""Property: on random small quantized networks, Lava reproduces the reference simulator
exactly (every spike and membrane of every population at every step, and the outputs)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.bitexact.checks import assert_identical, run_both
from tests.bitexact.netgen import Case, networks, residual_stack

# one Lava session per example (~0.5 s setup on 2 cores): keep the default run short
_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow],
             "print_blob": True}


def _check(reference_backend, lava_backend, case: Case) -> None:
    expected, actual = run_both(reference_backend, lava_backend, case.graph, case.inputs,
                                case.timesteps)
    assert_identical(case.graph, expected, actual)


@pytest.mark.lava
@settings(max_examples=50, **_SETTINGS)
@given(case=networks())
def test_lava_matches_reference(reference_backend, lava_backend, case: Case) -> None:
    _check(reference_backend, lava_backend, case)


@pytest.mark.lava
@pytest.mark.slow
@settings(max_examples=500, **_SETTINGS)
@given(case=networks())
def test_lava_matches_reference_thorough(reference_backend, lava_backend, case: Case) -> None:
    _check(reference_backend, lava_backend, case)


@pytest.mark.lava
@settings(max_examples=5, **_SETTINGS)  # ~20 Lava processes each: a few seconds apiece
@given(case=networks(stacks=(residual_stack,)))
def test_lava_matches_reference_on_residual_nets(reference_backend, lava_backend,
                                                 case: Case) -> None:
    _check(reference_backend, lava_backend, case)


@pytest.mark.lava
@pytest.mark.slow
@settings(max_examples=200, **_SETTINGS)
@given(case=networks(stacks=(residual_stack,)))
def test_lava_matches_reference_on_residual_nets_thorough(reference_backend, lava_backend,
                                                          case: Case) -> None:
    _check(reference_backend, lava_backend, case)

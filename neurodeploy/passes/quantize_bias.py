"""quantize_bias: biases in membrane units, representable as mantissa << exponent."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.core.conformance import representable
from neurodeploy.core.population import Population
from neurodeploy.passes.base import PassContext, per_population, unit
from neurodeploy.targets import Target


def quantize_bias(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Loihi stores a bias as a signed mantissa shifted by a small exponent; values too large
    for the mantissa lose low bits. A per-step bias table (FTBC) is stored the same way. The
    worst rounding error is recorded per population."""
    return per_population(graph, ctx, "quantize_bias", "max_abs_error_units", bias_of)


def bias_of(name: str, meta: Population, target: Target) -> tuple[Population, float]:
    """The population's bias (and bias table) in membrane units; the worst rounding error."""
    spec = target.neuron
    worst = 0.0

    def rounded(values: np.ndarray) -> np.ndarray:
        nonlocal worst
        exact = np.asarray(values, np.float64) / unit(meta, name)
        result = representable(exact, spec.bias_mantissa_bits, spec.bias_exponent_bits, name)
        worst = max(worst, float(np.abs(result - exact).max(initial=0.0)))
        return result.astype(np.int32)

    table = None if meta.bias_table is None else rounded(meta.bias_table)
    return dataclasses.replace(meta, bias=rounded(meta.bias), bias_table=table), worst


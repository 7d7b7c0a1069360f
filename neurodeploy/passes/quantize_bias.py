"""quantize_bias: biases in membrane units, representable as mantissa << exponent."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.core.conformance import representable
from neurodeploy.passes.base import PassContext, unit, update_populations


def quantize_bias(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Loihi stores a bias as a signed mantissa shifted by a small exponent; values too large
    for the mantissa lose low bits. A per-step bias table (FTBC) is stored the same way. The
    worst rounding error is recorded per population."""
    spec = ctx.target.neuron
    errors = {}

    def update(name, meta):
        def rounded(values: np.ndarray) -> np.ndarray:
            exact = np.asarray(values, np.float64) / unit(meta, name)
            result = representable(exact, spec.bias_mantissa_bits, spec.bias_exponent_bits, name)
            errors[name] = max(errors.get(name, 0.0),
                               float(np.abs(result - exact).max(initial=0.0)))
            return result.astype(np.int32)

        table = None if meta.bias_table is None else rounded(meta.bias_table)
        return dataclasses.replace(meta, bias=rounded(meta.bias), bias_table=table)

    graph = update_populations(graph, update)
    ctx.notes["quantize_bias"] = {"max_abs_error_units": errors}
    return graph

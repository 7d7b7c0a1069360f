"""quantize_membrane_init: integer initial membranes in membrane units."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.core.population import Population
from neurodeploy.passes.base import PassContext, per_population, unit
from neurodeploy.targets import Target


def quantize_membrane_init(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """v_init = theta/2 turns the rate code's floor into a round (algorithms.md §0); rounding
    it to the membrane grid moves that midpoint by at most half a unit, which is recorded."""
    return per_population(graph, ctx, "quantize_membrane_init", "max_abs_error_units",
                          membrane_init_of)


def membrane_init_of(name: str, meta: Population, target: Target) -> tuple[Population, float]:
    """The population's v_init in membrane units, saturated; the rounding error."""
    exact = np.asarray(meta.v_init, np.float64) / unit(meta, name)
    v_init = target.neuron.membrane.saturate(np.round(exact))
    return (dataclasses.replace(meta, v_init=v_init.astype(np.int32)),
            float(np.abs(v_init - exact).max(initial=0.0)))

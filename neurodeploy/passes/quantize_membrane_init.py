"""quantize_membrane_init: integer initial membranes in membrane units."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.passes.base import PassContext, unit, update_populations


def quantize_membrane_init(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """v_init = theta/2 turns the rate code's floor into a round (algorithms.md §0); rounding
    it to the membrane grid moves that midpoint by at most half a unit, which is recorded."""
    spec = ctx.target.neuron.membrane
    errors = {}

    def update(name, meta):
        exact = np.asarray(meta.v_init, np.float64) / unit(meta, name)
        v_init = spec.saturate(np.round(exact))
        errors[name] = float(np.abs(v_init - exact).max(initial=0.0))
        return dataclasses.replace(meta, v_init=v_init.astype(np.int32))

    graph = update_populations(graph, update)
    ctx.notes["quantize_membrane_init"] = {"max_abs_error_units": errors}
    return graph

"""check_overflow: static bounds of every synaptic sum and membrane (design.md §2).

Synaptic sums must fit the target's sum width in every step (a wrapped sum would be a
different network); they also decide whether float32 GEMMs are exact in the reference
simulator. The membrane saturates by definition of the neuron rule, which keeps all
backends equal, but saturation changes the rate code, so the largest T for which no
membrane can reach its limit is computed and a compile for a longer window is refused
(or, with ``allow_saturation``, reported). A per-step bias table (FTBC) enters the bounds
row by row, and a window longer than the table cannot run at all, so it also caps the safe
window. Each population records its safe window and the
largest |v| its worst-case bounds reach within the compiled one (the report shows both
against the membrane width).
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.core.graph import populations, predecessors
from neurodeploy.core.meta import get_graph_meta, population_meta, set_graph_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.errors import MetadataError, SaturationRisk, TargetLimitExceeded
from neurodeploy.passes.base import PassContext, copy_graph
from neurodeploy.passes.sources import synapse_source

HORIZON = 1024  #: the longest window the bound is followed for


def check_overflow(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    preds = predecessors(graph)
    sum_limit = (1 << (ctx.target.limits.synaptic_sum_bits - 1)) - 1
    membrane = ctx.target.neuron.membrane
    timesteps = get_graph_meta(graph).timesteps
    largest_sum, bounds, safe = 0, {}, {}
    for name in populations(graph):
        shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
        high, low, magnitude = _input_bounds(graph, preds[name], shape)
        if magnitude.max() > sum_limit:
            raise TargetLimitExceeded(node=name, limit="synaptic sum per step",
                                      value=int(magnitude.max()), allowed=sum_limit,
                                      hint="Lower the input width or the weights' fan-in")
        largest_sum = max(largest_sum, int(magnitude.max()))
        meta = population_meta(graph, name)
        if meta.bias_table is not None and len(meta.bias_table) < timesteps:
            raise MetadataError(f"bias table has {len(meta.bias_table)} rows, a window of "
                                f"T={timesteps} needs one per step", node=name,
                                hint="Compile (calibrate) for the window you run")
        half = (1 << meta.input_shift) // 2
        high, low = [np.floor((b + half) / 2.0**meta.input_shift) for b in (high, low)]
        safe[name], bounds[name] = _follow_bounds(meta, shape, high, low, membrane, timesteps)
        steps = safe[name]
        if steps < timesteps and not ctx.allow_saturation:
            raise SaturationRisk(
                node=name, limit=f"{membrane.bits}-bit membrane",
                value=f"possible saturation after {steps} steps", allowed=f"T={timesteps}",
                hint="Compile for fewer timesteps or pass allow_saturation=True "
                     "(--allow-saturation)")
    ctx.notes["check_overflow"] = {"max_abs_synaptic_sum": largest_sum}
    out = copy_graph(graph, {})
    set_graph_meta(out, dataclasses.replace(get_graph_meta(out), membrane_bounds=bounds,
                                            safe_windows=safe))
    return out


def _input_bounds(graph: nir.NIRGraph, synapses: list[str], shape: tuple[int, ...]):
    """Per-step (max, min, max |.|) of the population's summed synaptic input."""
    high = low = magnitude = np.zeros(())
    for name in synapses:
        node = graph.nodes[name]
        src = synapse_source(graph, name)
        weight = np.asarray(node.weight, np.float64)
        axes = tuple(range(1, weight.ndim))
        pos, neg = np.maximum(weight, 0), np.minimum(weight, 0)
        high = high + param_for_shape((pos * src.high + neg * src.low).sum(axes), shape)
        low = low + param_for_shape((pos * src.low + neg * src.high).sum(axes), shape)
        reach = max(abs(src.low), abs(src.high))
        magnitude = magnitude + param_for_shape(np.abs(weight).sum(axes) * reach, shape)
    return high, low, magnitude


def _follow_bounds(meta, shape, high, low, membrane, timesteps: int) -> tuple[int, int]:
    """Follow worst-case upper and lower membrane bounds step by step (see module doc):
    (safe steps, largest |v| the bounds reach within ``timesteps`` steps)."""
    theta = param_for_shape(np.asarray(meta.theta, np.float64), shape)
    constant = param_for_shape(np.asarray(meta.bias, np.float64), shape)
    table = () if meta.bias_table is None else [
        param_for_shape(np.asarray(row, np.float64), shape) for row in meta.bias_table]
    upper = lower = param_for_shape(np.asarray(meta.v_init, np.float64), shape)
    reach = int(max(np.abs(upper).max(), np.abs(lower).max()))
    for step in range(HORIZON):
        if meta.bias_table is not None and step == len(table):
            return step, reach
        bias = constant - table[step] if table else constant
        peak, trough = upper + high + bias, lower + low + bias
        if step < timesteps:
            reach = max(reach, int(max(peak.max(), -trough.min())))
        if peak.max() > membrane.max or trough.min() < membrane.min:
            return step, reach
        if meta.fires:
            new_upper = np.maximum(np.minimum(peak, theta - 1), peak - meta.max_burst * theta)
            new_upper = np.maximum(new_upper, theta) if meta.dual else new_upper
            new_lower = np.minimum(trough, 0)
        else:
            new_upper, new_lower = peak, trough
        if not table and np.array_equal(new_upper, upper) and np.array_equal(new_lower, lower):
            return HORIZON, reach  # the bounds stopped moving: they hold for any window
        upper, lower = new_upper, new_lower
    return HORIZON, reach

"""check_overflow: static bounds of every synaptic sum and membrane (design.md §2).

Synaptic sums must fit the target's sum width in every step (a wrapped sum would be a
different network); they also decide whether float32 GEMMs are exact in the reference
simulator. The membrane saturates by definition of the neuron rule, which keeps all
backends equal, but saturation changes the rate code, so the largest T for which no
membrane can reach its limit is computed and a compile for a longer window is refused
(or, with ``allow_saturation``, reported). A per-step bias table (FTBC) enters the bounds
row by row, and a window longer than the table cannot run at all, so it also caps the safe
window. Each population records its safe window and the largest |v| its worst-case bounds
reach within the compiled one (the report shows both against the membrane width). The bounds
follow every part of the rule (``step_bounds``); tests/unit/passes/test_overflow_bound.py runs
the rule on random populations and inputs and checks that no membrane leaves them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import nir
import numpy as np

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.graph import populations, predecessors
from neurodeploy.core.meta import get_graph_meta, population_meta, set_graph_meta
from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.core.population import Population, Reset, param_for_shape
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
        safe[name], bounds[name] = _follow_bounds(meta, shape, high, low, membrane, timesteps)
        if safe[name] < timesteps and not ctx.allow_saturation:
            raise SaturationRisk(
                node=name, bits=membrane.bits, steps=safe[name], timesteps=timesteps,
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


def _follow_bounds(meta: Population, shape: tuple[int, ...], high: np.ndarray, low: np.ndarray,
                   membrane: IntSpec, timesteps: int) -> tuple[int, int]:
    """(safe steps, largest |v| the bounds reach within ``timesteps`` steps): the steps before
    ``step_bounds`` first leave the membrane's range, up to ``HORIZON`` (or the end of the
    bias table)."""
    reach = int(np.abs(param_for_shape(np.asarray(meta.v_init), shape)).max())
    steps, last = 0, None
    for peak, trough in itertools.islice(step_bounds(meta, shape, high, low), HORIZON):
        if steps < timesteps:
            reach = max(reach, int(max(peak.max(), -trough.min())))
        if peak.max() > membrane.max or trough.min() < membrane.min:
            return steps, reach
        # the next bounds are a function of these (and of the step only through the table)
        if meta.bias_table is None and last is not None and np.array_equal(peak, last[0]) \
                and np.array_equal(trough, last[1]):
            return HORIZON, reach  # the bounds stopped moving: they hold for any window
        steps, last = steps + 1, (peak, trough)
    return steps, reach


def step_bounds(meta: Population, shape: tuple[int, ...], high: np.ndarray,
                    low: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per step t, (peak, trough): bounds, per neuron, of the membrane before the spike
    decision that the rule (core/neuron.py) can reach from ``v_init`` when the synaptic input
    is in [low, high] every step; valid while neither leaves the membrane's range (the rule
    saturates there); without a bias table the steps never end.

    Every part of the rule is monotone in v and in the input, so interval ends map to interval
    ends: the rounding input shift, the leak (it moves v toward 0, rounding toward zero) and
    saturation; a spike leaves a residual in [0, theta) or, capped at ``max_burst``, at most
    ``peak - max_burst * theta`` (a negative spike: at most ``theta``), and the zero reset
    leaves 0. A synaptic filter's current u (input plus bias; it saturates at the same width)
    follows its own interval from 0, independent of spikes, and is what the membrane
    integrates; the yielded bounds then cover u as well."""
    half = (1 << meta.input_shift) // 2
    high, low = (np.floor((b + half) / 2.0**meta.input_shift) for b in (high, low))
    theta = param_for_shape(np.asarray(meta.theta, np.float64), shape)
    constant = param_for_shape(np.asarray(meta.bias, np.float64), shape)
    kept = (DECAY_ONE - param_for_shape(np.asarray(meta.decay, np.float64), shape)) / DECAY_ONE
    current_kept = (DECAY_ONE - param_for_shape(np.asarray(meta.current_decay, np.float64),
                                                shape)) / DECAY_ONE
    filtered = bool(np.any(current_kept > 0))
    u_high = u_low = np.zeros(())
    upper = lower = param_for_shape(np.asarray(meta.v_init, np.float64), shape)
    biases = itertools.repeat(constant) if meta.bias_table is None else (
        constant - param_for_shape(np.asarray(row, np.float64), shape) for row in meta.bias_table)
    for bias in biases:
        if filtered:  # the bias goes into u; a per-step table (bias - row) stays on v
            u_high = np.trunc(u_high * current_kept) + high + constant
            u_low = np.trunc(u_low * current_kept) + low + constant
            high_in, low_in, bias = u_high, u_low, bias - constant
        else:
            high_in, low_in = high, low
        # the leak, exact in float64: v and 4096 - d are integers below 2**28 and 2**13
        peak = np.trunc(upper * kept) + high_in + bias
        trough = np.trunc(lower * kept) + low_in + bias
        yield (np.maximum(peak, u_high), np.minimum(trough, u_low)) if filtered \
            else (peak, trough)
        if meta.fires:
            below = np.minimum(peak, theta - 1)  # no positive spike
            if meta.reset is Reset.ZERO:
                upper = np.maximum(below, 0)
            else:
                upper = np.maximum(below, peak - meta.max_burst * theta)
                upper = np.maximum(upper, theta) if meta.dual else upper
            lower = np.minimum(trough, 0)
        else:
            upper, lower = peak, trough

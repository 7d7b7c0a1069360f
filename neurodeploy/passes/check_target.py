"""check_target: refuse what the target chip cannot express (core/conformance.py, the same
checks every read of a file runs)."""

from __future__ import annotations

import nir

from neurodeploy.core.conformance import check_graph
from neurodeploy.core.meta import copy_graph
from neurodeploy.passes.base import PassContext


def check_target(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Features (dual threshold, bursts, per-neuron v_init, bias tables) and widths (weights,
    thresholds, biases, membrane, input), each refusal naming the population and the limit."""
    check_graph(graph, ctx.target)
    return copy_graph(graph, {})

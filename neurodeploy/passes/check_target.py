"""check_target: refuse neuron features the target chip cannot express."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.graph import populations
from neurodeploy.core.meta import copy_graph, population_meta
from neurodeploy.core.neuron import MAX_MEMBRANE_BITS
from neurodeploy.core.population import MAX_PARAM_DIMS_PER_CHANNEL
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.passes.base import PassContext


def check_target(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Each check names the population and the target feature it needs, so the user can
    choose another target or method instead of getting a silently different network."""
    target = ctx.target
    if target.neuron.membrane_bits > MAX_MEMBRANE_BITS:
        raise TargetLimitExceeded(node=target.name, limit="membrane_bits",
                                  value=target.neuron.membrane_bits, allowed=MAX_MEMBRANE_BITS)
    for name in populations(graph):
        meta = population_meta(graph, name)
        if meta.dual and not (target.neuron.dual_threshold and target.spikes.signed):
            raise TargetLimitExceeded(node=name, limit="dual_threshold", value="on",
                                      allowed="off", hint=f"Target '{target.name}' has no "
                                      "negative spikes; use the target loihi2")
        if meta.max_burst > 1 and not target.spikes.graded:
            raise TargetLimitExceeded(node=name, limit="max_burst", value=meta.max_burst,
                                      allowed=1, hint=f"Target '{target.name}' has binary "
                                      "spikes; use the target loihi2")
        if meta.max_burst > target.neuron.max_burst:
            raise TargetLimitExceeded(node=name, limit="max_burst", value=meta.max_burst,
                                      allowed=target.neuron.max_burst)
        if np.ndim(meta.v_init) > MAX_PARAM_DIMS_PER_CHANNEL and \
                not target.neuron.per_neuron_v_init:
            raise TargetLimitExceeded(node=name, limit="per_neuron_v_init", value="needed",
                                      allowed="no")
        if meta.bias_table is not None and not target.neuron.bias_table:
            raise TargetLimitExceeded(node=name, limit="bias_table", value="needed",
                                      allowed="no", hint="FTBC needs a per-step bias table")
    return copy_graph(graph, {})

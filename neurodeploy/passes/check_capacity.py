"""check_capacity: place the network on the target's cores and refuse one that cannot fit.

The allocator and what it models are in ``neurodeploy.capacity``. The pass records the cores
of every population and the chip's utilisation in the metadata (the report shows them); with
``capacity_check`` off (``--no-capacity-check``) it records what does not fit instead of
refusing, so the report can say by how much.
"""

from __future__ import annotations

import dataclasses

import nir

from neurodeploy.capacity import Allocation, Violation, allocate
from neurodeploy.core.meta import copy_graph, get_graph_meta, set_graph_meta
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.passes.base import PassContext

LARGEST_SHOWN = 3  #: populations named in the hint when the chip runs out of cores


def check_capacity(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    allocation = allocate(graph, ctx.target)
    if allocation.violations and ctx.capacity_check:
        first = allocation.violations[0]
        raise TargetLimitExceeded(node=first.population, limit=first.limit, value=first.value,
                                  allowed=first.allowed, hint=_hint(first, allocation))
    out = copy_graph(graph, {})
    set_graph_meta(out, dataclasses.replace(
        get_graph_meta(out), cores={layer.population: layer.cores for layer in allocation.layers},
        utilisation=allocation.utilisation(),
        capacity_violations=[describe(v) for v in allocation.violations]))
    return out


def describe(violation: Violation) -> str:
    return (f"{violation.population}: {violation.limit} is {violation.value}, the target "
            f"allows {violation.allowed}")


def _hint(violation: Violation, allocation: Allocation) -> str:
    escape = ("or pass capacity_check=False (--no-capacity-check) to compile anyway and see "
              "the report")
    if violation.limit == "cores":
        largest = sorted(allocation.layers, key=lambda layer: -layer.cores)[:LARGEST_SHOWN]
        names = ", ".join(f"{layer.population} {layer.cores}" for layer in largest)
        chips = allocation.target.system.chips
        system = (f", the system's {chips} chips x {allocation.target.limits.cores} cores hold "
                  f"{violation.allowed}" if chips > 1 else "")
        return (f"The network needs {violation.value} cores{system} (largest: {names}); "
                f"shrink it, choose a larger target, {escape}")
    need = (f"needs {violation.value} bits of core memory (state and weights)"
            if violation.limit == "memory.bits_per_core" else f"has {violation.value} synapses")
    return (f"One neuron of this layer {need}; reduce its fan-in (fewer input channels or "
            f"features), {escape}")

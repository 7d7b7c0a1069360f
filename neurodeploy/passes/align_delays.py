"""align_delays: equal hop counts on every path into a merge (docs/concepts/timing.md).

On a pipelined target each synapse layer costs ``hop_delay`` steps, so the two inputs of a
residual merge (a two-layer main path, a one-layer shortcut) would arrive in different steps
and the population would sum values of different timesteps. This pass holds each early path
back with a ``nir.Delay`` in front of its synapse layer (the delay carries the source's
spikes, whose shape is known, and the synapse layer stays the population's direct input).
On a target without pipeline delay nothing is inserted.
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.graph import arrivals, predecessors
from neurodeploy.core.meta import SYNAPSE_TYPES, copy_graph
from neurodeploy.errors import MetadataError
from neurodeploy.passes.base import PassContext


def align_delays(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    _, early = arrivals(graph, ctx.target.timing.hop_delay)
    delays: dict[str, int] = {}  #: synapse layer -> steps to hold its input back
    for (pred, name), steps in early.items():
        if not isinstance(graph.nodes[pred], SYNAPSE_TYPES):
            raise MetadataError(f"the input from '{pred}' arrives {steps} steps early and is "
                                "not a synapse layer, so no delay can be put in front of it",
                                node=name)
        delays[pred] = steps
    ctx.notes["align_delays"] = {"inserted_steps": delays}
    preds = predecessors(graph)
    out = copy_graph(graph, {})
    for synapse, steps in delays.items():
        (source,) = preds[synapse]
        name = f"{synapse}.delay"
        shape = np.asarray(graph.nodes[source].output_type["output"])
        out.nodes[name] = nir.Delay(delay=np.full(tuple(int(d) for d in shape), float(steps)))
        out.edges = [(name, dst) if (src, dst) == (source, synapse) else (src, dst)
                     for src, dst in out.edges]
        out.edges.append((source, name))
    return nir.NIRGraph(out.nodes, out.edges, metadata=out.metadata)

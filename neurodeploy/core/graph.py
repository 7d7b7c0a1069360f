"""Derived views of a NIR graph that several modules need: order, roles, hop offsets.

Nothing here is stored; each view is recomputed from the graph on demand, so passes can
never leave a stale copy behind.
"""

from __future__ import annotations

from collections import defaultdict

import nir
import numpy as np

from neurodeploy.core.meta import SYNAPSE_TYPES
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.errors import MetadataError


def predecessors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    return preds


def topological_order(graph: nir.NIRGraph) -> list[str]:
    """Kahn's algorithm; ties keep insertion order so the result is deterministic."""
    preds = predecessors(graph)
    remaining = {name: len(set(preds[name])) for name in graph.nodes}
    succs: dict[str, list[str]] = defaultdict(list)
    for src, dst in set(graph.edges):
        succs[src].append(dst)
    order = []
    ready = [n for n in graph.nodes if remaining[n] == 0]
    while ready:
        name = ready.pop(0)
        order.append(name)
        for nxt in sorted(succs[name], key=list(graph.nodes).index):
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(graph.nodes):
        raise MetadataError("graph has a cycle; recurrent networks are not supported")
    return order


def input_name(graph: nir.NIRGraph) -> str:
    return _single(graph, nir.Input, "input")


def output_name(graph: nir.NIRGraph) -> str:
    return _single(graph, nir.Output, "output")


def populations(graph: nir.NIRGraph) -> list[str]:
    """Neuron populations (incl. the readout) in topological order."""
    return [n for n in topological_order(graph) if isinstance(graph.nodes[n], NEURON_TYPES)]


#: the name converted and imported graphs give their readout population
READOUT = "readout"


def readout_name(graph: nir.NIRGraph) -> str:
    """The population feeding the output (``READOUT`` in graphs neurodeploy builds)."""
    return predecessors(graph)[output_name(graph)][0]


def num_outputs(graph: nir.NIRGraph) -> int:
    """Units of the readout: the classes of a classifier."""
    return int(np.prod(graph.nodes[output_name(graph)].input_type["input"]))


def hop_offsets(graph: nir.NIRGraph, hop_delay: int) -> dict[str, int]:
    """Step at which each node's first value appears on a pipelined target (design.md §3).

    Every synapse node adds ``hop_delay``; a ``nir.Delay`` adds its delay; neurons, flatten
    and the input add none. All paths into one node must arrive together.
    """
    offsets, early = arrivals(graph, hop_delay)
    if early:
        _, name = next(iter(early))
        times = sorted({offsets[p] for p in predecessors(graph)[name]})
        raise MetadataError(f"paths into this node arrive at different steps {times}",
                            node=name, hint="Run the align_delays pass to insert nir.Delay nodes")
    return offsets


def arrivals(graph: nir.NIRGraph, hop_delay: int
             ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """(offsets, early): each node's offset as ``hop_offsets`` defines it, a node with
    unequal inputs starting at the latest; and each edge (source, node) whose value arrives
    early, with by how many steps, in network order."""
    preds = predecessors(graph)
    offsets: dict[str, int] = {}
    early: dict[tuple[str, str], int] = {}
    for name in topological_order(graph):
        node = graph.nodes[name]
        latest = max((offsets[p] for p in preds[name]), default=0)
        early.update({(p, name): latest - offsets[p] for p in preds[name]
                      if offsets[p] < latest})
        own = hop_delay if isinstance(node, SYNAPSE_TYPES) else 0
        if isinstance(node, nir.Delay):
            own = int(node.delay.max())
        offsets[name] = latest + own
    return offsets, early


def _single(graph: nir.NIRGraph, cls: type, what: str) -> str:
    names = [n for n, node in graph.nodes.items() if isinstance(node, cls)]
    if len(names) != 1:
        raise MetadataError(f"graph must have exactly one {what} node, found {len(names)}")
    return names[0]

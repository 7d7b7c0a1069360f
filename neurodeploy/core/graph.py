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
    """Every node's inputs, recurrent ones included, in edge order."""
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    return preds


def successors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    """Every node's consumers, recurrent ones included, in edge order."""
    succs: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        succs[src].append(dst)
    return succs


def back_edges(graph: nir.NIRGraph) -> set[tuple[str, str]]:
    """The recurrent edges: those that close a cycle in a depth-first walk from the input
    (then from any node not yet reached), successors in name order. Names survive a file
    round trip, so a graph read back has the same recurrent edges. A DAG has none."""
    succs: dict[str, list[str]] = defaultdict(list)
    for src, dst in sorted(set(graph.edges)):
        succs[src].append(dst)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    back: set[tuple[str, str]] = set()
    for root in [*sorted(inputs), *sorted(graph.nodes)]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succs[root]))]
        while stack:
            name, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                state[name] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((name, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succs[nxt])))
    return back


def forward_predecessors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    """``predecessors`` without the recurrent edges: the inputs of the same step."""
    back = back_edges(graph)
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        if (src, dst) not in back:
            preds[dst].append(src)
    return preds


def topological_order(graph: nir.NIRGraph) -> list[str]:
    """Kahn's algorithm over the forward edges (``back_edges`` excluded: a recurrent edge
    carries an earlier step's values); ties keep insertion order, so the result is
    deterministic."""
    preds = forward_predecessors(graph)
    remaining = {name: len(set(preds[name])) for name in graph.nodes}
    succs: dict[str, list[str]] = defaultdict(list)
    for dst, srcs in preds.items():
        for src in set(srcs):
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
        raise MetadataError("graph edges name nodes that do not exist")
    return order


def recurrent_delays(graph: nir.NIRGraph) -> dict[tuple[str, str], int]:
    """Steps each recurrent edge (source, population) delays its values by, in the ideal
    time frame: the synapse layers (and ``nir.Delay`` steps) around its cycle, which is
    what a pipelined target with one step per synapse layer does (docs/concepts/timing.md).
    1 for a population feeding itself through one synapse layer: NIR's previous step."""
    hops, _ = arrivals(graph, 1)
    delays = {}
    for src, dst in sorted(back_edges(graph)):
        if not isinstance(graph.nodes[dst], NEURON_TYPES):
            raise MetadataError(f"a recurrent edge from '{src}' must end at a neuron "
                                "population", node=dst)
        delays[src, dst] = hops[src] - hops[dst]
        if delays[src, dst] < 1:
            raise MetadataError(f"the cycle through '{src}' has no synapse layer, so it "
                                "would need its own output in the same step", node=dst)
    return delays


def cycles(graph: nir.NIRGraph) -> list[list[str]]:
    """The nodes of each cycle that recurrent edges close (cycles sharing a node are one),
    each in topological order; a node on no cycle is in none."""
    order = topological_order(graph)
    groups: list[set[str]] = []
    for src, dst in back_edges(graph):
        # the cycle's body: reachable from dst and reaching src
        body = _reach(graph, dst, forward=True) & _reach(graph, src, forward=False)
        for group in [g for g in groups if g & body]:
            groups.remove(group)
            body |= group
        groups.append(body)
    return sorted(([n for n in order if n in g] for g in groups), key=lambda c: order.index(c[0]))


def _reach(graph: nir.NIRGraph, start: str, forward: bool) -> set[str]:
    """``start`` and every node reachable from it (or, backwards, reaching it)."""
    links = successors(graph) if forward else predecessors(graph)
    seen, stack = {start}, [start]
    while stack:
        for nxt in links[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


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
        times = sorted({offsets[p] for p in forward_predecessors(graph)[name]})
        raise MetadataError(f"paths into this node arrive at different steps {times}",
                            node=name, hint="Run the align_delays pass to insert nir.Delay nodes")
    return offsets


def arrivals(graph: nir.NIRGraph, hop_delay: int
             ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """(offsets, early): each node's offset as ``hop_offsets`` defines it, a node with
    unequal inputs starting at the latest; and each edge (source, node) whose value arrives
    early, with by how many steps, in network order. Recurrent edges (``back_edges``) are
    not paths into a node's step: ``recurrent_delays`` gives their timing."""
    preds = forward_predecessors(graph)
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

"""The pass contract (read this before writing a pass).

A pass is a small named function ``fn(graph, ctx) -> graph`` registered with
``@graph_pass("verb_object")``. Every pass:

1. is pure: it returns a *new* NIRGraph and leaves its input (nodes, arrays, metadata)
   untouched; NIR nodes are mutable, so build new ones with ``dataclasses.replace`` or
   ``meta.with_node_meta``;
2. takes its parameters from ``ctx`` (target, timesteps, options), never from globals;
3. keeps the graph valid NIR and its neurodeploy metadata readable (the manager checks both
   after each pass);
4. records what it changed that a user may want to know (rounding errors, bounds) in
   ``ctx.notes`` under its own name; the manager stores the notes in the graph metadata;
5. raises a NeurodeployError naming the offending node when the graph cannot be handled.

Passes run once each, in the order of a pipeline (a tuple of names); there is no
fixed-point loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nir

from neurodeploy.targets import Target


@dataclass
class PassContext:
    target: Target
    timesteps: int
    allow_saturation: bool = False  #: report, instead of refusing, a membrane that may saturate
    capacity_check: bool = True  #: refuse (instead of recording) a network the cores cannot hold
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)


GraphPass = Callable[[nir.NIRGraph, PassContext], nir.NIRGraph]
PASSES: dict[str, GraphPass] = {}


def graph_pass(name: str) -> Callable[[GraphPass], GraphPass]:
    def register(fn: GraphPass) -> GraphPass:
        fn.pass_name = name  # type: ignore[attr-defined]
        PASSES[name] = fn
        return fn

    return register


def copy_graph(graph: nir.NIRGraph, nodes: dict[str, nir.NIRNode]) -> nir.NIRGraph:
    """A new graph with ``nodes`` replacing same-named nodes; edges and metadata copied."""
    merged = {name: nodes.get(name, node) for name, node in graph.nodes.items()}
    return nir.NIRGraph(merged, list(graph.edges), metadata=_deep_copy(graph.metadata))


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value.copy() if hasattr(value, "copy") else value


def update_populations(graph: nir.NIRGraph, update: Callable[[str, Any], Any],
                       node_update: Callable[[nir.NIRNode, Any], nir.NIRNode] | None = None
                       ) -> nir.NIRGraph:
    """Apply ``update(name, PopulationMeta) -> PopulationMeta`` to every population."""
    from neurodeploy.graph import populations
    from neurodeploy.meta import population_meta, with_node_meta

    new_nodes = {}
    for name in populations(graph):
        meta = update(name, population_meta(graph, name))
        node = graph.nodes[name] if node_update is None else node_update(graph.nodes[name], meta)
        new_nodes[name] = with_node_meta(node, meta)
    return copy_graph(graph, new_nodes)


def unit(meta: Any, name: str) -> float:
    """The population's membrane unit 2**exponent; quantize_weights must have run."""
    from neurodeploy.errors import MetadataError

    if meta.exponent is None:
        raise MetadataError("population has no weight exponent",
                            node=name, hint="Run quantize_weights before this pass")
    return 2.0 ** meta.exponent

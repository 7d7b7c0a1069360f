"""The pass contract (read this before writing a pass).

A pass is a small function ``verb_object(graph, ctx) -> graph`` in its own module, listed
in ``passes/registry.py``. Every pass:

1. is pure: it returns a *new* NIRGraph and leaves its input (nodes, arrays, metadata)
   untouched; NIR nodes are mutable, so build new ones with ``dataclasses.replace``, and a
   population only from its record (``meta.population_node``, ``update_populations``);
2. takes its parameters from ``ctx`` (target, options) and the window from the graph's
   ``GraphMeta.timesteps``, never from globals;
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

from neurodeploy.core.graph import populations
from neurodeploy.core.meta import copy_graph, population_meta, population_node
from neurodeploy.core.population import Population, population_shape
from neurodeploy.errors import MetadataError
from neurodeploy.targets import Target


@dataclass
class PassContext:
    target: Target
    allow_saturation: bool = False  #: report, instead of refusing, a membrane that may saturate
    capacity_check: bool = True  #: refuse (instead of recording) a network the cores cannot hold
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)


GraphPass = Callable[[nir.NIRGraph, PassContext], nir.NIRGraph]


def update_populations(graph: nir.NIRGraph, update: Callable[[str, Population], Population]
                       ) -> nir.NIRGraph:
    """Apply ``update(name, record) -> record`` to every population (nodes derived anew)."""
    return copy_graph(graph, {
        name: population_node(update(name, population_meta(graph, name)),
                              population_shape(graph.nodes[name]))
        for name in populations(graph)})


#: one population's part of a pass: (name, record, target) -> (new record, rounding error or
#: None when there is nothing to report)
PopulationStep = Callable[[str, Population, Target], tuple[Population, float | None]]


def per_population(graph: nir.NIRGraph, ctx: PassContext, name: str, note: str,
                   step: PopulationStep) -> nir.NIRGraph:
    """A pass that applies ``step`` to every population, its errors recorded under
    ``ctx.notes[name][note]``."""
    errors = {}

    def update(population: str, meta: Population) -> Population:
        record, error = step(population, meta, ctx.target)
        if error is not None:
            errors[population] = error
        return record

    graph = update_populations(graph, update)
    ctx.notes[name] = {note: errors}
    return graph


def unit(meta: Population, name: str) -> float:
    """The population's membrane unit 2**exponent; quantize_weights must have run."""
    if meta.exponent is None:
        raise MetadataError("population has no weight exponent",
                            node=name, hint="Run quantize_weights before this pass")
    return 2.0 ** meta.exponent

"""``quantize``: a float SNN graph -> the integer graph for a target (the default pipeline)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nir

from neurodeploy.core.meta import copy_graph, get_graph_meta, population_node, set_graph_meta
from neurodeploy.core.population import population_shape
from neurodeploy.passes.base import PassContext
from neurodeploy.passes.manager import run_pipeline
from neurodeploy.passes.quantize_weights import WEIGHTED, quantize_inbound
from neurodeploy.passes.registry import DEFAULT_PIPELINE, POPULATION_STEPS
from neurodeploy.targets import Target


def quantize(graph: nir.NIRGraph, target: Target, *, allow_saturation: bool = False,
             capacity_check: bool = True, stop_after: str | None = None,
             dump_dir: str | Path | None = None) -> nir.NIRGraph:
    """Run the default pipeline for ``target`` on a copy of ``graph``, for the window its
    metadata names; the passes' notes are in the result's ``GraphMeta.notes``.

    The graph is marked quantized (runnable by the backends) only when the whole pipeline
    ran. Methods call this too, to measure the network as it will be deployed.
    """
    start = copy_graph(graph, {})
    set_graph_meta(start, dataclasses.replace(
        get_graph_meta(graph), target=target.name, hop_delay=target.timing.hop_delay))
    ctx = PassContext(target=target, allow_saturation=allow_saturation,
                      capacity_check=capacity_check)
    out = run_pipeline(start, DEFAULT_PIPELINE, ctx, stop_after=stop_after, dump_dir=dump_dir)
    done = stop_after in (None, DEFAULT_PIPELINE[-1])
    set_graph_meta(out, dataclasses.replace(get_graph_meta(out), quantized=done))
    return out


def quantize_population(graph: nir.NIRGraph, name: str, target: Target
                        ) -> dict[str, nir.NIRNode]:
    """The integer nodes ``quantize`` makes for population ``name`` and the weighted synapses
    into it, the rest of the graph left alone: after a calibration stage changes one layer,
    only that layer (and the layers its thresholds feed) need rounding again. ``graph`` is
    the float graph with its input node quantized (``quantize_input``)."""
    synapses = [src for src, dst in graph.edges
                if dst == name and isinstance(graph.nodes[src], WEIGHTED)]
    nodes, record, _ = quantize_inbound(graph, name, synapses, target)
    for step in (POPULATION_STEPS[p] for p in DEFAULT_PIPELINE if p in POPULATION_STEPS):
        record, _ = step(name, record, target)
    nodes[name] = population_node(record, population_shape(graph.nodes[name]))
    return nodes

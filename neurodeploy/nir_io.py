"""Read and write compiled networks as NIR files (HDF5) with neurodeploy metadata."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neurodeploy import nir_compat
from neurodeploy.core.conformance import check_graph, check_weights
from neurodeploy.core.graph import (
    hop_offsets,
    populations,
    predecessors,
    recurrent_delays,
    successors,
)
from neurodeploy.core.meta import (
    MAX_TIMESTEPS,
    SYNAPSE_TYPES,
    InputMeta,
    get_graph_meta,
    get_node_meta,
    population_meta,
)
from neurodeploy.core.neuron import MAX_MEMBRANE_BITS
from neurodeploy.core.population import check_node
from neurodeploy.errors import MetadataError, NeurodeployError, all_whole
from neurodeploy.fileio import atomic_write, via_memory
from neurodeploy.targets import available_targets, load_target


def write(graph: nir.NIRGraph, path: str | Path) -> None:
    """Validate the metadata, then write atomically (no partial file on failure)."""
    validate(graph)
    atomic_write(path, via_memory(lambda buffer: _write_sealed(buffer, graph)))


def _write_sealed(buffer, graph: nir.NIRGraph) -> None:
    nir.write(buffer, graph)
    nir_compat.seal(buffer)


def read(path: str | Path) -> nir.NIRGraph:
    """Read a file we wrote; anything else fails with one readable line."""
    graph = nir_compat.read_file(path)
    try:
        validate(graph)
    except NeurodeployError as exc:
        raise MetadataError(f"{path}: {exc}") from None
    nir_compat.check_seal(path)  # after validation, whose messages say more
    return graph


def validate(graph: nir.NIRGraph) -> None:
    """Every piece of neurodeploy metadata must parse through its typed view (which checks
    every range), every population node must be what its record derives, and a graph
    marked quantized must hold integer records only and, when it names a known target, fit
    that target (``core.conformance``, the checks compile ran)."""
    gmeta = get_graph_meta(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            get_node_meta(node, InputMeta, name)
    _check_delays(graph)
    recurrent_delays(graph)  # every cycle ends at a population, through a synapse layer
    named = set(populations(graph))
    for key in ("membrane_bounds", "safe_windows", "cores"):  # printed as facts by report
        stray = sorted(set(getattr(gmeta, key)) - named)
        if stray:
            raise MetadataError(f"'{key}' names '{stray[0]}', which is no population",
                                node="graph")
    if gmeta.quantized:
        hop_offsets(graph, gmeta.hop_delay)  # every merge's inputs arrive together
    for name in populations(graph):
        record = population_meta(graph, name)
        check_node(graph.nodes[name], record, name)
        if gmeta.quantized and not record.quantized:
            raise MetadataError("the graph is marked quantized but this population's record "
                                "holds non-integer values", node=name)
    if not gmeta.quantized:
        return
    if gmeta.target not in available_targets():
        check_weights(graph, MAX_MEMBRANE_BITS)  # no target file: the widest any target has
        return
    target = load_target(gmeta.target)
    if gmeta.hop_delay != target.timing.hop_delay:
        raise MetadataError(f"hop_delay is {gmeta.hop_delay}, target '{target.name}' has "
                            f"{target.timing.hop_delay}", node="graph")
    check_graph(graph, target)


def _check_delays(graph: nir.NIRGraph) -> None:
    """A ``nir.Delay`` is what align_delays inserts: one whole number of steps, in front of a
    synapse layer (the simulators count on both)."""
    preds, succs = predecessors(graph), successors(graph)
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.Delay):
            continue
        steps = np.asarray(node.delay, np.float64)
        if steps.size == 0 or not all_whole(steps) or np.any(steps != steps.flat[0]) \
                or not 1 <= steps.flat[0] <= MAX_TIMESTEPS:
            raise MetadataError(f"a delay must be one whole number of steps in "
                                f"1..{MAX_TIMESTEPS}, got {np.unique(steps)[:3].tolist()}",
                                node=name)
        targets = succs.get(name, [])
        if len(preds[name]) != 1 or len(targets) != 1 or \
                not isinstance(graph.nodes[targets[0]], SYNAPSE_TYPES):
            raise MetadataError("a delay must hold one input back in front of a synapse layer",
                                node=name)

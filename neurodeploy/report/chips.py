"""Which chips each population uses, and the spikes that cross chips (docs/report.md).

A spike is counted once per other chip its neuron drives a neuron on (one message per
destination chip, the least traffic the placement allows). Which chips a neuron reaches follows
the synapse chains through nonzero weights, run backwards by autograd; how often it sends comes
from the measured spike counts. The host's input and the readout's logits cross no chip link.
"""

from __future__ import annotations

import nir
import numpy as np
import torch

from neurodeploy.capacity import Allocation, LayerAllocation
from neurodeploy.core.graph import predecessors, topological_order
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.core.synapse import nonzero_pattern, propagate_tensor


def chip_rows(layer: LayerAllocation, cores_per_chip: int) -> list[dict]:
    """[{"chip", "cores"}] for every chip the population uses (empty: cores not modelled)."""
    return [{"chip": chip, "cores": cores}
            for chip, cores, _, _ in layer.chip_blocks(cores_per_chip)]


def remote_chips(graph: nir.NIRGraph, allocation: Allocation) -> dict[str, np.ndarray]:
    """Per population: for each neuron (flat), how many chips other than its own hold a
    neuron it drives (all zero on one chip or when cores are not modelled)."""
    per_chip = allocation.target.limits.cores
    chip_of = {layer.population: _chip_of(layer, per_chip) for layer in allocation.layers}
    if allocation.target.system.chips == 1 or not allocation.cores_used:
        return {name: np.zeros(len(chips), np.int64) for name, chips in chip_of.items()}
    return {name: _remote(graph, name, chip_of) for name in chip_of}


def _chip_of(layer: LayerAllocation, cores_per_chip: int) -> np.ndarray:
    chips = np.zeros(layer.neurons, np.int64)
    for chip, _, start, end in layer.chip_blocks(cores_per_chip):
        chips[start:end] = chip
    return chips


def _remote(graph: nir.NIRGraph, source: str, chip_of: dict[str, np.ndarray]) -> np.ndarray:
    """Propagate a 0/1 pattern from ``source`` to the populations it drives; the gradient of
    the sum over one chip's neurons is positive exactly at the source neurons reaching it."""
    preds = predecessors(graph)
    order = topological_order(graph)
    shape = tuple(int(d) for d in graph.nodes[source].input_type["input"])
    x = torch.ones((1, *shape), dtype=torch.float64, requires_grad=True)
    values: dict[str, torch.Tensor] = {source: x}
    reached: dict[str, torch.Tensor] = {}
    for name in order[order.index(source) + 1:]:
        arriving = [values[p] for p in preds[name] if p in values]
        node = graph.nodes[name]
        if not arriving or isinstance(node, nir.Output):
            continue
        total = sum(arriving)
        if isinstance(node, NEURON_TYPES):
            reached[name] = total.reshape(-1)
        else:
            values[name] = propagate_tensor(nonzero_pattern(node), total)
    own = chip_of[source]
    remote = np.zeros(own.size, np.int64)
    chips = sorted({int(c) for name in reached for c in np.unique(chip_of[name])})
    for chip in chips:
        total = sum((reached[name] * torch.as_tensor(chip_of[name] == chip)).sum()
                    for name in reached)
        (grad,) = torch.autograd.grad(total, x, retain_graph=True)
        remote += (grad.reshape(-1).numpy() > 0) & (own != chip)
    return remote

"""Will it fit: the synapses each neuron needs, and a simple allocator onto a target's cores.

Connectivity. A chip stores a neuron's incoming synapses in its core's memory. Between two
populations the graph may chain a sum pool, a flatten, a delay and a weighted layer; a chip
has no synapse-only stage, so such a chain is one composed connectivity, and a neuron's
synapses (its fan-in) are the paths reaching it through nonzero weights: exact when sum
pools do not overlap (stride >= kernel, as in every converted AvgPool2d with default
stride), an upper bound otherwise. Every synapse is stored once per neuron (no weight
sharing): exact for dense layers, an upper bound for convolutions on chips that can share
kernels between neurons.

Allocator. Populations take cores in topological order (a recurrent edge counts as the
synapses of the population it enters; it does not change the order) and never share one (the readout
included; the input is injected by the host and takes none). A population fills cores with
consecutive neurons in NIR order (channel, row, column), starting a new core when the next
neuron would exceed ``neurons_per_core`` or ``synapses_per_core`` (greedy, which is optimal
for consecutive blocks). A limit of 0 is not modelled and never binds; with neither per-core
limit modelled no cores are counted and the cores check is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core.graph import predecessors, topological_order
from neurodeploy.core.meta import SYNAPSE_TYPES
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.core.synapse import nonzero_pattern, propagate
from neurodeploy.targets import LimitSpec, Target


@dataclass(frozen=True)
class LayerAllocation:
    population: str
    neurons: int
    synapses: int  #: synapses stored for the population (sum of its neurons' fan-in)
    fan_in_max: int
    fan_in_mean: float
    cores: int  #: 0 when no per-core limit is modelled


@dataclass(frozen=True)
class Violation:
    population: str
    limit: str  #: the key in the target's [limits] table
    value: int
    allowed: int


@dataclass(frozen=True)
class Allocation:
    layers: tuple[LayerAllocation, ...]
    limits: LimitSpec
    violations: tuple[Violation, ...]

    @property
    def cores_used(self) -> int:
        return sum(layer.cores for layer in self.layers)

    def utilisation(self) -> dict[str, float]:
        """Used / available for every modelled resource: the chip's cores, and the neuron
        slots and synaptic memory of the cores in use."""
        used = self.cores_used
        out = {}
        if self.limits.cores and used:
            out["cores"] = used / self.limits.cores
        for key, limit, total in (
                ("neurons", self.limits.neurons_per_core, sum(x.neurons for x in self.layers)),
                ("synapses", self.limits.synapses_per_core,
                 sum(x.synapses for x in self.layers))):
            if limit and used:
                out[key] = total / (used * limit)
        return out


def fan_in(graph: nir.NIRGraph) -> dict[str, np.ndarray]:
    """Per population: the synapses into each neuron (population shape, int64), through
    every chain of pools, flattens, delays and weighted layers feeding it, recurrent chains
    included (a chain starts at a population, so it never depends on its own end)."""
    preds = predecessors(graph)
    paths: dict[str, np.ndarray] = {}
    populations = []
    for name in topological_order(graph):
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            continue
        if isinstance(node, (nir.Input, *NEURON_TYPES)):
            paths[name] = np.ones(tuple(int(d) for d in node.input_type["input"]))
            populations += [] if isinstance(node, nir.Input) else [name]
            continue
        arriving = sum(paths[p] for p in preds[name])
        paths[name] = propagate(nonzero_pattern(node), arriving[None])[0]
    return {name: np.rint(sum(paths[p] for p in preds[name])).astype(np.int64)
            for name in populations}


def synapse_layers(graph: nir.NIRGraph) -> dict[str, list[str]]:
    """Per population: the synapse nodes (weighted layers, sum pools) on the chains feeding
    it, in topological order. A node feeding several populations is listed once, under the
    first of them, so per-population sums of its operations count it once."""
    preds = predecessors(graph)
    order = topological_order(graph)
    claimed: set[str] = set()
    result = {}
    for name in order:
        if not isinstance(graph.nodes[name], NEURON_TYPES):
            continue
        found, stack = [], list(preds[name])
        while stack:
            node_name = stack.pop()
            node = graph.nodes[node_name]
            if isinstance(node, (nir.Input, *NEURON_TYPES)) or node_name in claimed:
                continue
            claimed.add(node_name)
            if isinstance(node, SYNAPSE_TYPES):
                found.append(node_name)
            stack.extend(preds[node_name])
        result[name] = sorted(found, key=order.index)
    return result


def allocate(graph: nir.NIRGraph, target: Target) -> Allocation:
    """Map every population onto cores (see the module docstring) and list what exceeds the
    target's limits: per-population limits in topological order, then the chip's cores,
    charged to the population whose cores cross the chip's count."""
    limits = target.limits
    layers, violations = [], []
    for name, counts in fan_in(graph).items():
        flat = counts.reshape(-1)
        widest = int(flat.max(initial=0))
        for key, limit in (("fan_in_per_neuron", limits.fan_in_per_neuron),
                           ("synapses_per_core", limits.synapses_per_core)):
            if limit and widest > limit:
                violations.append(Violation(name, key, widest, limit))
        layers.append(LayerAllocation(
            name, flat.size, int(flat.sum()), widest, float(flat.mean()) if flat.size else 0.0,
            _cores(flat, limits.neurons_per_core, limits.synapses_per_core)))
    allocation = Allocation(tuple(layers), limits, ())
    if limits.cores and allocation.cores_used > limits.cores:
        running = np.cumsum([layer.cores for layer in layers])
        crossing = layers[int(np.argmax(running > limits.cores))].population
        violations.append(Violation(crossing, "cores", allocation.cores_used, limits.cores))
    return Allocation(tuple(layers), limits, tuple(violations))


def _cores(fan_in: np.ndarray, neurons_per_core: int, synapses_per_core: int) -> int:
    """Greedy consecutive blocks; a neuron wider than a core still takes one core of its own
    (the allocation reports that as a violation)."""
    if not neurons_per_core and not synapses_per_core:
        return 0
    ends = np.concatenate([[0], np.cumsum(fan_in)])
    start, cores = 0, 0
    while start < fan_in.size:
        end = fan_in.size if not neurons_per_core else min(fan_in.size, start + neurons_per_core)
        if synapses_per_core:
            fits = int(np.searchsorted(ends, ends[start] + synapses_per_core, side="right")) - 1
            end = min(end, max(fits, start + 1))
        start, cores = end, cores + 1
    return cores

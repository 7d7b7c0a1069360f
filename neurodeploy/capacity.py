"""Will it fit: the synapses each neuron needs, and a simple allocator onto a target's cores
and chips (the full model: docs/report.md, "Capacity"; the memory model: docs/targets.md).

A chip has no synapse-only stage, so the sum pools, flattens, delays and weighted layers
between two populations are one composed connectivity: a neuron's synapses (its fan-in) are
the paths reaching it through nonzero weights, exact when sum pools do not overlap, an upper
bound otherwise. Without a ``[memory]`` table they count against ``synapses_per_core``; with
one, a core's bits are its neurons' state plus its stored weights, and where the target shares
kernels a population fed only through convolutions stores each output channel's kernel once
per core holding part of that channel.

Populations take cores in topological order (a recurrent edge's synapses count for the
population it enters) and never share one; each fills cores greedily with consecutive neurons,
and cores fill the chips in order. A limit of 0 is not modelled and never binds; with no
per-core limit modelled no cores are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core.graph import predecessors, topological_order
from neurodeploy.core.meta import SYNAPSE_TYPES
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.core.synapse import nonzero_pattern, propagate
from neurodeploy.targets import MemorySpec, Target


@dataclass(frozen=True)
class LayerAllocation:
    population: str
    neurons: int
    synapses: int  #: synapses into the population (sum of its neurons' fan-in)
    core_starts: tuple[int, ...]  #: the first neuron of each of its cores (empty: not modelled)
    first_core: int  #: index of its first core in the system (cores fill chips in order)
    memory_bits: int = 0  #: weights and state it stores ([memory] targets; 0: not modelled)

    @property
    def cores(self) -> int:
        return len(self.core_starts)

    def chip_blocks(self, cores_per_chip: int) -> list[tuple[int, int, int, int]]:
        """(chip, cores, first neuron, end neuron) for every chip the population uses (none
        when cores are not modelled)."""
        blocks: list[tuple[int, int, int, int]] = []
        ends = (*self.core_starts[1:], self.neurons) if self.core_starts else ()
        for offset, (start, end) in enumerate(zip(self.core_starts, ends, strict=True)):
            chip = (self.first_core + offset) // cores_per_chip if cores_per_chip else 0
            if blocks and blocks[-1][0] == chip:
                blocks[-1] = (chip, blocks[-1][1] + 1, blocks[-1][2], end)
            else:
                blocks.append((chip, 1, start, end))
        return blocks


@dataclass(frozen=True)
class Violation:
    population: str
    limit: str  #: the key in the target's [limits] table
    value: int
    allowed: int


@dataclass(frozen=True)
class Allocation:
    layers: tuple[LayerAllocation, ...]
    target: Target
    violations: tuple[Violation, ...]

    @property
    def cores_used(self) -> int:
        return sum(layer.cores for layer in self.layers)

    def utilisation(self) -> dict[str, float]:
        """Used / available for every modelled resource: the system's cores, and the neuron
        slots, synaptic memory and core memory of the cores in use."""
        used, limits, memory = self.cores_used, self.target.limits, self.target.memory
        out = {}
        if limits.cores and used:
            out["cores"] = used / self.target.total_cores
        for key, limit, total in (
                ("neurons", limits.neurons_per_core, sum(x.neurons for x in self.layers)),
                ("synapses", limits.synapses_per_core, sum(x.synapses for x in self.layers)),
                ("memory", memory.bits_per_core if memory else 0,
                 sum(x.memory_bits for x in self.layers))):
            if limit and used:
                out[key] = total / (used * limit)
        return out


def fan_in(graph: nir.NIRGraph) -> dict[str, np.ndarray]:
    """Per population: the synapses into each neuron (population shape, int64), through
    every chain of pools, flattens, delays and weighted layers feeding it, recurrent chains
    included (a chain starts at a population, so it never depends on its own end)."""
    preds = predecessors(graph)
    paths: dict[str, np.ndarray] = {}  # in topological order
    for name in topological_order(graph):
        node = graph.nodes[name]
        if isinstance(node, (nir.Input, *NEURON_TYPES)):
            paths[name] = np.ones(tuple(int(d) for d in node.input_type["input"]))
        elif not isinstance(node, nir.Output):
            arriving = sum(paths[p] for p in preds[name])
            paths[name] = propagate(nonzero_pattern(node), arriving[None])[0]
    return {name: np.rint(sum(paths[p] for p in preds[name])).astype(np.int64)
            for name in paths if isinstance(graph.nodes[name], NEURON_TYPES)}


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
    """Map every population onto cores and chips (see the module docstring) and list what
    exceeds the target's limits: per-population limits in topological order, then the
    system's cores, charged to the population whose cores cross the system's count."""
    limits, memory = target.limits, target.memory
    shared = convolutional(graph) if memory and memory.shared_kernels else set()
    layers, violations, used = [], [], 0  # used: the cores taken so far
    for name, counts in fan_in(graph).items():
        flat = counts.reshape(-1)
        widest = int(flat.max(initial=0))
        for key, limit in (("fan_in_per_neuron", limits.fan_in_per_neuron),
                           ("synapses_per_core", limits.synapses_per_core)):
            if limit and widest > limit:
                violations.append(Violation(name, key, widest, limit))
        budgets = [(Cost(flat.astype(np.int64)), limits.synapses_per_core)] \
            if limits.synapses_per_core else []
        bits = Cost.bits(counts, name in shared, memory) if memory else None
        if bits is not None:
            budgets.append((bits, memory.bits_per_core))
            if bits.widest > memory.bits_per_core:
                violations.append(Violation(name, "memory.bits_per_core", bits.widest,
                                            memory.bits_per_core))
        starts = _core_starts(flat.size, limits.neurons_per_core, budgets)
        layers.append(LayerAllocation(name, flat.size, int(flat.sum()), starts, used,
                                      bits.stored(starts) if bits else 0))
        used += len(starts)
    total = target.total_cores
    if total and used > total:
        running = np.cumsum([layer.cores for layer in layers])
        crossing = layers[int(np.argmax(running > total))].population
        violations.append(Violation(crossing, "cores", used, total))
    return Allocation(tuple(layers), target, tuple(violations))


@dataclass(frozen=True)
class Cost:
    """What each neuron adds to a core (``per_neuron``), and what a core pays extra when it
    starts at a neuron (``on_start``: the kernel of a channel begun on an earlier core)."""

    per_neuron: np.ndarray
    on_start: np.ndarray | None = None

    @classmethod
    def bits(cls, counts: np.ndarray, shared: bool, memory: MemorySpec) -> Cost:
        """Neuron state plus stored weights in bits; a shared kernel is charged to the first
        neuron of its channel (and again to a core that starts inside the channel)."""
        flat = counts.reshape(-1).astype(np.int64)
        if not shared:
            return cls(memory.neuron_bits + memory.weight_bits * flat)
        channels = counts.reshape(counts.shape[0], -1)
        kernel = memory.weight_bits * np.repeat(channels.max(axis=1), channels.shape[1])
        first = np.zeros(flat.size, bool)
        first[::channels.shape[1]] = True
        return cls(memory.neuron_bits + np.where(first, kernel, 0), np.where(first, 0, kernel))

    @property
    def widest(self) -> int:
        """The most one neuron can need on a core of its own."""
        extra = 0 if self.on_start is None else self.on_start
        return int((self.per_neuron + extra).max(initial=0))

    def stored(self, starts: tuple[int, ...]) -> int:
        """Total over the cores beginning at ``starts``."""
        extra = 0 if self.on_start is None else int(self.on_start[list(starts)].sum())
        return int(self.per_neuron.sum()) + extra


def convolutional(graph: nir.NIRGraph) -> set[str]:
    """Populations with a (C, H, W) shape fed only through convolutions, pools, flattens and
    delays (no Linear or Affine): every neuron of a channel uses the same kernel."""
    preds = predecessors(graph)
    found = set()
    for name, node in graph.nodes.items():
        if not isinstance(node, NEURON_TYPES) or len(node.input_type["input"]) != 3:
            continue
        stack, dense = list(preds[name]), False
        while stack and not dense:
            source = stack.pop()
            if not isinstance(graph.nodes[source], (nir.Input, *NEURON_TYPES)):
                dense = isinstance(graph.nodes[source], (nir.Linear, nir.Affine))
                stack.extend(preds[source])
        if not dense:
            found.add(name)
    return found


def _core_starts(neurons: int, neurons_per_core: int,
                 budgets: list[tuple[Cost, int]]) -> tuple[int, ...]:
    """Greedy consecutive blocks under every (cost, capacity); a neuron wider than a core
    still takes one core of its own (the allocation reports that as a violation)."""
    if not neurons_per_core and not budgets:
        return ()
    sums = [(np.concatenate([[0], np.cumsum(cost.per_neuron)]), cost, capacity)
            for cost, capacity in budgets]
    starts, start = [], 0
    while start < neurons:
        end = neurons if not neurons_per_core else min(neurons, start + neurons_per_core)
        for ends, cost, capacity in sums:
            room = capacity - (0 if cost.on_start is None else int(cost.on_start[start]))
            fits = int(np.searchsorted(ends, ends[start] + room, side="right")) - 1
            end = min(end, max(fits, start + 1))
        starts.append(start)
        start = end
    return tuple(starts)

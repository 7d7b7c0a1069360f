"""Operations and energy of one inference, next to the float ANN's multiply-accumulates.

A spiking chip spends energy per *synaptic operation* (one event reaching one synapse: a
graded spike is one event, whatever its payload) and per *neuron update* (every neuron,
every step). The reference simulator counts synaptic operations exactly per synapse layer
(``Trace.synops``, recorded unless ``Record.OUTPUT``); this module turns them into
per-sample figures and energy with the target's per-operation constants, whose source the
target file cites. The ANN's MACs count every weight of the same layers (dense), which is
what a conventional accelerator executes.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.backends import Trace
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import SYNAPSE_TYPES
from neurodeploy.errors import InputError
from neurodeploy.targets import Target


@dataclass(frozen=True)
class LayerOperations:
    name: str  #: the synapse node
    synops: float  #: synaptic operations per sample (over the window)
    ann_macs: int  #: the float ANN's multiply-accumulates for this layer, per sample


@dataclass(frozen=True)
class Operations:
    """Per-sample totals of one run (``trace``) of ``timesteps`` steps."""

    layers: tuple[LayerOperations, ...]
    neuron_updates: int  #: every neuron of every population, every step
    timesteps: int

    @property
    def synops(self) -> float:
        return sum(layer.synops for layer in self.layers)

    @property
    def ann_macs(self) -> int:
        return sum(layer.ann_macs for layer in self.layers)

    def energy_pj(self, target: Target) -> float:
        return energy_pj(self.synops, self.neuron_updates, target)

    def as_dict(self, target: Target) -> dict:
        return {"timesteps": self.timesteps, "synops": self.synops,
                "neuron_updates": self.neuron_updates, "ann_macs": self.ann_macs,
                "energy_pj": self.energy_pj(target), "energy_source": target.energy.source,
                "layers": [vars(layer) for layer in self.layers]}


def operations(graph: nir.NIRGraph, trace: Trace) -> Operations:
    """Per-sample operations of ``trace`` (a reference run that counted, e.g. Record.COUNTS)."""
    return count_operations(graph, trace.synops, len(trace.outputs), trace.timesteps)


def count_operations(graph: nir.NIRGraph, synops: dict[str, int], samples: int,
                     timesteps: int) -> Operations:
    """Per-sample operations from synaptic-operation counts summed over ``samples`` samples
    (e.g. several reference runs of ``timesteps`` steps, their ``Trace.synops`` added)."""
    synapses = [n for n, node in graph.nodes.items() if isinstance(node, SYNAPSE_TYPES)]
    missing = [n for n in synapses if n not in synops]
    if missing:
        raise InputError(f"the trace has no synaptic-operation counts for '{missing[0]}'",
                         hint="Run the reference backend with record=Record.COUNTS (or more)")
    layers = tuple(LayerOperations(n, synops[n] / samples, ann_macs(graph.nodes[n]))
                   for n in synapses)
    neurons = sum(int(np.prod(graph.nodes[p].input_type["input"])) for p in populations(graph))
    return Operations(layers, neurons * timesteps, timesteps)


def energy_pj(synops: float, neuron_updates: float, target: Target) -> float:
    """Synaptic operations and neuron updates times the target's per-operation energy."""
    return synops * target.energy.synop_pj + neuron_updates * target.energy.neuron_update_pj


def ann_macs(node: nir.NIRNode) -> int:
    """Multiply-accumulates of one synapse layer in the float ANN (every weight, every output
    position; a sum pool's window additions)."""
    outputs = int(np.prod(node.output_type["output"]))
    if isinstance(node, nir.Linear | nir.Affine):
        return outputs * int(np.asarray(node.weight).shape[1])
    if isinstance(node, nir.Conv2d):
        return outputs * int(np.prod(np.asarray(node.weight).shape[1:]))
    return outputs * int(np.prod(np.broadcast_to(np.asarray(node.kernel_size), (2,))))

"""Batched, exact integer simulator: the oracle every other backend is compared against.

It runs layer by layer over all timesteps at once: a synapse layer sees the whole spike
history of its source as one (T * batch) GEMM or convolution, then the population runs the
compiled neuron rule over T in one pass (``neuron.run``), reading the GEMM output and writing
the next GEMM's input in place. Integer sums are exact in float32 while every partial sum
stays below 2^24, which the static bound check proves (float64 is used otherwise). A
direct-encoded input is the same every step, so the first synapse layer is evaluated once.
Feature maps are kept channels-last in memory (same values, other strides): torch's CPU
convolution runs about twice as fast that way, and the neuron rule is elementwise.
Traces are in the ideal time frame; ``offsets`` records each window's pipeline shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import nir
import numpy as np
import torch

from neurodeploy.backends.base import Record, Trace
from neurodeploy.core import neuron
from neurodeploy.core.encoding import check_inputs, readout_logits
from neurodeploy.core.graph import hop_offsets, predecessors, readout_name, topological_order
from neurodeploy.core.meta import (
    SYNAPSE_TYPES,
    GraphMeta,
    get_graph_meta,
    longest_window,
    population_meta,
)
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.core.synapse import FLOAT32_EXACT, count_nonzero, fan_out, synapse
from neurodeploy.errors import InputError, MetadataError


@dataclass
class _Signal:
    """Values flowing along an edge: (T, B, ...) or, when constant over time, (B, ...)."""

    value: torch.Tensor
    constant: bool

    def over_time(self, timesteps: int) -> torch.Tensor:
        if self.constant:
            return self.value.unsqueeze(0).expand(timesteps, *self.value.shape)
        return self.value

    def apply(self, fn) -> _Signal:
        if self.constant:
            return _Signal(fn(self.value), True)
        steps, batch = self.value.shape[:2]
        out = fn(self.value.reshape(steps * batch, *self.value.shape[2:]))
        return _Signal(out.reshape(steps, batch, *out.shape[1:]), False)


class ReferenceBackend:
    name: ClassVar[str] = "reference"

    def __init__(self, exact_dtype: torch.dtype | None = None):
        self.exact_dtype = exact_dtype  #: force the GEMM dtype (tests); None: choose by bound

    def run(self, graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int, *,
            record: Record = Record.OUTPUT) -> Trace:
        gmeta = get_graph_meta(graph)
        if not gmeta.quantized:
            raise MetadataError("graph is not quantized; run the integer passes first")
        check_inputs(graph, inputs)
        _check_window(graph, timesteps)
        dtype = self.exact_dtype or _gemm_dtype(gmeta)
        preds = predecessors(graph)
        signals: dict[str, _Signal] = {}
        spikes, membranes, currents, events, synops = {}, {}, {}, {}, {}
        readout = readout_name(graph)
        order = topological_order(graph)
        last_use = _last_use(order, preds)
        for step, name in enumerate(order):
            for done in last_use.get(step - 1, ()):  # values no later node reads
                del signals[done]
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                signals[name] = _Signal(_channels_last(torch.as_tensor(inputs).to(dtype)), True)
                continue
            incoming = [signals[p] for p in preds[name]]
            if isinstance(node, NEURON_TYPES):
                keep_v = record.membranes or name == readout
                s, v, i = _run_population(graph, name, gmeta, incoming, timesteps, keep_v,
                                          dtype)
                signals[name] = _Signal(s, False)
                if record.counts and name != readout:
                    events[name] = count_nonzero(s, lead=2).numpy()
                if record.spikes and name != readout:
                    spikes[name] = np.ascontiguousarray(s.to(torch.int32).numpy())
                if keep_v:
                    membranes[name] = np.ascontiguousarray(v.numpy())
                if record.currents:
                    currents[name] = np.ascontiguousarray(i.to(torch.int32).numpy())
            elif isinstance(node, nir.Output | nir.Delay):
                # a delay (align_delays) only moves its path's window: in each population's
                # own window frame (Trace.offsets) its values pass through unchanged
                signals[name] = incoming[0]
            else:
                if record.counts and isinstance(node, SYNAPSE_TYPES):
                    synops[name] = _synaptic_ops(node, incoming[0], timesteps)
                signals[name] = incoming[0].apply(
                    lambda x, node=node: _channels_last(synapse(node, x)))
        output_steps = (membranes[readout] if record.membranes
                        else membranes.pop(readout)).astype(np.int64)
        outputs = output_steps[-1].copy()  # not a view: kept outputs must not keep every step
        return Trace(timesteps=timesteps, outputs=outputs,
                     logits=readout_logits(graph, outputs, timesteps),
                     output_steps=output_steps, spikes=spikes, membranes=membranes,
                     currents=currents, offsets=_population_offsets(graph, gmeta), events=events,
                     synops=synops)


def _run_population(graph, name, gmeta: GraphMeta, incoming: list[_Signal], timesteps: int,
                    keep_membranes: bool, dtype: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(spikes, membranes, synaptic currents), each (T, batch, *shape); spikes come back in
    the GEMM dtype, ready for the next synapse layer."""
    shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    params = population_meta(graph, name).neuron_params(shape)
    total = incoming[0]
    for sig in incoming[1:]:
        total = _Signal(total.over_time(timesteps) + sig.over_time(timesteps), False)
    currents = total.over_time(timesteps)  # exact integers in the GEMM dtype
    spikes = _steps_like(currents[0], timesteps, dtype)
    _, membranes = neuron.run(currents.numpy(), params, keep_membranes=keep_membranes,
                              spikes_out=spikes.numpy())
    return spikes, None if membranes is None else torch.from_numpy(membranes), currents


def _last_use(order: list[str], preds: dict[str, list[str]]) -> dict[int, list[str]]:
    """Position in ``order`` -> the nodes whose values are read for the last time there (a
    run frees them after it: the working memory is the live values, not the whole graph's)."""
    last = {name: position for position, name in enumerate(order)}
    for position, name in enumerate(order):
        for source in preds[name]:
            last[source] = position
    freed: dict[int, list[str]] = {}
    for name, position in last.items():
        freed.setdefault(position, []).append(name)
    return freed


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _steps_like(x: torch.Tensor, timesteps: int, dtype: torch.dtype) -> torch.Tensor:
    """An empty (T, *x.shape) buffer whose every step has ``x``'s memory layout (so the
    neuron kernel reads the currents without a copy)."""
    layout = (torch.channels_last if x.dim() == 4 and not x.is_contiguous()
              and x.is_contiguous(memory_format=torch.channels_last)
              else torch.contiguous_format)
    flat = torch.empty((timesteps * x.shape[0], *x.shape[1:]), dtype=dtype, memory_format=layout)
    return flat.view(timesteps, *x.shape)


def _synaptic_ops(node: nir.NIRNode, signal: _Signal, timesteps: int) -> int:
    """Events entering the layer (nonzero values, per position, over window and batch) times
    each position's fan-out."""
    events = count_nonzero(signal.value, lead=1) * timesteps if signal.constant \
        else count_nonzero(signal.value, lead=2)
    counts = events.numpy()
    return int((counts * fan_out(node, tuple(counts.shape))).sum())


def _gemm_dtype(gmeta: GraphMeta) -> torch.dtype:
    bound = gmeta.notes.get("check_overflow", {}).get("max_abs_synaptic_sum", FLOAT32_EXACT)
    return torch.float32 if bound < FLOAT32_EXACT else torch.float64


def _population_offsets(graph: nir.NIRGraph, gmeta: GraphMeta) -> dict[str, int]:
    offsets = hop_offsets(graph, gmeta.hop_delay)
    return {n: offsets[n] for n, node in graph.nodes.items() if isinstance(node, NEURON_TYPES)}


def _check_window(graph: nir.NIRGraph, timesteps: int) -> None:
    longest = longest_window(graph)
    if longest is not None and timesteps > longest:
        raise InputError(f"the network has per-step bias tables (FTBC) for {longest} steps; "
                         f"it cannot run {timesteps}",
                         hint=f"Use windows of at most {longest} steps, or compile for more")

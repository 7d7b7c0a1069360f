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
from neurodeploy.core.encoding import check_inputs, is_stream, readout_logits, step_inputs
from neurodeploy.core.graph import (
    cycles,
    hop_offsets,
    predecessors,
    readout_name,
    recurrent_delays,
    topological_order,
)
from neurodeploy.core.meta import SYNAPSE_TYPES, GraphMeta, get_graph_meta, population_meta
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.core.synapse import FLOAT32_EXACT, count_nonzero, dense, fan_out, synapse
from neurodeploy.errors import MetadataError


@dataclass
class _Signal:
    """Values flowing along an edge: (T, B, ...) or, when constant over time, (B, ...)."""

    value: torch.Tensor
    constant: bool

    def over_time(self, timesteps: int) -> torch.Tensor:
        if self.constant:
            return self.value.unsqueeze(0).expand(timesteps, *self.value.shape)
        return self.value

    def at(self, t: int) -> torch.Tensor:
        """The (B, ...) values of step t."""
        return self.value if self.constant else self.value[t]

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
        check_inputs(graph, inputs, timesteps)
        run = _Run(graph, record, timesteps, len(inputs), self.exact_dtype or _gemm_dtype(gmeta))
        preds = predecessors(graph)
        loops = {cycle[0]: cycle for cycle in cycles(graph)}
        looped = {name for cycle in loops.values() for name in cycle}
        order = topological_order(graph)
        last_use = _last_use(order, preds)
        for step, name in enumerate(order):
            for done in last_use.get(step - 1, ()):  # values no later node reads
                del run.signals[done]
            node = graph.nodes[name]
            if name in loops:
                run.cycle(loops[name], preds)
            if name in looped:
                continue
            if isinstance(node, nir.Input):
                run.signals[name] = _input_signal(graph, inputs, timesteps, run.dtype)
                continue
            incoming = [run.signals[p] for p in preds[name]]
            if isinstance(node, NEURON_TYPES):
                keep_v = record.membranes or name == run.readout
                s, v, i = _run_population(graph, name, incoming, timesteps, keep_v, run.dtype)
                run.population(name, s, v, i)
            elif isinstance(node, nir.Output | nir.Delay):
                # a delay (align_delays) only moves its path's window: in each population's
                # own window frame (Trace.offsets) its values pass through unchanged
                run.signals[name] = incoming[0]
            else:
                run.synapse(name, incoming[0],
                            incoming[0].apply(lambda x, node=node: dense(synapse(node, x))))
        return run.trace(_population_offsets(graph, gmeta))


class _Run:
    """One run's signals and records; populations and synapses computed over the whole
    window or, inside a cycle, step by step (``cycle``) are recorded the same way."""

    def __init__(self, graph: nir.NIRGraph, record: Record, timesteps: int, batch: int,
                 dtype: torch.dtype) -> None:
        self.graph, self.record = graph, record
        self.timesteps, self.batch, self.dtype = timesteps, batch, dtype
        self.readout = readout_name(graph)
        self.signals: dict[str, _Signal] = {}
        self.spikes: dict[str, np.ndarray] = {}
        self.membranes: dict[str, np.ndarray] = {}
        self.currents: dict[str, np.ndarray] = {}
        self.events: dict[str, np.ndarray] = {}
        self.synops: dict[str, int] = {}

    def population(self, name: str, s: torch.Tensor, v: torch.Tensor | None,
                   i: torch.Tensor) -> None:
        self.signals[name] = _Signal(s, False)
        if self.record.counts and name != self.readout:
            self.events[name] = count_nonzero(s, lead=2).numpy()
        if self.record.spikes and name != self.readout:
            self.spikes[name] = np.ascontiguousarray(s.to(torch.int32).numpy())
        if v is not None:
            self.membranes[name] = np.ascontiguousarray(v.numpy())
        if self.record.currents:
            self.currents[name] = np.ascontiguousarray(i.to(torch.int32).numpy())

    def synapse(self, name: str, incoming: _Signal, out: _Signal) -> None:
        if self.record.counts and isinstance(self.graph.nodes[name], SYNAPSE_TYPES):
            self.synops[name] = _synaptic_ops(self.graph.nodes[name], incoming, self.timesteps)
        self.signals[name] = out

    def cycle(self, members: list[str], preds: dict[str, list[str]]) -> None:
        """Run the nodes of a cycle together, one step at a time: a recurrent edge delivers
        its source's values ``recurrent_delays`` steps later (nothing before)."""
        delays = recurrent_delays(self.graph)
        outs: dict[str, list[torch.Tensor]] = {m: [] for m in members}
        states = {m: _StepState.of(self.graph, m, self.batch)
                  for m in members if isinstance(self.graph.nodes[m], NEURON_TYPES)}
        for t in range(self.timesteps):
            for m in members:
                parts = []
                for p in preds[m]:
                    late = t - delays.get((p, m), 0)
                    if p in outs and late >= 0:
                        parts.append(outs[p][late])
                    elif p not in outs:
                        parts.append(self.signals[p].at(t))
                node = self.graph.nodes[m]
                if m in states:
                    outs[m].append(states[m].step(sum(parts[1:], parts[0]), t, self.dtype))
                elif isinstance(node, nir.Output | nir.Delay):
                    outs[m].append(parts[0])
                else:
                    outs[m].append(synapse(node, parts[0]))
        for m in members:
            out = _Signal(torch.stack(outs[m]), False)
            if m in states:
                keep_v = self.record.membranes or m == self.readout
                self.population(m, out.value, states[m].membranes() if keep_v else None,
                                torch.stack(states[m].currents))
            else:  # its input, in the cycle or before it, is recorded by now
                self.synapse(m, self.signals[preds[m][0]], out)

    def trace(self, offsets: dict[str, int]) -> Trace:
        output_steps = (self.membranes[self.readout] if self.record.membranes
                        else self.membranes.pop(self.readout)).astype(np.int64)
        outputs = output_steps[-1].copy()  # not a view: kept outputs must not keep every step
        return Trace(timesteps=self.timesteps, outputs=outputs,
                     logits=readout_logits(self.graph, outputs, self.timesteps),
                     output_steps=output_steps, spikes=self.spikes, membranes=self.membranes,
                     currents=self.currents, offsets=offsets, events=self.events,
                     synops=self.synops)


@dataclass
class _StepState:
    """A population inside a cycle: the rule's state, advanced one step at a time."""

    kernel: neuron.Kernel
    state: tuple[np.ndarray, np.ndarray, np.ndarray]  #: (v, c, u)
    steps: list[np.ndarray]
    currents: list[torch.Tensor]

    @classmethod
    def of(cls, graph: nir.NIRGraph, name: str, batch: int) -> _StepState:
        shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
        params = population_meta(graph, name).neuron_params(shape)
        state = neuron.initial_state(params, np.empty((batch, *shape), np.int32))
        return cls(neuron.Kernel.of(params, state[0]), state, [], [])

    def step(self, current: torch.Tensor, t: int, dtype: torch.dtype) -> torch.Tensor:
        self.currents.append(current)
        spikes = self.kernel.step(*self.state, current.numpy(), t)
        self.steps.append(self.state[0].copy())
        return torch.from_numpy(spikes).to(dtype)

    def membranes(self) -> torch.Tensor:
        return torch.from_numpy(np.stack(self.steps))


def _input_signal(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int,
                  dtype: torch.dtype) -> _Signal:
    """A static input is one (B, ...) value for every step; a stream is (T, B, ...)."""
    if not is_stream(graph, inputs):
        return _Signal(dense(torch.as_tensor(inputs), dtype), True)
    steps = np.ascontiguousarray(step_inputs(graph, inputs, timesteps).swapaxes(0, 1))
    return _Signal(torch.as_tensor(steps).to(dtype), False)


def _run_population(graph, name, incoming: list[_Signal], timesteps: int,
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
        for source in preds[name]:  # a recurrent edge reads a later node: that one stays
            last[source] = max(last[source], position)
    freed: dict[int, list[str]] = {}
    for name, position in last.items():
        freed.setdefault(position, []).append(name)
    return freed


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
    """float32 where the recorded bound proves it exact; a missing or damaged note (notes are
    free-form) gets float64, exact for every sum the membrane widths allow."""
    bound = gmeta.notes.get("check_overflow", {}).get("max_abs_synaptic_sum", FLOAT32_EXACT)
    try:
        return torch.float32 if float(bound) < FLOAT32_EXACT else torch.float64
    except (TypeError, ValueError):
        return torch.float64


def _population_offsets(graph: nir.NIRGraph, gmeta: GraphMeta) -> dict[str, int]:
    offsets = hop_offsets(graph, gmeta.hop_delay)
    return {n: offsets[n] for n, node in graph.nodes.items() if isinstance(node, NEURON_TYPES)}

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

import dataclasses
from dataclasses import dataclass
from math import prod
from typing import ClassVar

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy import neuron
from neurodeploy.backends.base import Record, Trace
from neurodeploy.errors import InputError, MetadataError
from neurodeploy.graph import hop_offsets, predecessors, readout_name, topological_order
from neurodeploy.meta import (
    SYNAPSE_TYPES,
    GraphMeta,
    PopulationMeta,
    get_graph_meta,
    longest_window,
    param_for_shape,
    population_meta,
)

FLOAT32_EXACT = 1 << 24


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
        _check_inputs(graph, inputs)
        _check_window(graph, timesteps)
        dtype = self.exact_dtype or _gemm_dtype(gmeta)
        preds = predecessors(graph)
        signals: dict[str, _Signal] = {}
        spikes, membranes, events, synops = {}, {}, {}, {}
        readout = readout_name(graph)
        for name in topological_order(graph):
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                signals[name] = _Signal(_channels_last(torch.as_tensor(inputs).to(dtype)), True)
                continue
            incoming = [signals[p] for p in preds[name]]
            if isinstance(node, (nir.IF, nir.I)):
                keep_v = record is Record.ALL or name == readout
                s, v = _run_population(graph, name, gmeta, incoming, timesteps, keep_v, dtype)
                signals[name] = _Signal(s, False)
                if record.counts and name != readout:
                    events[name] = count_nonzero(s, lead=2).numpy()
                if record.spikes and name != readout:
                    spikes[name] = np.ascontiguousarray(s.to(torch.int32).numpy())
                if keep_v:
                    membranes[name] = np.ascontiguousarray(v.numpy())
            elif isinstance(node, nir.Output | nir.Delay):
                # a delay (align_delays) only moves its path's window: in each population's
                # own window frame (Trace.offsets) its values pass through unchanged
                signals[name] = incoming[0]
            else:
                if record.counts and isinstance(node, SYNAPSE_TYPES):
                    synops[name] = _synaptic_ops(node, incoming[0], timesteps)
                signals[name] = incoming[0].apply(
                    lambda x, node=node: _channels_last(_synapse(node, x)))
        output_steps = (membranes[readout] if record is Record.ALL
                        else membranes.pop(readout)).astype(np.int64)
        return Trace(timesteps=timesteps, outputs=output_steps[-1],
                     logits=readout_logits(graph, output_steps[-1], timesteps),
                     output_steps=output_steps, spikes=spikes, membranes=membranes,
                     offsets=_population_offsets(graph, gmeta), events=events,
                     synops=synops)


def readout_logits(graph: nir.NIRGraph, outputs: np.ndarray, timesteps: int) -> np.ndarray:
    """Integer readout membrane -> ANN units: one unit is 2**exponent, summed over T steps."""
    exponent = population_meta(graph, readout_name(graph)).exponent or 0
    return outputs * (2.0 ** exponent) / timesteps


def neuron_params(meta: PopulationMeta, shape: tuple[int, ...], membrane_bits: int
                  ) -> neuron.NeuronParams:
    """Integer NeuronParams (numpy int32) shaped to broadcast over a (batch, *shape) state."""

    def arr(value: np.ndarray) -> np.ndarray:
        return param_for_shape(np.asarray(value), shape).astype(np.int32)

    return neuron.NeuronParams(
        theta=arr(meta.theta), bias=arr(meta.bias), v_init=arr(meta.v_init),
        theta_neg=arr(meta.theta_neg), max_burst=int(meta.max_burst), dual=meta.dual,
        fires=meta.fires, membrane_bits=membrane_bits, input_shift=meta.input_shift,
        bias_table=None if meta.bias_table is None else
        np.stack([arr(row) for row in meta.bias_table]),
        decay=arr(meta.decay), hard_reset=meta.hard_reset)


def _run_population(graph, name, gmeta: GraphMeta, incoming: list[_Signal], timesteps: int,
                    keep_membranes: bool, dtype: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spikes come back in the GEMM dtype, ready for the next synapse layer."""
    shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    params = neuron_params(population_meta(graph, name), shape, gmeta.membrane_bits)
    total = incoming[0]
    for sig in incoming[1:]:
        total = _Signal(total.over_time(timesteps) + sig.over_time(timesteps), False)
    currents = total.over_time(timesteps)  # exact integers in the GEMM dtype
    spikes = _steps_like(currents[0], timesteps, dtype)
    _, membranes = neuron.run(currents.numpy(), params, keep_membranes=keep_membranes,
                              spikes_out=spikes.numpy())
    return spikes, None if membranes is None else torch.from_numpy(membranes)


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


def fan_out(node: nir.NIRNode, input_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses each input position of a synapse layer drives (its nonzero weights; every
    window position for a sum pool): the gradient of the layer's summed output over a
    0/1 pattern of its weights, so stride, padding, dilation and groups count exactly."""
    x = torch.ones((1, *input_shape), dtype=torch.float64, requires_grad=True)
    _synapse(nonzero_pattern(node), x).sum().backward()
    return np.rint(x.grad[0].numpy()).astype(np.int64)


def nonzero_pattern(node: nir.NIRNode) -> nir.NIRNode:
    """``node`` with every nonzero weight replaced by 1 (nodes without weights unchanged):
    propagating counts through it counts synapses."""
    if getattr(node, "weight", None) is None:
        return node
    return dataclasses.replace(node, weight=(np.asarray(node.weight) != 0).astype(np.float64))


def propagate(node: nir.NIRNode, values: np.ndarray) -> np.ndarray:
    """Float values (batch, *shape) of one step through a synapse layer, flatten or delay,
    computed as the simulator computes them (a delay only shifts time, so one step passes
    through unchanged). For analyses that must agree with the simulator."""
    if isinstance(node, nir.Delay):
        return values
    return _synapse(node, torch.as_tensor(values, dtype=torch.float64)).numpy()


def _synaptic_ops(node: nir.NIRNode, signal: _Signal, timesteps: int) -> int:
    """Events entering the layer (nonzero values, per position, over window and batch) times
    each position's fan-out."""
    events = count_nonzero(signal.value, lead=1) * timesteps if signal.constant \
        else count_nonzero(signal.value, lead=2)
    counts = events.numpy()
    return int((counts * fan_out(node, tuple(counts.shape))).sum())


def count_nonzero(x: torch.Tensor, lead: int) -> torch.Tensor:
    """int64 count of nonzero entries per position over the first ``lead`` axes.

    Reduces a 2-D view in memory order (channels-last maps stay channels-last): a reduction
    over strided axes of a bool tensor is several times slower. Float sums of 0/1 are exact
    below 2^24 terms."""
    rest = sorted(range(lead, x.dim()), key=lambda a: -x.stride(a))
    flat = x.permute(*range(lead), *rest).reshape(-1, prod(x.shape[a] for a in rest))
    exact = torch.float32 if flat.shape[0] < FLOAT32_EXACT else torch.float64
    counts = (flat != 0).to(exact).sum(0).to(torch.int64).view([x.shape[a] for a in rest])
    return counts.permute(*(rest.index(a) for a in range(lead, x.dim())))


def _synapse(node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    if isinstance(node, nir.Linear):
        return x @ torch.as_tensor(node.weight, dtype=dtype).T
    if isinstance(node, nir.Conv2d):
        return F.conv2d(x, torch.as_tensor(node.weight, dtype=dtype), None,
                        _pair(node.stride), _pair(node.padding), _pair(node.dilation),
                        int(node.groups))
    if isinstance(node, nir.SumPool2d):
        return F.avg_pool2d(x, _pair(node.kernel_size), _pair(node.stride), _pair(node.padding),
                            count_include_pad=True, divisor_override=1)
    if isinstance(node, nir.Flatten):
        return x.reshape(x.shape[0], -1)
    raise MetadataError(f"the reference simulator cannot run a {type(node).__name__} node")


def _pair(value) -> tuple[int, int]:
    arr = np.broadcast_to(np.asarray(value, dtype=np.int64), (2,))
    return int(arr[0]), int(arr[1])


def _gemm_dtype(gmeta: GraphMeta) -> torch.dtype:
    bound = gmeta.notes.get("check_overflow", {}).get("max_abs_synaptic_sum", FLOAT32_EXACT)
    return torch.float32 if bound < FLOAT32_EXACT else torch.float64


def _population_offsets(graph: nir.NIRGraph, gmeta: GraphMeta) -> dict[str, int]:
    offsets = hop_offsets(graph, gmeta.hop_delay)
    return {n: offsets[n] for n, node in graph.nodes.items() if isinstance(node, (nir.IF, nir.I))}


def _check_window(graph: nir.NIRGraph, timesteps: int) -> None:
    longest = longest_window(graph)
    if longest is not None and timesteps > longest:
        raise InputError(f"the network has per-step bias tables (FTBC) for {longest} steps; "
                         f"it cannot run {timesteps}",
                         hint=f"Use windows of at most {longest} steps, or compile for more")


def _check_inputs(graph: nir.NIRGraph, inputs: np.ndarray) -> None:
    from neurodeploy.graph import input_name

    name = input_name(graph)
    expected = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    if inputs.ndim != len(expected) + 1 or tuple(inputs.shape[1:]) != expected:
        raise InputError(f"input has shape {tuple(inputs.shape)}, the network expects "
                         f"(batch, {', '.join(map(str, expected))})")
    if not np.issubdtype(inputs.dtype, np.integer):
        raise InputError("inputs to a quantized network must be integers",
                         hint="Use neurodeploy.quantize_inputs() on float images")

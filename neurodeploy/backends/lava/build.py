"""NIR graph -> network of Lava processes: one process per NIR node, plus I/O.

Mapping (docs/backends/lava.md):
    nir.Input      -> io.source.RingBuffer holding every sample's input for its whole window
    nir.Linear     -> Dense, W = 2*w, weight_exp = -1, sign_mode MIXED (exact 8-bit signed)
    nir.Conv2d     -> Conv, kernel flipped and moved to (Cout, kw, kh, Cin/groups)
    nir.SumPool2d  -> Conv with a depthwise ones kernel (groups = C)
    nir.Flatten    -> a flattened view of the Lava port; the next Dense permutes its columns
    population     -> NeuronProcess (the rule's parameters, whole); inputs summed at a_in,
                      recurrent inputs (graph.back_edges) at r_in
    nir.Delay      -> DelayProcess (a ring buffer; align_delays puts one on a short path)
Every Dense/Conv delays by one step (lava-notes §2), so a population's window starts at its
hop count; the run lasts batch*T + max offset steps. All messages are graded (24 bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import nir
import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor
from lava.proc.io.source import RingBuffer as SourceBuffer
from lava.utils.weightutils import SignMode

from neurodeploy.backends.base import Record
from neurodeploy.backends.lava.layout import Layout
from neurodeploy.backends.lava.procs.process import DelayProcess, NeuronProcess
from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.encoding import step_inputs
from neurodeploy.core.graph import (
    back_edges,
    forward_predecessors,
    hop_offsets,
    readout_name,
    recurrent_delays,
    topological_order,
)
from neurodeploy.core.meta import GraphMeta, population_meta
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.errors import InputError, MetadataError, TargetLimitExceeded, UnsupportedLayer

LAVA_HOP_DELAY = 1  #: every Dense/Conv in lava-nc 0.10 delivers one step later
MESSAGE_BITS = 24  #: graded spikes; Dense/Conv pass any payload through when this is > 0
DENSE_WEIGHT = IntSpec(8)  #: exact in Dense's MIXED mode as 2*w with weight_exp=-1
CONV_GEOMETRY = IntSpec(8)  #: Conv keeps kernel size, stride, padding, dilation, groups as int8
MESSAGE = IntSpec(MESSAGE_BITS)
RECORD_BUFFER = 128  #: steps a recorder holds; the host drains them after each chunk


class _Signal(NamedTuple):
    """What flows out of a node: a Lava OutPort (or a view of it) and its layout."""

    port: Any
    layout: Layout


@dataclass
class LavaNetwork:
    """The processes of one run and where to read its records."""

    steps: int
    readout: str
    source: SourceBuffer | None = None
    populations: dict[str, NeuronProcess] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    #: ("spikes" | "membranes", population) -> Extractor streaming it to the host each step
    recorders: dict[tuple[str, str], Extractor] = field(default_factory=dict)
    processes: list[AbstractProcess] = field(default_factory=list)  #: one OS process each


def build_network(graph: nir.NIRGraph, gmeta: GraphMeta, inputs: np.ndarray, timesteps: int,
                  record: Record) -> LavaNetwork:
    """Create and connect the processes for ``inputs`` (batch, *shape) run back to back."""
    builder = _Builder(graph, gmeta, inputs, timesteps)
    preds = forward_predecessors(graph)
    for name in topological_order(graph):
        builder.add(name, [builder.signals[p] for p in preds[name]])
    for src, dst in sorted(back_edges(graph)):
        builder.signals[src].port.connect(builder.network.populations[dst].r_in)
    builder.attach_probes(record)
    return builder.network


class _Builder:
    def __init__(self, graph: nir.NIRGraph, gmeta: GraphMeta, inputs: np.ndarray,
                 timesteps: int) -> None:
        self.graph, self.gmeta, self.inputs, self.timesteps = graph, gmeta, inputs, timesteps
        self.hops = _hops(graph, gmeta)
        _check_messages(gmeta)
        self.recurrent = _recurrent_delays(graph)
        depth = max(hop for name, hop in self.hops.items()
                    if isinstance(graph.nodes[name], NEURON_TYPES))
        self.steps = len(inputs) * timesteps + depth
        self.signals: dict[str, _Signal] = {}
        self.network = LavaNetwork(steps=self.steps, readout=readout_name(graph))

    def add(self, name: str, incoming: list[_Signal]) -> None:
        node = self.graph.nodes[name]
        if isinstance(node, nir.Input):
            self.signals[name] = self._source(node)
        elif isinstance(node, nir.Output):
            return
        elif isinstance(node, NEURON_TYPES):
            self.signals[name] = self._population(name, node, incoming)
        elif isinstance(node, nir.Flatten):
            port, layout = _single(name, incoming)
            flat = port.flatten() if len(layout.lava_shape) > 1 else port
            self.signals[name] = _Signal(flat, layout.flattened())
        elif isinstance(node, nir.Delay):
            port, layout = _single(name, incoming)
            delay = DelayProcess(shape=layout.lava_shape, delay=_uniform_delay(name, node),
                                 name=name)
            self.network.processes.append(delay)
            port.connect(delay.a_in)
            self.signals[name] = _Signal(delay.s_out, layout)
        elif type(node) in _SYNAPSES:
            port, layout = _single(name, incoming)
            proc, out_layout = _SYNAPSES[type(node)](name, node, layout)
            self.network.processes.append(proc)
            port.connect(proc.s_in)
            self.signals[name] = _Signal(proc.a_out, out_layout)
        else:
            raise UnsupportedLayer(f"the Lava backend has no process for a "
                                   f"{type(node).__name__} node", node=name)

    def _source(self, node: nir.Input) -> _Signal:
        layout = Layout.native(tuple(node.input_type["input"]))
        if not MESSAGE.allowed(self.inputs):
            raise InputError(f"inputs must fit {MESSAGE} graded spikes on Lava")
        steps = step_inputs(self.graph, self.inputs, self.timesteps)
        per_step = layout.to_lava(steps.reshape(-1, *layout.nir_shape))
        data = np.zeros((self.steps, *layout.lava_shape), np.int32)
        data[:len(per_step)] = per_step  # sample k fills steps [k*T, (k+1)*T), then zeros
        self.network.source = SourceBuffer(data=np.moveaxis(data, 0, -1))
        self.network.processes.append(self.network.source)
        return _Signal(self.network.source.s_out, layout)

    def _population(self, name: str, node: nir.NIRNode, incoming: list[_Signal]) -> _Signal:
        shape = tuple(int(d) for d in node.input_type["input"])
        if not incoming:
            raise MetadataError("population has no input", node=name)
        layout = incoming[0].layout
        if layout.nir_shape != shape or not all(s.layout.matches(layout) for s in incoming):
            raise MetadataError(f"inputs of shapes {[s.layout.nir_shape for s in incoming]} do "
                                f"not fit the population's shape {shape}", node=name)
        p = population_meta(self.graph, name).neuron_params(shape)

        def lava(value: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
            """Broadcast a parameter (after ``lead`` axes) to the population, in Lava layout."""
            row = value.shape[len(lead):]
            value = value.reshape(lead + (1,) * (len(shape) - len(row)) + row)
            return layout.to_lava(np.broadcast_to(value, lead + shape))

        proc = NeuronProcess(shape=layout.lava_shape, params=p.map(lava),
                             window=self.timesteps, offset=self.hops[name],
                             recurrent_delay=self.recurrent.get(name, 0), name=name)
        for signal in incoming:
            signal.port.connect(proc.a_in)
        net = self.network
        net.populations[name], net.layouts[name], net.offsets[name] = proc, layout, self.hops[name]
        net.processes.append(proc)
        return _Signal(proc.s_out, layout)

    def attach_probes(self, record: Record) -> None:
        """Recorders on spikes (counted for COUNTS, kept for SPIKES and ALL) and membranes
        (the readout's; ALL: every one)."""
        net = self.network
        for name, proc in net.populations.items():
            if record.counts and name != net.readout:
                self._record("spikes", name, proc.s_out)
            if record.membranes or name == net.readout:
                self._record("membranes", name, proc.v_out)

    def _record(self, kind: str, name: str, port: Any) -> None:
        recorder = Extractor(shape=port.shape, buffer_size=RECORD_BUFFER)
        port.connect(recorder.in_port)
        self.network.recorders[kind, name] = recorder
        self.network.processes.append(recorder)


def _hops(graph: nir.NIRGraph, gmeta: GraphMeta) -> dict[str, int]:
    """Offsets on Lava; a graph whose merges were aligned for another hop delay is refused."""
    try:
        return hop_offsets(graph, LAVA_HOP_DELAY)
    except MetadataError as err:
        raise MetadataError(
            "paths into this node arrive at different steps on Lava, which delays every "
            f"synapse layer by {LAVA_HOP_DELAY} step", node=err.node,
            hint=f"The network was compiled for target '{gmeta.target}' (hop delay "
                 f"{gmeta.hop_delay}); recompile it for a pipelined target such as loihi2, "
                 "whose align_delays pass delays the shorter paths") from None


def _check_messages(gmeta: GraphMeta) -> None:
    """A population's summed synaptic input is one graded message on Lava: a sum past its
    bits wraps, and the run would differ from the reference without a word (a network
    compiled for a target of wider sums, such as reference). The bound is the one
    check_overflow recorded when the network was compiled."""
    largest = gmeta.notes.get("check_overflow", {}).get("max_abs_synaptic_sum", 0)
    if largest > MESSAGE.max:
        raise TargetLimitExceeded(
            node=gmeta.target or "network", limit="largest synaptic sum per step",
            value=largest, allowed=MESSAGE.max,
            hint=f"Lava's messages hold {MESSAGE_BITS} bits; compile the network for loihi2 "
                 "to run it on Lava")


def _recurrent_delays(graph: nir.NIRGraph) -> dict[str, int]:
    """Population -> the delay of the recurrent edges into it. The pipeline delivers each
    edge exactly that late; the population ignores its recurrent port for that many steps
    at the start of each window, where it would carry the previous sample's spikes."""
    delays: dict[str, int] = {}
    for (_, dst), delay in recurrent_delays(graph).items():
        if delays.setdefault(dst, delay) != delay:
            raise UnsupportedLayer("recurrent edges of different delays into one population "
                                   "cannot be separated on Lava", node=dst)
    return delays


def _uniform_delay(name: str, node: nir.Delay) -> int:
    steps = np.unique(np.asarray(node.delay))
    if len(steps) != 1 or steps[0] < 1 or steps[0] != int(steps[0]):
        raise UnsupportedLayer(f"delays {steps.tolist()} are not one positive whole number of "
                               "steps for the whole layer", node=name)
    return int(steps[0])


def _dense(name: str, node: nir.Linear, layout: Layout) -> tuple[AbstractProcess, Layout]:
    weight = _integers(name, node.weight)
    if weight.ndim != 2 or layout.nir_shape != (weight.shape[1],):
        raise MetadataError(f"Linear weight {weight.shape} does not fit its input of shape "
                            f"{layout.nir_shape}", node=name)
    if not DENSE_WEIGHT.allowed(weight):
        raise TargetLimitExceeded(node=name, limit="Dense weight", value=(
            int(weight.min()), int(weight.max())), allowed=(DENSE_WEIGHT.min, DENSE_WEIGHT.max))
    dense = Dense(weights=2 * weight[:, layout.order], weight_exp=-1, num_weight_bits=8,
                  sign_mode=SignMode.MIXED, num_message_bits=MESSAGE_BITS, name=name)
    return dense, Layout.native((weight.shape[0],))


def _conv2d(name: str, node: nir.Conv2d, layout: Layout) -> tuple[AbstractProcess, Layout]:
    weight = _integers(name, node.weight)  # (Cout, Cin/groups, kh, kw)
    if isinstance(node.padding, str):
        raise UnsupportedLayer(f"padding '{node.padding}' is not supported on Lava", node=name,
                               hint="Give the padding as numbers")
    # Lava convolves (kernel flipped) over (X, Y, C): flip and move to (Cout, kw, kh, Cin/g)
    kernel = weight.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :]
    return _conv(name, layout, kernel, node.stride, node.padding, node.dilation,
                 int(node.groups))


def _sum_pool(name: str, node: nir.SumPool2d, layout: Layout) -> tuple[AbstractProcess, Layout]:
    """A sum pool is a depthwise convolution with a ones kernel (zero padding counts too)."""
    kw, kh = _xy(name, "kernel_size", node.kernel_size)
    channels = layout.nir_shape[0]
    return _conv(name, layout, np.ones((channels, kw, kh, 1), np.int64), node.stride,
                 node.padding, 1, channels)


def _conv(name: str, layout: Layout, kernel: np.ndarray, stride: Any, padding: Any,
          dilation: Any, groups: int) -> tuple[AbstractProcess, Layout]:
    if len(layout.nir_shape) != 3 or not layout.matches(Layout.native(layout.nir_shape)):
        raise MetadataError(f"a convolution needs a (C, H, W) input, got {layout.nir_shape}",
                            node=name)
    if kernel.shape[3] * groups != layout.nir_shape[0]:
        raise MetadataError(f"kernel for {kernel.shape[3]} x {groups} input channels on a "
                            f"{layout.nir_shape[0]}-channel input", node=name)
    kernel, groups = _regroup(kernel, groups)
    _check_geometry(name, "kernel size", kernel.shape[1:3])
    conv = Conv(weight=np.ascontiguousarray(kernel), input_shape=layout.lava_shape,
                stride=_xy(name, "stride", stride), padding=_xy(name, "padding", padding),
                dilation=_xy(name, "dilation", dilation), groups=groups,
                num_message_bits=MESSAGE_BITS, name=name)
    x, y, channels = (int(d) for d in conv.output_shape)
    return conv, Layout.native((channels, y, x))


def _regroup(kernel: np.ndarray, groups: int) -> tuple[np.ndarray, int]:
    """The same convolution in at most 127 groups (Lava's Conv keeps ``groups`` in int8):
    consecutive groups merge into one, each output channel's kernel zero on the input channels
    of the groups merged into its own (a 512-channel sum pool or depthwise shortcut)."""
    fewer = max(g for g in range(1, min(groups, CONV_GEOMETRY.max) + 1) if groups % g == 0)
    merged = groups // fewer
    if merged == 1:
        return kernel, groups
    width = kernel.shape[3]
    slot = np.arange(len(kernel)) // (len(kernel) // groups) % merged  # place in its merge
    wide = np.zeros((*kernel.shape[:3], merged * width), kernel.dtype)
    for index in range(merged):
        wide[slot == index, :, :, index * width:(index + 1) * width] = kernel[slot == index]
    return wide, fewer


#: NIR synapse node type -> maker of its Lava process and output layout
_SYNAPSES: dict[type, Callable[[str, Any, Layout], tuple[AbstractProcess, Layout]]] = {
    nir.Linear: _dense, nir.Conv2d: _conv2d, nir.SumPool2d: _sum_pool}


def _xy(name: str, what: str, value: Any) -> tuple[int, int]:
    """A NIR (H, W) pair (or one number for both) as Lava's (X, Y) = (W, H)."""
    h, w = np.broadcast_to(np.asarray(value, dtype=np.int64), (2,))
    _check_geometry(name, what, (h, w))
    return int(w), int(h)


def _check_geometry(name: str, what: str, value: Any) -> None:
    if not CONV_GEOMETRY.allowed(np.asarray(value)):
        raise TargetLimitExceeded(node=name, limit=f"Conv {what}", value=value,
                                  allowed=f"at most {CONV_GEOMETRY.max} (Lava keeps it in int8)")


def _integers(name: str, value: np.ndarray) -> np.ndarray:
    array = np.asarray(value)
    rounded = np.rint(array).astype(np.int64)
    if not np.array_equal(rounded, array):
        raise MetadataError("weights are not integers; quantize the graph first", node=name)
    return rounded


def _single(name: str, incoming: list[_Signal]) -> _Signal:
    if len(incoming) != 1:
        raise MetadataError(f"node needs exactly one input, it has {len(incoming)}", node=name)
    return incoming[0]

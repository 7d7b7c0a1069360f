"""Random small quantized spiking networks, built directly as neurodeploy NIR graphs.

Hypothesis draws the structure (layer kinds, sizes, geometry, neuron options) so that
failures shrink to small networks; the array contents come from a drawn numpy seed.
Networks stay tiny (Lava forks one OS process per node), which also keeps every per-step
synaptic sum far below 2^23 (inputs <= 255, weights in [-128, 127], fan-in <= 18 on the
input, spikes <= 4 and fan-in <= 192 after it, a sum pool adding at most 25 of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
from hypothesis import strategies as st

from neurodeploy.core.meta import (
    GraphMeta,
    InputMeta,
    population_node,
    set_graph_meta,
    with_node_meta,
)
from neurodeploy.core.population import Population

GRANULARITIES = ("scalar", "channel", "neuron")


@dataclass
class Case:
    """A graph and the inputs to run it on for ``timesteps`` steps."""

    graph: nir.NIRGraph
    inputs: np.ndarray
    timesteps: int


@dataclass
class NetBuilder:
    """Adds nodes to a NIR graph while tracking each node's output shape (C, H, W) or (N,)."""

    rng: np.random.Generator
    timesteps: int
    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    records: dict[str, Population] = field(default_factory=dict)

    def add(self, name: str, node: nir.NIRNode, inputs: list[str], shape: tuple[int, ...]
            ) -> str:
        self.nodes[name] = node
        self.edges.extend((src, name) for src in inputs)
        self.shapes[name] = tuple(int(d) for d in shape)
        return name

    def input(self, shape: tuple[int, ...]) -> str:
        node = with_node_meta(nir.Input({"input": np.array(shape)}), InputMeta())
        return self.add("input", node, [], shape)

    def weights(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.integers(-128, 128, shape).astype(np.float64)

    def linear(self, name: str, src: str, n_out: int) -> str:
        (n_in,) = self.shapes[src]
        return self.add(name, nir.Linear(weight=self.weights((n_out, n_in))), [src], (n_out,))

    def conv(self, name: str, src: str, out_channels: int, kernel: tuple[int, int],
             stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
             groups: int) -> str:
        c, h, w = self.shapes[src]
        weight = self.weights((out_channels, c // groups, *kernel))
        node = nir.Conv2d(input_shape=(h, w), weight=weight, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, bias=np.zeros(out_channels))
        out = [_conv_size(n, k, s, p, d)
               for n, k, s, p, d in zip((h, w), kernel, stride, padding, dilation, strict=True)]
        return self.add(name, node, [src], (out_channels, *out))

    def pool(self, name: str, src: str, kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int]) -> str:
        c, h, w = self.shapes[src]
        node = nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                             padding=np.array(padding))
        out = [_conv_size(n, k, s, p, 1)
               for n, k, s, p in zip((h, w), kernel, stride, padding, strict=True)]
        return self.add(name, node, [src], (c, *out))

    def delay(self, name: str, src: str, steps: int) -> str:
        shape = self.shapes[src]
        return self.add(name, nir.Delay(delay=np.full(shape, float(steps))), [src], shape)

    def identity(self, name: str, src: str) -> str:
        """A 1:1 synapse layer (depthwise 1x1 conv) with one random weight per channel."""
        c, h, w = self.shapes[src]
        node = nir.Conv2d(input_shape=(h, w), weight=self.weights((c, 1, 1, 1)), stride=(1, 1),
                          padding=(0, 0), dilation=(1, 1), groups=c, bias=np.zeros(c))
        return self.add(name, node, [src], (c, h, w))

    def flatten(self, name: str, src: str) -> str:
        shape = self.shapes[src]
        node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
        return self.add(name, node, [src], (int(np.prod(shape)),))

    def population(self, name: str, inputs: list[str], meta: Population) -> str:
        self.records[name] = meta
        return self.add(name, population_node(meta, self.shapes[inputs[0]]), inputs,
                        self.shapes[inputs[0]])

    def param(self, shape: tuple[int, ...], granularity: str, low: int, high: int,
              lead: tuple[int, ...] = ()) -> np.ndarray:
        size = {"scalar": (), "channel": shape[:1], "neuron": shape}[granularity]
        return self.rng.integers(low, high + 1, lead + size)

    def graph(self, src: str, membrane_bits: int) -> nir.NIRGraph:
        self.add("output", nir.Output({"output": np.array(self.shapes[src])}), [src],
                 self.shapes[src])
        for name, record in self.records.items():
            self.nodes[name] = population_node(record.replace(membrane_bits=membrane_bits),
                                               self.shapes[name])
        graph = nir.NIRGraph(self.nodes, self.edges, type_check=False)
        set_graph_meta(graph, GraphMeta(quantized=True, hop_delay=1, timesteps=self.timesteps))
        return graph


@st.composite
def if_meta(draw, builder: NetBuilder, shape: tuple[int, ...]) -> Population:
    """Integer IF parameters, each scalar, per channel or per neuron; sometimes a per-step
    bias table (FTBC)."""
    theta = builder.param(shape, draw(st.sampled_from(GRANULARITIES)), 1, 500)
    theta_neg = -np.floor(builder.rng.random(theta.shape) * (theta + 1)).astype(np.int64)
    bias_table = builder.param(shape, draw(st.sampled_from(GRANULARITIES)), -100, 100,
                               (builder.timesteps,)) if draw(st.booleans()) else None
    return Population(
        kind="if", theta=theta, theta_neg=theta_neg,
        bias=builder.param(shape, draw(st.sampled_from(GRANULARITIES)), -300, 300),
        v_init=builder.param(shape, draw(st.sampled_from(GRANULARITIES)), -500, 500),
        max_burst=draw(st.integers(1, 4)), dual=draw(st.booleans()), bias_table=bias_table)


@st.composite
def readout_meta(draw, builder: NetBuilder, shape: tuple[int, ...]) -> Population:
    return Population(
        kind="readout", exponent=draw(st.integers(-4, 2)),
        bias=builder.param(shape, draw(st.sampled_from(GRANULARITIES)), -300, 300),
        v_init=builder.param(shape, draw(st.sampled_from(GRANULARITIES)), -500, 500))


@st.composite
def dense_stack(draw, builder: NetBuilder) -> str:
    """Input (N,) -> [Linear (+ a parallel Linear) -> IF] * k; returns the last node."""
    src = builder.input((draw(st.integers(1, 6)),))
    for i in range(draw(st.integers(0, 2))):
        n_out = draw(st.integers(1, 6))
        synapses = [builder.linear(f"fc{i}", src, n_out)]
        if draw(st.booleans()):  # a merge: the population sums two synapse outputs
            synapses.append(builder.linear(f"fc{i}b", src, n_out))
        src = builder.population(f"if{i}", synapses,
                                 draw(if_meta(builder, builder.shapes[synapses[0]])))
    return src


@st.composite
def conv_stack(draw, builder: NetBuilder) -> str:
    """Input (C, H, W) -> [Conv -> IF (-> SumPool)] * k (-> SumPool) -> Flatten."""
    src = builder.input((draw(st.integers(1, 2)), draw(st.integers(3, 6)),
                         draw(st.integers(3, 6))))
    for i in range(draw(st.integers(1, 2))):
        channels = builder.shapes[src][0]
        out_channels = draw(st.integers(1, 3))
        depthwise = out_channels % channels == 0 and channels > 1 and draw(st.booleans())
        geometry = [draw(_axis(n)) for n in builder.shapes[src][1:]]
        kernel, stride, padding, dilation = (tuple(g[j] for g in geometry) for j in range(4))
        conv = builder.conv(f"conv{i}", src, out_channels, kernel, stride, padding, dilation,
                            channels if depthwise else 1)
        src = builder.population(f"if{i}", [conv], draw(if_meta(builder, builder.shapes[conv])))
        if draw(st.booleans()):  # pooling feeds the next synapse directly: a 2-hop chain
            src = builder.pool(f"pool{i}", src, *_pool_geometry(draw, builder.shapes[src]))
    return builder.flatten("flat", src)


@st.composite
def residual_stack(draw, builder: NetBuilder, align: bool = True) -> str:
    """Input (C, H, W) -> Conv -> IF, then residual blocks -> (global SumPool) -> Flatten.

    A block's main path is one to three Conv -> IF stages ending in a Conv (the first may be
    strided); its shortcut is an identity (1x1 depthwise) or a 1x1 projection with the same
    stride. Both feed one IF population. With ``align`` a ``nir.Delay`` holds the shortcut
    back by the main path's extra hops, as align_delays does on a pipelined target.
    """
    src = builder.input((draw(st.integers(1, 2)), draw(st.integers(3, 5)),
                         draw(st.integers(3, 5))))
    stem = builder.conv("stem", src, draw(st.integers(1, 3)), (3, 3), (1, 1), (1, 1), (1, 1), 1)
    src = builder.population("if_stem", [stem], draw(if_meta(builder, builder.shapes[stem])))
    for b in range(draw(st.integers(1, 2))):
        channels = builder.shapes[src][0]
        out_channels = draw(st.integers(1, 3))
        stride = draw(st.sampled_from([1, 2])) if min(builder.shapes[src][1:]) > 2 else 1
        hops = draw(st.integers(1, 3))
        main = src
        for k in range(hops):
            kernel = draw(st.sampled_from([1, 3]))
            s = stride if k == 0 else 1
            main = builder.conv(f"b{b}conv{k}", main, out_channels, (kernel, kernel), (s, s),
                                (kernel // 2,) * 2, (1, 1), 1)
            if k < hops - 1:
                main = builder.population(f"b{b}if{k}", [main],
                                          draw(if_meta(builder, builder.shapes[main])))
        short = builder.delay(f"b{b}delay", src, hops - 1) if align and hops > 1 else src
        if stride == 1 and out_channels == channels and draw(st.booleans()):
            short = builder.identity(f"b{b}identity", short)
        else:
            short = builder.conv(f"b{b}proj", short, out_channels, (1, 1), (stride, stride),
                                 (0, 0), (1, 1), 1)
        src = builder.population(f"b{b}merge", [main, short],
                                 draw(if_meta(builder, builder.shapes[main])))
    if draw(st.booleans()):  # global pooling: a sum pool over the whole map
        src = builder.pool("gap", src, builder.shapes[src][1:], (1, 1), (0, 0))
    return builder.flatten("flat", src)


@st.composite
def _axis(draw, size: int) -> tuple[int, int, int, int]:
    """(kernel, stride, padding, dilation) along one axis of length ``size``, output >= 1."""
    padding = draw(st.integers(0, 1))
    dilation = draw(st.integers(1, 2))
    kernel = draw(st.integers(1, min(3, (size + 2 * padding - 1) // dilation + 1)))
    return kernel, draw(st.integers(1, 2)), padding, dilation


def _pool_geometry(draw, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    kernel = tuple(draw(st.integers(1, min(2, n))) for n in shape[1:])
    stride = tuple(draw(st.integers(1, 2)) for _ in kernel)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    return kernel, stride, padding


@st.composite
def networks(draw, stacks=(dense_stack, conv_stack)) -> Case:
    """A random quantized network (of one of ``stacks``) with its inputs and window length."""
    builder = NetBuilder(np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
                         timesteps=draw(st.integers(1, 16)))
    stack = draw(st.sampled_from(stacks))
    src = draw(stack(builder))
    if draw(st.booleans()):  # a hidden layer in front of the readout
        fc = builder.linear("fc_out", src, draw(st.integers(1, 5)))
        src = builder.population("if_out", [fc], draw(if_meta(builder, builder.shapes[fc])))
    fc = builder.linear("fc_readout", src, draw(st.integers(1, 4)))
    readout = builder.population("readout", [fc], draw(readout_meta(builder, builder.shapes[fc])))
    graph = builder.graph(readout, draw(st.sampled_from([12, 24])))
    shape = builder.shapes["input"]
    inputs = builder.rng.integers(0, 256, (draw(st.integers(1, 3)), *shape))
    return Case(graph, inputs, builder.timesteps)


def _conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1

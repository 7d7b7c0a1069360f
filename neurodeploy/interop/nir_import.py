r"""A NIR graph written by another tool -> neurodeploy's float SNN graph.

The result is the graph ``convert`` would have built (populations with their records,
synapses, a non-firing readout), so the usual integer passes quantize it for a target.
NIR's neurons are continuous-time; with the step ``dt`` they are discretized by forward
Euler, as the exporting simulators (snnTorch, Norse, ...) step them:

.. math::
    v[t] = v[t-1] + \frac{dt}{\tau}\,(v_{leak} - v[t-1] + R\,I[t])

so a LIF population gets the leak ``decay = round(4096 dt / tau)`` (Loihi's 12-bit voltage
decay), an input gain ``dt R / tau`` folded into the weights of its synapses, and a bias
``dt v_leak / tau``. IF has no leak and gain ``dt R``; CubaLIF's synaptic filter becomes the
rule's current filter ``current_decay = round(4096 dt / tau_syn)`` (Loihi's du), its input
gain ``w_in`` times that rounded fraction;
Threshold is a neuron that forgets its membrane every step. A spike is worth 1 in NIR;
converted graphs say a spike is worth theta, so weights are divided by the source's
threshold here and multiplied back by ``quantize_weights``.

The network's output becomes the readout: an I or LI node at the end is the readout
integrator; a spiking last layer is counted by an appended readout (identity weights), so
the prediction is the class with the most output spikes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

from neurodeploy import __version__, nir_compat
from neurodeploy.core.encoding import EVENT_INPUT
from neurodeploy.core.graph import (
    READOUT,
    back_edges,
    forward_predecessors,
    predecessors,
    recurrent_delays,
    topological_order,
)
from neurodeploy.core.meta import (
    KEY,
    GraphMeta,
    InputMeta,
    copy_graph,
    get_node_meta,
    population_node,
    set_graph_meta,
    with_node_meta,
)
from neurodeploy.core.population import NEURON_TYPES, Kind, Population, Reset
from neurodeploy.errors import InputError, MetadataError, UnsupportedLayer
from neurodeploy.interop.approximations import Approximation
from neurodeploy.interop.nir_neurons import NeuronModel, neuron_model
from neurodeploy.nir_compat import conv2d_node, replace_node
from neurodeploy.passes.sources import per_input_channel, synapse_source

METHOD = "nir-import"
RESETS = ("zero", "subtract")
SPIKING = (nir.IF, nir.LIF, nir.CubaLIF, nir.Threshold)
INTEGRATORS = (nir.I, nir.LI)
SYNAPSES = (nir.Linear, nir.Conv2d)  #: what the imported graph's synapse layers become


@dataclass
class _Value:
    """What a foreign node's output became: our node carrying it, its shape, and a factor
    (from Scale and AvgPool2d nodes) still to be multiplied into whatever consumes it."""

    name: str
    shape: tuple[int, ...]
    scale: np.ndarray


def read_foreign(path: str | Path) -> nir.NIRGraph:
    """Another tool's NIR file; one neurodeploy compiled is refused: its records (biases,
    bursts, the dual threshold) are not NIR, so importing it would drop them silently."""
    graph = nir_compat.read_file(path)
    if "neurodeploy" in graph.metadata:
        raise InputError(f"{path}: was compiled by neurodeploy; it runs as it is",
                         hint="Simulate, evaluate or verify it directly; export --flavor "
                              "standard writes plain NIR for other tools")
    return graph


def import_graph(foreign: nir.NIRGraph, *, dt: float, reset: str, timesteps: int,
                 events: bool = False) -> tuple[nir.NIRGraph, list[Approximation]]:
    """The float SNN graph for ``foreign`` and the approximations the import made; with
    ``events`` its input takes event counts (``EVENT_INPUT``), else values in [0, 1]."""
    if not 0 < dt < np.inf:
        raise InputError(f"dt must be positive and finite, got {dt}")
    if reset not in RESETS:
        raise InputError(f"reset must be one of {', '.join(RESETS)}, got '{reset}'")
    for name, node in foreign.nodes.items():
        for key in ("weight", "bias"):
            value = getattr(node, key, None)
            if value is not None and not np.isfinite(np.asarray(value, np.float64)).all():
                raise InputError(f"the file's {key} holds values that are not finite",
                                 node=name)
    importer = _Importer(foreign, dt, reset, EVENT_INPUT if events else InputMeta())
    for name in topological_order(foreign):
        importer.add(name)
    importer.close_cycles()
    graph = _fold_source_units(importer.finish())
    for name, node in graph.nodes.items():  # the gains scale with dt: an extreme one overflows
        if isinstance(node, SYNAPSES) and not np.isfinite(node.weight).all():
            raise InputError(f"--dt {dt} makes the weights overflow", node=name,
                             hint="Give the step the exporting tool simulates with")
    set_graph_meta(graph, GraphMeta(version=__version__, method=METHOD, timesteps=timesteps))
    return graph, importer.approximations + _late_cycles(graph)


def _late_cycles(graph: nir.NIRGraph) -> list[Approximation]:
    """A cycle of h >= 2 synapse layers delivers h steps later, NIR's reading one step
    (docs/concepts/timing.md#recurrent-edges)."""
    return [Approximation(dst, f"recurrent edge from {src}", "1 step later", f"{h} steps later",
                          "the pipelined chip's timing")
            for (src, dst), h in recurrent_delays(graph).items() if h > 1]


class _Importer:
    def __init__(self, foreign: nir.NIRGraph, dt: float, reset: str, inputs: InputMeta
                 ) -> None:
        self.foreign, self.dt, self.reset, self.inputs = foreign, dt, reset, inputs
        self.preds = forward_predecessors(foreign)
        self.back = back_edges(foreign)
        self.consumers = {name: [d for s, d in foreign.edges if s == name]
                          for name in foreign.nodes}
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.values: dict[str, _Value] = {}
        self.bias: dict[str, np.ndarray] = {}  #: our synapse -> its bias, moved to the neuron
        self.output: _Value | None = None
        self.approximations: list[Approximation] = []
        #: foreign neuron -> (our node, its record, its model, shape), for close_cycles
        self.neurons: dict[str, tuple[str, Population, NeuronModel, tuple[int, ...]]] = {}

    def add(self, name: str) -> None:
        node = self.foreign.nodes[name]
        if isinstance(node, nir.NIRGraph):
            raise UnsupportedLayer("nested NIR graphs (recurrent layers) are not supported",
                                   node=name)
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise UnsupportedLayer(f"NIR {type(node).__name__} nodes are not supported",
                                   node=name)
        incoming = [self.values[p] for p in self.preds[name]]
        if not isinstance(node, nir.Input) and not incoming:
            raise MetadataError("node has no input", node=name)
        handler(self, name, node, incoming)

    def close_cycles(self) -> None:
        """Connect the recurrent edges (a synapse back into an earlier neuron): their synapse
        exists only now; it gets its neuron's input gain, and its bias joins the neuron's."""
        for src, dst in sorted(self.back):
            if dst not in self.neurons:
                raise UnsupportedLayer(f"a recurrent edge from '{src}' must end at a neuron",
                                       node=dst)
            key, meta, model, shape = self.neurons[dst]
            value = self.values[src]
            if value.shape != shape or not isinstance(self.nodes[value.name], SYNAPSES):
                raise UnsupportedLayer("a neuron must be fed by synapse layers (Linear, "
                                       "Affine or Conv2d) of its own shape", node=dst)
            bias = meta.bias + self._connect(dst, value, model, shape)
            meta = meta.replace(bias=_compact(dst, "bias", bias, shape))
            self.nodes[key] = population_node(meta, shape)
            self.neurons[dst] = key, meta, model, shape
            self.edges.append((value.name, key))

    def finish(self) -> nir.NIRGraph:
        if self.output is None:
            raise MetadataError("the graph has no Output node")
        value = self.output
        if not _is_population(self.nodes.get(value.name), Kind.READOUT):
            value = self._counting_readout(value)
        self._emit("output", nir.Output({"output": np.array(value.shape)}), [value])
        return nir.NIRGraph(self.nodes, self.edges)

    # -- nodes --------------------------------------------------------------------------

    def _input(self, name: str, node: nir.Input, incoming: list[_Value]) -> None:
        shape = _shape(node.input_type["input"])
        if not shape or min(shape) < 1:
            raise MetadataError(f"the input has no values (shape {shape})", node=name)
        self._emit(name, with_node_meta(nir.Input({"input": np.array(shape)}), self.inputs),
                   [], shape)

    def _output(self, name: str, node: nir.Output, incoming: list[_Value]) -> None:
        if self.output is not None or len(incoming) != 1:
            raise UnsupportedLayer("the graph must have one Output with one input", node=name)
        (self.output,) = incoming
        if not np.all(self.output.scale == 1):
            raise UnsupportedLayer("a Scale right before the output is not supported",
                                   node=name)

    def _weighted(self, name: str, node: nir.NIRNode, incoming: list[_Value]) -> None:
        (src,) = incoming
        consumers = self.consumers[name]
        if len(consumers) != 1:
            raise UnsupportedLayer(f"a synapse layer must feed exactly one node, this one feeds "
                                   f"{len(consumers)}", node=name)
        weight = np.asarray(node.weight, np.float64)
        groups = int(getattr(node, "groups", 1))
        weight = weight * per_input_channel(weight, groups, _per_channel(name, src.scale))
        if isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str):
                raise UnsupportedLayer(f"padding '{node.padding}' is not supported", node=name,
                                       hint="Export the padding as numbers")
            ours: nir.NIRNode = conv2d_node(
                input_shape=src.shape[1:], weight=weight, stride=node.stride,
                padding=node.padding, dilation=node.dilation, groups=groups,
                bias=np.zeros(weight.shape[0]))
            shape = _conv_shape(src.shape, ours)
            bias = np.asarray(node.bias, np.float64)
        else:
            if src.shape != (weight.shape[1],):
                raise MetadataError(f"weight {weight.shape} does not fit its input of shape "
                                    f"{src.shape}", node=name)
            ours, shape = nir.Linear(weight=weight), (weight.shape[0],)
            bias = np.asarray(getattr(node, "bias", np.zeros(weight.shape[0])), np.float64)
        if bias.size not in (1, weight.shape[0]):
            raise MetadataError(f"bias of {bias.size} values does not fit {weight.shape[0]} "
                                "outputs", node=name)
        self.bias[self._emit(name, ours, [src], shape)] = np.broadcast_to(
            bias.reshape(-1), (weight.shape[0],)).copy()

    def _pool(self, name: str, node: nir.NIRNode, incoming: list[_Value]) -> None:
        (src,) = incoming
        kernel, stride, padding = (np.broadcast_to(np.asarray(value, np.int64), (2,))
                                   for value in (node.kernel_size, node.stride, node.padding))
        pool = nir.SumPool2d(kernel_size=kernel, stride=stride, padding=padding)
        shape = _conv_shape(src.shape, pool)
        out = self._emit(name, pool, [src], shape)
        scale = _per_channel(name, src.scale).reshape(-1, 1, 1)
        if isinstance(node, nir.AvgPool2d):
            scale = scale / float(np.prod(kernel))
        self.values[name] = _Value(out, shape, np.broadcast_to(scale, shape))

    def _flatten(self, name: str, node: nir.Flatten, incoming: list[_Value]) -> None:
        (src,) = incoming
        start, end = int(node.start_dim), int(node.end_dim)
        if start % len(src.shape) != 0 or end % len(src.shape) != len(src.shape) - 1:
            raise UnsupportedLayer("only a flatten of every dimension is supported", node=name)
        if len(src.shape) == 1:  # nothing to flatten: pass the value through
            self.values[name] = src
            return
        shape = (int(np.prod(src.shape)),)
        out = self._emit(name, nir.Flatten(input_type={"input": np.array(src.shape)},
                                           start_dim=0), [src], shape)
        self.values[name] = _Value(out, shape, np.asarray(src.scale).reshape(-1))

    def _scale(self, name: str, node: nir.Scale, incoming: list[_Value]) -> None:
        (src,) = incoming
        factor = np.broadcast_to(np.asarray(node.scale, np.float64), src.shape)
        self.values[name] = dataclasses.replace(src, scale=src.scale * factor)

    def _neuron(self, name: str, node: nir.NIRNode, incoming: list[_Value]) -> None:
        shape = incoming[0].shape
        model = neuron_model(name, node, self.dt, shape)
        for src in incoming:
            if src.shape != shape or not isinstance(self.nodes[src.name], SYNAPSES):
                raise UnsupportedLayer("a neuron must be fed by synapse layers (Linear, "
                                       "Affine or Conv2d) of its own shape", node=name)
        bias = model.bias
        for src in incoming:
            bias = bias + self._connect(name, src, model, shape)
        self.approximations += model.approximations
        theta = _compact(name, "v_threshold", model.theta, shape)
        common = {"bias": _compact(name, "bias", bias, shape),
                  "decay": _compact(name, "tau", model.decay, shape), "source": name}
        if isinstance(node, INTEGRATORS):
            meta = Population(kind="readout", **common)
        else:
            if np.any(theta <= 0):
                raise UnsupportedLayer("thresholds must be positive", node=name)
            current_decay = _compact(name, "tau_syn", model.current_decay, shape)
            meta = Population(kind="if", theta=theta, v_init=np.array(0.0),
                              theta_neg=np.array(0.0), current_decay=current_decay,
                              reset=self._reset(name, node), **common)
        key = self._emit(name, population_node(meta, shape), incoming, shape)
        self.neurons[name] = key, meta, model, shape

    def _delay(self, name: str, node: nir.Delay, incoming: list[_Value]) -> None:
        raise UnsupportedLayer("nir.Delay cannot be imported: it shifts spikes in time within "
                               "the network, while neurodeploy's delays only align pipeline "
                               "hops (the ideal network the simulators run has none)",
                               node=name)

    # -- helpers ------------------------------------------------------------------------

    def _reset(self, name: str, node: nir.NIRNode) -> Reset:
        """NIR resets to v_reset; only 0 is expressible. ``--reset subtract`` follows tools
        (snnTorch's default) that export v_reset = 0 but subtract the threshold."""
        if isinstance(node, nir.Threshold):
            return Reset.ZERO  # the membrane is forgotten every step anyway
        v_reset = getattr(node, "v_reset", None)
        if self.reset == "subtract":
            self.approximations.append(Approximation(
                name, "reset", "to v_reset (NIR)", "by subtraction (reset subtract)",
                "as requested"))
            return Reset.SUBTRACT
        if v_reset is not None and np.any(np.asarray(v_reset) != 0):
            raise UnsupportedLayer("v_reset other than 0 cannot be expressed", node=name,
                                   hint="Only reset to 0 or reset by subtraction "
                                        "(reset=\"subtract\", --reset subtract) are supported")
        return Reset.ZERO

    def _connect(self, neuron: str, src: _Value, model: NeuronModel, shape: tuple[int, ...]
                 ) -> np.ndarray:
        """Fold the neuron's input gain into synapse ``src``; returns the synapse's bias as
        the neuron's bias contribution."""
        scale = np.broadcast_to(src.scale, shape)
        gain = model.gain * scale
        node = self.nodes[src.name]
        if isinstance(node, nir.Linear):
            factor = np.asarray(gain).reshape(-1)[:, None]
        else:
            factor = _per_channel(neuron, gain).reshape(-1, 1, 1, 1)
        self.nodes[src.name] = replace_node(node, weight=node.weight * factor)
        bias = self.bias[src.name].reshape((-1,) + (1,) * (len(shape) - 1))
        return bias * model.gain * scale

    def _counting_readout(self, value: _Value) -> _Value:
        """Count the last layer's spikes: identity weights into a non-firing integrator."""
        if not _is_population(self.nodes[value.name], Kind.IF):
            raise UnsupportedLayer("the output must come from a neuron population or an "
                                   "integrator", node=value.name)
        if len(value.shape) > 1:
            flat = (int(np.prod(value.shape)),)
            value = _Value(self._emit(f"{value.name}_flat", nir.Flatten(
                input_type={"input": np.array(value.shape)}, start_dim=0), [value], flat),
                flat, np.ones(flat))
        size = value.shape[0]
        counts = self._emit(f"{READOUT}_weights", nir.Linear(weight=np.eye(size)), [value],
                            value.shape)
        meta = Population(kind="readout", v_init=np.array(0.0), source=value.name)
        name = self._emit(READOUT, population_node(meta, (size,)),
                          [_Value(counts, value.shape, np.ones(1))], value.shape)
        return _Value(name, value.shape, np.ones(1))

    def _emit(self, name: str, node: nir.NIRNode, inputs: list[_Value],
              shape: tuple[int, ...] | None = None) -> str:
        key = name.replace("/", "_")
        while key in self.nodes:
            key = f"{key}_"
        self.nodes[key] = node
        self.edges.extend((v.name, key) for v in inputs)
        if shape is not None:
            self.values[name] = _Value(key, shape, np.ones(shape))
        return key


def _fold_source_units(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Weights so far multiply what arrives (spike counts, or input values); converted graphs
    hold weights per ANN unit of the source (a spike is worth theta), which quantize_weights
    multiplies back. Divide by that unit here so it gets the imported weights exactly."""
    new_nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, SYNAPSES):
            unit = np.asarray(synapse_source(graph, name).unit, np.float64)
            ratio = per_input_channel(node.weight, int(getattr(node, "groups", 1)),
                                      value_unit(graph, name) / unit)
            new_nodes[name] = replace_node(node, weight=node.weight * ratio)
    return copy_graph(graph, new_nodes)


def value_unit(graph: nir.NIRGraph, synapse: str) -> float:
    """What one integer reaching ``synapse`` is worth in the imported network's terms: a
    spike counts 1; an input integer is worth the input scale."""
    preds = predecessors(graph)
    name = preds[synapse][0]
    while not (isinstance(graph.nodes[name], nir.Input)
               or _is_population(graph.nodes[name], Kind.IF)):
        name = preds[name][0]
    if isinstance(graph.nodes[name], nir.Input):
        return get_node_meta(graph.nodes[name], InputMeta, name).scale
    return 1.0


_HANDLERS = {
    nir.Input: _Importer._input, nir.Output: _Importer._output,
    nir.Linear: _Importer._weighted, nir.Affine: _Importer._weighted,
    nir.Conv2d: _Importer._weighted, nir.SumPool2d: _Importer._pool,
    nir.AvgPool2d: _Importer._pool, nir.Flatten: _Importer._flatten,
    nir.Scale: _Importer._scale, nir.Delay: _Importer._delay,
    **dict.fromkeys((*SPIKING, *INTEGRATORS), _Importer._neuron),
}


def _shape(value) -> tuple[int, ...]:
    return tuple(int(d) for d in np.asarray(value).reshape(-1))


def _conv_shape(shape: tuple[int, ...], node: nir.NIRNode) -> tuple[int, ...]:
    from neurodeploy.core.synapse import propagate

    if len(shape) != 3:
        raise MetadataError(f"needs a (C, H, W) input, got {shape}")
    return tuple(propagate(node, np.zeros((1, *shape))).shape[1:])


def _per_channel(name: str, value: np.ndarray) -> np.ndarray:
    """A factor over a value's shape as a scalar or per-channel vector (what weights can
    absorb); spatially varying factors on feature maps cannot be folded."""
    arr = np.asarray(value, np.float64)
    if arr.ndim == 0 or np.all(arr == arr.reshape(-1)[0]):
        return np.asarray(arr.reshape(-1)[0] if arr.size else 1.0)
    if arr.ndim == 1:
        return arr
    channels = arr.reshape(arr.shape[0], -1)
    if np.all(channels == channels[:, :1]):
        return channels[:, 0]
    raise UnsupportedLayer("a factor that varies within a channel cannot be folded into "
                           "convolution weights", node=name)


def _compact(name: str, what: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A population parameter as scalar, per channel or per neuron (the metadata forms)."""
    arr = np.broadcast_to(np.asarray(value), shape)
    if np.all(arr == arr.reshape(-1)[0]):
        return np.asarray(arr.reshape(-1)[0])
    if len(shape) == 1:
        return np.asarray(arr)
    channels = arr.reshape(shape[0], -1)
    if np.all(channels == channels[:, :1]):
        return channels[:, 0].copy()
    if what == "v_threshold":
        raise UnsupportedLayer("thresholds that vary within a channel are not supported",
                               node=name)
    return np.asarray(arr).copy()


def _is_population(node: nir.NIRNode | None, kind: Kind) -> bool:
    """Whether ``node`` is one of the graph's own populations of that kind (imported nodes
    have no record yet)."""
    return isinstance(node, NEURON_TYPES) and KEY in node.metadata and \
        get_node_meta(node, Population).kind is kind

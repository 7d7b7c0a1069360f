"""ANN graph -> float SNN graph in NIR (design.md §1-2).

Each activation becomes an integrate-and-fire population with reset by subtraction; the
bias of the synapse layer in front of it moves into the population (a neuron, not a
synapse, adds bias on every chip we target); the last Linear becomes the non-firing readout
integrator. Values stay in ANN units here; the integer passes fold thresholds into weights
and round everything afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy import __version__
from neurodeploy.convert.concat import check_readers, split_weight
from neurodeploy.core.graph import READOUT
from neurodeploy.core.meta import (
    GraphMeta,
    InputMeta,
    population_node,
    set_graph_meta,
    with_node_meta,
)
from neurodeploy.core.population import Population
from neurodeploy.errors import InputError, UnsupportedLayer, whole_number
from neurodeploy.frontend.ann import ACTIVATIONS, AnnGraph, AnnNode
from neurodeploy.nir_compat import conv2d_node


@dataclass(frozen=True)
class ConvertOptions:
    timesteps: int = 4
    max_burst: int = 1
    dual: bool = False
    theta_neg_ratio: float = 0.5  #: negative threshold = -ratio * theta (dual threshold)
    v_init_ratio: float = 0.5  #: v_init = ratio * theta; 1/2 turns floor into round
    per_channel: bool = True  #: thresholds per output channel (per layer when False)

    def __post_init__(self) -> None:
        """Checked and normalized here, with errors that name the user's fields."""
        valid = {"timesteps": whole_number(self.timesteps, "options.timesteps"),
                 "max_burst": whole_number(self.max_burst, "options.max_burst")}
        for name in ("dual", "per_channel"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise InputError(f"options.{name} must be True or False, got {value!r}")
            valid[name] = bool(value)
        for name, what in (("theta_neg_ratio", "theta_neg = -ratio * theta"),
                           ("v_init_ratio", "v_init = ratio * theta")):
            value = getattr(self, name)
            number = isinstance(value, int | float | np.integer | np.floating) \
                and not isinstance(value, bool)
            if not number or not 0 <= value <= 1:
                raise InputError(f"options.{name} must be a number in [0, 1] ({what}), got "
                                 f"{value!r}")
            valid[name] = float(value)
        for name, value in valid.items():
            object.__setattr__(self, name, value)


def to_snn(ann: AnnGraph, thresholds: dict[str, float | np.ndarray],
           options: ConvertOptions) -> nir.NIRGraph:
    """Build the float SNN; ``thresholds`` maps each activation node to its theta."""
    builder = _Builder(ann, thresholds, options)
    for node in ann.nodes:
        builder.add(node)
    graph = builder.finish()
    set_graph_meta(graph, GraphMeta(version=__version__, timesteps=options.timesteps))
    return graph


class _Builder:
    def __init__(self, ann: AnnGraph, thresholds, options: ConvertOptions):
        self.ann, self.thresholds, self.options = ann, thresholds, options
        self.shapes = ann.shapes()
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.produced: dict[str, str] = {}  # ANN node -> NIR node carrying its value
        self.pending_bias: dict[str, np.ndarray] = {}  # synapse -> bias moved to its population
        self.merges: dict[str, list[str]] = {}  # residual add or split layer -> its synapses
        self.concats: dict[str, list[str]] = {}  # concatenation (or its flatten) -> its parts

    def add(self, node: AnnNode) -> None:
        handler = getattr(self, f"_{node.op}", None)
        if handler is None:
            raise UnsupportedLayer(f"op '{node.op}' is not supported by the converter yet",
                                   node=node.name)
        handler(node)

    def finish(self) -> nir.NIRGraph:
        out = self.ann.node(self.ann.output)
        if out.op != "linear":
            raise UnsupportedLayer(f"the network must end with a Linear layer (the readout), "
                                   f"it ends with '{out.op}'", node=out.name)
        shape = self.shapes[out.name]
        synapses, bias = self._population_inputs(out.name)
        readout = population_node(Population(
            kind="readout", bias=np.asarray(bias, np.float64), v_init=np.array(0.0),
            source=out.name), shape)
        self._emit(READOUT, readout, synapses)
        self._emit("output", nir.Output({"output": np.array(shape)}), [READOUT])
        return nir.NIRGraph(self.nodes, self.edges)

    def _input(self, node: AnnNode) -> None:
        shape = np.array(self.shapes[node.name])
        self._emit(node.name, with_node_meta(nir.Input({"input": shape}), InputMeta()), [])

    def _linear(self, node: AnnNode) -> None:
        self._synapse_layer(node, lambda part, w: nir.Linear(weight=w))

    def _conv2d(self, node: AnnNode) -> None:
        p = node.params

        def conv(part: str, weight: np.ndarray) -> nir.Conv2d:
            return conv2d_node(input_shape=tuple(self.shapes[part][1:]), weight=weight,
                               stride=tuple(p["stride"]), padding=tuple(p["padding"]),
                               dilation=tuple(p["dilation"]), groups=int(p["groups"]),
                               bias=np.zeros(weight.shape[0]))

        self._synapse_layer(node, conv)

    def _synapse_layer(self, node: AnnNode, make) -> None:
        """``make(source, weight)`` once; or once per part when ``node`` reads a concatenation
        (the parts then merge in the next population, see convert/concat.py)."""
        self._require_spikes(node)
        weight = np.asarray(node.params["weight"], np.float64)
        parts = self.concats.get(node.inputs[0])
        if parts is None:
            self._emit(node.name, make(node.inputs[0], weight), node.inputs)
            self._keep_bias(node)
            return
        keys = []
        slices = split_weight(weight, [self.shapes[part][0] for part in parts])
        for k, (part, piece) in enumerate(zip(parts, slices, strict=True)):
            self._emit(f"{node.name}.part{k}", make(part, piece), [part])
            keys.append(self.produced[f"{node.name}.part{k}"])
            self.pending_bias[keys[-1]] = np.zeros(weight.shape[0])
        self._keep_bias(node, keys[0])
        self.merges[node.name] = keys

    def _activation(self, node: AnnNode) -> None:
        source = self.ann.node(node.inputs[0])
        if source.op not in ("linear", "conv2d", "add"):
            raise UnsupportedLayer(f"{node.op} must directly follow a Linear or Conv2d layer "
                                   f"or a residual add, it follows '{source.op}'",
                                   node=node.name,
                                   hint="Put pooling and flattening after the activation")
        synapses, bias = self._population_inputs(source.name)
        shape = self.shapes[node.name]
        theta = np.asarray(self.thresholds[node.name], np.float64)
        o = self.options
        meta = Population(kind="if", theta=theta, bias=np.asarray(bias, np.float64),
                          v_init=o.v_init_ratio * theta, theta_neg=-o.theta_neg_ratio * theta,
                          max_burst=o.max_burst, dual=o.dual, source=node.name)
        self._emit(node.name, population_node(meta, shape), synapses)

    def _add(self, node: AnnNode) -> None:
        """A residual merge: every summand becomes synapses into the population of the
        activation after it (a spiking summand, such as an identity shortcut, gets a 1:1
        synapse layer whose weight is its spike value)."""
        readers = self.ann.consumers(node.name)
        if len(readers) != 1 or readers[0].op not in ACTIVATIONS:
            raise UnsupportedLayer("a residual add must be followed by a ReLU and nothing else "
                                   "(the sum becomes one population's input)", node=node.name,
                                   hint="Write relu(conv(x) + shortcut(x))")
        if len(set(node.inputs)) < len(node.inputs):
            raise UnsupportedLayer("a residual add of a value to itself", node=node.name,
                                   hint="Scale the layer before it instead (h + h is 2 * h)")
        synapses: list[str] = []
        for k, name in enumerate(node.inputs):
            source = self.ann.node(name)
            if name in self.merges:  # a residual add, or a layer split over a concatenation
                synapses += self.merges.pop(name)
            elif source.op in ("linear", "conv2d") and self.produced[name] in self.pending_bias:
                synapses.append(self.produced[name])
            else:
                synapses.append(self._identity(f"{node.name}.shortcut{k}", name))
        self.merges[node.name] = synapses

    _relu = _activation
    _clip = _activation

    def _avgpool2d(self, node: AnnNode) -> None:
        self._require_spikes(node)
        p = node.params
        self._emit(node.name, nir.SumPool2d(kernel_size=np.array(p["kernel_size"]),
                                            stride=np.array(p["stride"]),
                                            padding=np.array(p["padding"])), node.inputs)

    def _adaptive_avgpool2d(self, node: AnnNode) -> None:
        """Average pooling to a fixed output size is a sum pool whose window tiles the input
        exactly; the 1/window scale is folded into the next weights like AvgPool2d's."""
        self._require_spikes(node)
        _, height, width = self.shapes[node.inputs[0]]
        out_h, out_w = node.params["output_size"]
        if height % out_h or width % out_w:
            raise UnsupportedLayer(f"adaptive average pooling from {height}x{width} to "
                                   f"{out_h}x{out_w} has windows of different sizes",
                                   node=node.name, hint="Use an output size that divides the "
                                                        "input size, or AvgPool2d")
        window = np.array([height // out_h, width // out_w])
        self._emit(node.name, nir.SumPool2d(kernel_size=window, stride=window,
                                            padding=np.array([0, 0])), node.inputs)

    def _cat(self, node: AnnNode) -> None:
        """No node: the layers reading it are split (convert/concat.py)."""
        check_readers(self.ann, node, self.shapes)
        self._require_spikes(node)
        self.concats[node.name] = list(node.inputs)

    def _flatten(self, node: AnnNode) -> None:
        self._require_spikes(node)
        parts = self.concats.get(node.inputs[0], [node.inputs[0]])
        names = [node.name] if len(parts) == 1 else [f"{node.name}.part{k}"
                                                      for k in range(len(parts))]
        for name, part in zip(names, parts, strict=True):
            shape = np.array(self.shapes[part])
            self._emit(name, nir.Flatten(input_type={"input": shape}, start_dim=0), [part])
            self.shapes[name] = (int(np.prod(shape)),)
        if len(parts) > 1:
            self.concats[node.name] = names

    def _emit(self, name: str, nir_node: nir.NIRNode, inputs: list[str] | tuple[str, ...]
              ) -> None:
        key = name.replace("/", "_")  # HDF5 group names cannot hold '/'
        self.nodes[key] = nir_node
        self.edges.extend((self.produced.get(i, i), key) for i in inputs)
        self.produced[name] = key

    def _population_inputs(self, name: str) -> tuple[list[str], np.ndarray]:
        """The synapse layers that feed the population reading ANN node ``name`` (one, or all
        of a residual merge or a split layer) and their summed bias, which it takes over."""
        synapses = self.merges.pop(name, None) or [self.produced[name]]
        return synapses, sum(self.pending_bias.pop(s) for s in synapses)

    def _identity(self, name: str, source: str) -> str:
        """A 1:1 synapse layer from ``source``'s spikes (quantize_weights folds the spike
        value into its unit weights, so the shortcut gets its own scale)."""
        self._require_spikes(AnnNode(name, "add", (source,)))
        shape = self.shapes[source]
        if len(shape) == 3:
            synapse = conv2d_node(input_shape=tuple(shape[1:]),
                                  weight=np.ones((shape[0], 1, 1, 1)), stride=(1, 1),
                                  padding=(0, 0), dilation=(1, 1), groups=shape[0],
                                  bias=np.zeros(shape[0]))
        else:
            synapse = nir.Linear(weight=np.eye(int(np.prod(shape))))
        self._emit(name, synapse, [source])
        self.pending_bias[self.produced[name]] = np.zeros(shape[0])
        return self.produced[name]

    def _keep_bias(self, node: AnnNode, key: str | None = None) -> None:
        out_channels = np.asarray(node.params["weight"]).shape[0]
        bias = node.params.get("bias")
        self.pending_bias[key or self.produced[node.name]] = (
            np.zeros(out_channels) if bias is None else np.asarray(bias, np.float64))

    def _require_spikes(self, node: AnnNode) -> None:
        for name in node.inputs:
            source = self.ann.node(name)
            if source.op == "add":
                raise UnsupportedLayer(f"'{node.op}' reads a residual sum ({source.name}) "
                                       "directly; the sum must go through a ReLU first",
                                       node=node.name, hint="Write relu(conv(x) + shortcut(x))")
            if source.op in ("linear", "conv2d") and source.name != self.ann.output:
                raise UnsupportedLayer(
                    f"'{node.op}' follows '{source.op}' ({source.name}) without an activation "
                    "in between; consecutive linear layers have no spiking equivalent here",
                    node=node.name, hint="Insert a ReLU or merge the layers")

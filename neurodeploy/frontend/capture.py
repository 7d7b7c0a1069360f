"""What the three frontends share: one table of op handlers and the graph they build.

Each frontend (``capture_fx``, ``capture_script``, ``capture_export``) walks its own graph and
names every call's arguments after the ATen schema (``bind``), then hands it to
``GraphBuilder.call``. So a rule such as "AvgPool2d with ceil_mode is refused" is written once,
whether it arrived as ``nn.AvgPool2d``, ``aten::avg_pool2d`` or ``aten.avg_pool2d.default``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from neurodeploy.frontend.fold_bn import BatchNormStats, fold_batch_norm

SUPPORTED = ("Linear (bias optional), Conv2d (stride, padding, dilation, groups), ReLU, "
             "neurodeploy.nn.ThresholdClip, AvgPool2d, AdaptiveAvgPool2d and mean over H and W "
             "(global average pooling), Flatten (or view/reshape to (batch, -1)), "
             "BatchNorm1d/2d directly after Linear/Conv2d, Dropout, Identity, add of two "
             "tensors (residual), torch.cat along channels into Conv2d/Linear")
#: activations seen in the wild that have no integrate-and-fire equivalent; refused by name
#: (compared in lower case without underscores, so "LeakyReLU" and "leaky_relu" both match)
OTHER_ACTIVATIONS = frozenset((
    "sigmoid", "tanh", "gelu", "silu", "elu", "selu", "celu", "leakyrelu", "prelu", "rrelu",
    "relu6", "hardtanh", "hardswish", "hardsigmoid", "softplus", "mish", "logsigmoid",
    "softsign", "tanhshrink", "softmax", "logsoftmax", "threshold", "glu"))
#: what a classifier often ends with; the readout gives the logits, whose argmax is the same
NORMALIZERS = frozenset(("softmax", "logsoftmax"))
MAX_POOLS = frozenset(("maxpool2d", "maxpool2dwithindices", "adaptivemaxpool2d"))


@dataclass(frozen=True)
class Ref:
    """A tensor computed from the network input: the output of AnnGraph node ``name``.

    ``version`` changes when a BatchNorm is folded into the node, so a use of the value from
    before the BatchNorm can be told apart from a use of the value after it.
    """

    name: str
    version: int = 0


class _Unknown:
    """A value only known at run time (e.g. ``x.size(0)``); enough to check a reshape's rank."""

    def __repr__(self) -> str:
        return "<run-time value>"


UNKNOWN = _Unknown()
INPUT = Ref("input")


def leaves(value: Any) -> Iterator[Any]:
    """Every non-container value inside ``value`` (lists, tuples and dicts are opened)."""
    if isinstance(value, list | tuple | dict):
        for item in value.values() if isinstance(value, dict) else value:
            yield from leaves(item)
    else:
        yield value


def has_ref(value: Any) -> bool:
    return any(isinstance(v, Ref) for v in leaves(value))


def has_unknown(value: Any) -> bool:
    return any(v is UNKNOWN for v in leaves(value))


def bind(schema: torch._C.FunctionSchema, args: Sequence[Any],
         kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Name each argument after ``schema``, filling defaults; the first one is always "input"."""
    bound: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        names = (arg.name, "input") if i == 0 else (arg.name,)
        given = [kwargs[n] for n in names if n in kwargs]
        if i < len(args):
            value = args[i]
        elif given:
            value = given[0]
        else:
            value = arg.default_value if arg.has_default_value() else None
        bound["input" if i == 0 else arg.name] = value
    return bound


#: module qualified-name prefixes whose modules are single layers (their path names the node)
LAYER_MODULES = ("torch.nn.modules.", "neurodeploy.nn.")


def node_name(path: str, torch_layer: bool, fallback: str) -> str:
    """The module path when the op is a layer's own work (torch.nn or neurodeploy.nn), else
    a readable op name."""
    if path and torch_layer:
        return path
    return f"{path}.{fallback}" if path else fallback


def one_line(err: BaseException) -> str:
    """The informative line of a (often multi-line) torch error message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def unsupported(node: str, op: str) -> UnsupportedLayer:
    """The refusal of op ``op`` at ``node``: why, when it is a known kind, and what maps."""
    key = op.lower().replace("_", "")
    why, what_to_do = "", ""
    if key in NORMALIZERS:
        why = ": the readout reports the last layer's values (logits)"
        what_to_do = ("Return the logits: drop the final softmax from the model, the predicted "
                      "class is the same. ")
    elif key in OTHER_ACTIVATIONS:
        why = ": only ReLU activations map to integrate-and-fire neurons"
        what_to_do = "Replace it with ReLU and retrain or fine-tune. "
    elif key in MAX_POOLS:
        why = ": a maximum of spike counts has no exact integer equivalent here"
        what_to_do = ("Replace it with nn.AvgPool2d of the same kernel and stride (a sum pool "
                      "on the chip; neurodeploy.nn.prepare swaps it) and fine-tune. ")
    return UnsupportedLayer(f"{op} is not supported{why}", node=node,
                            hint=f"{what_to_do}Supported: {SUPPORTED}")


class GraphBuilder:
    """Collects AnnNodes in topological order as a frontend walks its source graph.

    With ``collect`` (``neurodeploy check``) an op that cannot be mapped is recorded in
    ``problems`` (with the number of nodes built before it) and its input passed on, so one
    walk finds every unsupported op.
    """

    def __init__(self, collect: bool = False) -> None:
        self.problems: list[tuple[int, UnsupportedLayer]] | None = [] if collect else None
        self.nodes: list[AnnNode] = []
        self._taken = {INPUT.name}
        self._replaced: dict[Ref, Ref | None] = {}  #: in-place ops redirect; folded BN: None

    def call(self, op: str, name: str, args: dict[str, Any]) -> Any:
        """Apply the handler for ATen op ``op`` (e.g. "conv2d", "relu_") to bound ``args``."""
        handler = HANDLERS.get(op)
        if handler is None:
            return self.refuse(unsupported(name, op), args.get("input"))
        try:
            result = handler(self, name, args)
        except UnsupportedLayer as err:
            return self.refuse(err, args.get("input"))
        first = result[0] if isinstance(result, tuple) else result
        source = args["input"]
        if op.endswith("_") and not op.startswith("_") and isinstance(source, Ref):
            resolved = self.resolve(source, name)
            if first != resolved:
                self._replaced[resolved] = first  # later uses of the mutated tensor see the result
        return result

    def refuse(self, error: UnsupportedLayer, source: Any) -> Any:
        """Raise ``error``; when collecting, record it and let ``source`` stand for the result."""
        if self.problems is None:
            raise error
        self.problems.append((len(self.nodes), error))
        return source if isinstance(source, Ref) else UNKNOWN

    def resolve(self, ref: Ref, where: str) -> Ref:
        while ref in self._replaced:
            newer = self._replaced[ref]
            if newer is None:
                raise UnsupportedLayer(f"uses the output of '{ref.name}' from before the "
                                       "BatchNorm that was folded into it", node=where,
                                       hint="A BatchNorm folds only if nothing else reads the "
                                            "output of the layer before it")
            ref = newer
        return ref

    def add(self, base: str, op: str, inputs: Sequence[Any], **params: Any) -> Ref:
        """Append a node named ``base`` (made unique) whose inputs must be network tensors."""
        names = []
        for value in inputs:
            if not isinstance(value, Ref):
                raise UnsupportedLayer(f"{op} of a constant is not supported; its inputs must be "
                                       "computed from the network input", node=base)
            names.append(self.resolve(value, base).name)
        name = self._unique(base)
        self.nodes.append(AnnNode(name, op, tuple(names), params))
        return Ref(name)

    def fold(self, bn_name: str, source: Any, stats: BatchNormStats) -> Ref:
        """Fold a BatchNorm into the node producing ``source``; returns the folded value."""
        if not isinstance(source, Ref):
            raise unsupported(bn_name, "BatchNorm of a constant")
        ref = self.resolve(source, bn_name)
        producer = next((n for n in self.nodes if n.name == ref.name), None)
        used = any(ref.name in n.inputs for n in self.nodes)
        folded = fold_batch_norm(producer, stats, bn_name=bn_name, used_elsewhere=used)
        self.nodes = [folded if n is producer else n for n in self.nodes]
        self._replaced[ref] = None
        return Ref(ref.name, ref.version + 1)

    def graph(self, output: Any, input_shape: tuple[int, ...]) -> AnnGraph:
        """The finished AnnGraph, keeping only the nodes the output depends on."""
        if not isinstance(output, Ref):
            raise UnsupportedLayer("the model must return one tensor computed from its input "
                                   f"(it returns {type(output).__name__})")
        out = self.resolve(output, "output").name
        needed = {out}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(node.inputs)
        nodes = [AnnNode(INPUT.name, "input", (), {"shape": tuple(input_shape)})]
        nodes += [n for n in self.nodes if n.name in needed]
        return AnnGraph(nodes, out)

    def _unique(self, base: str) -> str:
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name


@dataclass
class Capture:
    """A frontend's result: the built graph plus the source model to check it against."""

    builder: GraphBuilder
    output: Any  #: the value the model returns (a Ref when capture succeeded)
    reference: Callable[[torch.Tensor], torch.Tensor]  #: the source model, eval mode
    batch: int = 2  #: a batch size the source model accepts (torch.export may fix it)
    input_shape: tuple[int, ...] | None = None  #: per-sample shape, when the file records it


def array(node: str, value: Any, what: str) -> np.ndarray:
    """A stored tensor as float32 numpy; a run-time computed one is refused."""
    if not isinstance(value, torch.Tensor):
        raise UnsupportedLayer(f"its {what} is computed at run time, not a stored tensor",
                               node=node)
    return value.detach().cpu().to(torch.float32).numpy().copy()


def optional_array(node: str, value: Any, what: str) -> np.ndarray | None:
    return None if value is None else array(node, value, what)


def _pair(value: Any) -> tuple[int, int]:
    items = [int(value)] if isinstance(value, int | float) else [int(v) for v in value]
    return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])


def _same_padding(node: str, mode: str, kernel: Sequence[int],
                  dilation: tuple[int, int]) -> tuple[int, int]:
    if mode == "valid":
        return (0, 0)
    total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    if any(t % 2 for t in total):
        raise UnsupportedLayer("padding='same' with an even kernel pads unevenly", node=node,
                               hint="Use an odd kernel size or integer padding")
    return (total[0] // 2, total[1] // 2)


def _linear(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    weight = array(name, a["weight"], "weight")
    if weight.ndim != 2:
        raise unsupported(name, f"linear with a {weight.ndim}-D weight")
    return b.add(name, "linear", [a["input"]], weight=weight,
                 bias=optional_array(name, a["bias"], "bias"))


def _conv2d(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    weight = array(name, a["weight"], "weight")
    if weight.ndim != 4:
        raise unsupported(name, f"Conv{weight.ndim - 2}d")
    dilation = _pair(a["dilation"])
    padding = a["padding"]
    padding = (_same_padding(name, padding, weight.shape[2:], dilation)
               if isinstance(padding, str) else _pair(padding))
    return b.add(name, "conv2d", [a["input"]], weight=weight,
                 bias=optional_array(name, a["bias"], "bias"), stride=_pair(a["stride"]),
                 padding=padding, dilation=dilation, groups=int(a["groups"]))


def _convolution(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    if a["transposed"]:
        raise unsupported(name, "ConvTranspose2d")
    return _conv2d(b, name, a)


def _addmm(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """addmm(bias, x, Wᵀ): how decomposed torch.export programs spell Linear."""
    if a.get("beta", 1) != 1 or a.get("alpha", 1) != 1:
        raise unsupported(name, "addmm with beta or alpha other than 1")
    weight = array(name, a["mat2"], "weight").T.copy()
    return b.add(name, "linear", [a["mat1"]], weight=weight,
                 bias=optional_array(name, a.get("input"), "bias"))


def _mm(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    return _addmm(b, name, {"mat1": a["input"], "mat2": a["mat2"], "input": None})


def _relu(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    return b.add(name, "relu", [a["input"]])


def _threshold_clip(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """neurodeploy.nn.ThresholdClip: the learned threshold is the neuron's threshold."""
    if a["noise"]:
        raise UnsupportedLayer("ThresholdClip is in training mode (noisy quantization)",
                               node=name, hint="Call model.eval() before saving the model")
    threshold = array(name, a["threshold"], "threshold")
    if threshold.size != 1 or not threshold.item() > 0:
        raise UnsupportedLayer(f"ThresholdClip needs one positive threshold, it has "
                               f"{threshold.ravel()[:4].tolist()}", node=name,
                               hint="The threshold went non-positive in training: lower the "
                                    "learning rate or clamp it")
    return b.add(name, "clip", [a["input"]], threshold=float(threshold.item()),
                 levels=int(a["levels"]), shift=float(a["shift"]))


def _batch_norm(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    if a["running_mean"] is None or a["running_var"] is None:  # (the call then says training)
        raise UnsupportedLayer("BatchNorm without running statistics normalises each batch "
                               "by itself", node=name, hint="Use track_running_stats=True")
    if a.get("training"):
        raise UnsupportedLayer("BatchNorm is in training mode", node=name,
                               hint="Call model.eval() before saving the model")
    stats = BatchNormStats(mean=array(name, a["running_mean"], "running mean"),
                           var=array(name, a["running_var"], "running variance"),
                           eps=float(a["eps"]),
                           gamma=optional_array(name, a["weight"], "weight"),
                           beta=optional_array(name, a["bias"], "bias"))
    return b.fold(name, a["input"], stats)


def _native_batch_norm(b: GraphBuilder, name: str, a: dict[str, Any]) -> tuple[Any, ...]:
    """The inference BatchNorm of decomposed programs; also returns (unused) saved stats."""
    return (_batch_norm(b, name, a), UNKNOWN, UNKNOWN)


def _avg_pool2d(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    kernel = _pair(a["kernel_size"])
    padding = _pair(a["padding"])
    if a["ceil_mode"]:
        raise UnsupportedLayer("AvgPool2d with ceil_mode=True", node=name,
                               hint="Use ceil_mode=False and pad the input so windows tile it")
    if not a["count_include_pad"] and any(padding):
        raise UnsupportedLayer("AvgPool2d with count_include_pad=False and padding", node=name,
                               hint="Use count_include_pad=True, or padding=0")
    if a["divisor_override"] is not None:
        raise UnsupportedLayer("AvgPool2d with divisor_override", node=name,
                               hint="Remove divisor_override")
    stride = _pair(a["stride"]) if a["stride"] else kernel
    return b.add(name, "avgpool2d", [a["input"]], kernel_size=kernel, stride=stride,
                 padding=padding)


def _adaptive_avg_pool2d(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """The pooling window follows from the input size, known only once shapes are (the
    converter turns it into a sum pool and refuses sizes that do not divide evenly)."""
    size = a["output_size"]
    if None in (size if isinstance(size, list | tuple) else [size]):
        raise UnsupportedLayer("AdaptiveAvgPool2d with an output size of None", node=name,
                               hint="Give both output sizes, e.g. AdaptiveAvgPool2d(1)")
    return b.add(name, "adaptive_avgpool2d", [a["input"]], output_size=_pair(size))


def _mean(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """``x.mean((2, 3))``: global average pooling (then a flatten unless ``keepdim``)."""
    dims = [a["dim"]] if isinstance(a["dim"], int) else a["dim"]
    if dims is None or sorted(int(d) % 4 for d in dims) != [2, 3] or a.get("dtype"):
        raise UnsupportedLayer(f"mean over dimensions {dims}", node=name,
                               hint="Only the mean over H and W of a (batch, C, H, W) tensor "
                                    "(global average pooling) is supported")
    pooled = b.add(name, "adaptive_avgpool2d", [a["input"]], output_size=(1, 1))
    return pooled if a["keepdim"] else b.add(name, "flatten", [pooled])


def _flatten(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    if (a["start_dim"], a["end_dim"]) != (1, -1):
        raise UnsupportedLayer(f"flatten(start_dim={a['start_dim']}, end_dim={a['end_dim']})",
                               node=name, hint="Only flattening all but the batch dimension is "
                                               "supported: torch.flatten(x, 1) or nn.Flatten()")
    return b.add(name, "flatten", [a["input"]])


def _reshape(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """A reshape to rank 2 is taken as flatten; the final check against the model confirms it."""
    size = a["size"] if "size" in a else a["shape"]  # view(size) vs reshape(shape)
    if len(size) != 2:
        raise UnsupportedLayer(f"reshape to {len(size)} dimensions", node=name,
                               hint="Only flattening to (batch, -1) is supported, e.g. "
                                    "x.view(x.size(0), -1)")
    return b.add(name, "flatten", [a["input"]])


def _add(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    if not isinstance(a["other"], Ref) or a.get("alpha", 1) != 1:
        raise UnsupportedLayer("adding a constant or a scaled tensor", node=name,
                               hint="Only the sum of two layer outputs (a residual connection) "
                                    "is supported")
    return b.add(name, "add", [a["input"], a["other"]])


def _cat(b: GraphBuilder, name: str, a: dict[str, Any]) -> Ref:
    """Concatenation; the converter checks the dimension and what reads it."""
    tensors = a["input"]  # bind names the first argument "input": here the tensor list
    tensors = list(tensors) if isinstance(tensors, list | tuple) else [tensors]
    return b.add(name, "cat", tensors, dim=int(a["dim"]))


def _identity(b: GraphBuilder, name: str, a: dict[str, Any]) -> Any:
    """Dropout (in eval mode), Identity and memory-layout ops change no values."""
    if a.get("train"):
        raise UnsupportedLayer("Dropout is in training mode", node=name,
                               hint="Call model.eval() before saving the model")
    return a["input"]


Handler = Callable[[GraphBuilder, str, dict[str, Any]], Any]

#: ATen op name -> handler. Several spellings of one layer share a handler.
HANDLERS: dict[str, Handler] = {
    "linear": _linear, "addmm": _addmm, "mm": _mm,
    "conv2d": _conv2d, "_convolution_mode": _conv2d,
    "_convolution": _convolution, "convolution": _convolution,
    "relu": _relu, "relu_": _relu, "threshold_clip": _threshold_clip,
    "batch_norm": _batch_norm, "_native_batch_norm_legit_no_training": _native_batch_norm,
    "avg_pool2d": _avg_pool2d, "adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "_adaptive_avg_pool2d": _adaptive_avg_pool2d, "mean": _mean,
    "flatten": _flatten, "view": _reshape, "reshape": _reshape, "_unsafe_view": _reshape,
    "add": _add, "add_": _add, "cat": _cat, "concat": _cat,
    "dropout": _identity, "dropout_": _identity, "feature_dropout": _identity,
    "identity": _identity, "contiguous": _identity, "clone": _identity,
}

"""The frontend's output: a small, closed-op ANN graph that conversion consumes.

Every loader (TorchScript, torch.export, state dict, trusted pickle) produces this same
form, after BatchNorm folding and after Dropout/Identity are dropped, so conversion never
sees torch's many spellings of the same layer. ``run`` executes it in torch; calibration and
ANN accuracy use it, so they measure exactly the network that is converted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodeploy.nn import Cat, Sum, ThresholdClip, module_arguments

#: op -> required params. Shapes exclude the batch dimension; weights are float32 numpy.
OPS: dict[str, tuple[str, ...]] = {
    "input": ("shape",),
    "linear": ("weight", "bias"),  # weight (out, in); bias (out,) or None
    "conv2d": ("weight", "bias", "stride", "padding", "dilation", "groups"),
    "relu": (),
    #: learned clip (neurodeploy.nn.ThresholdClip): threshold/levels * clip(floor(u + shift),
    #: 0, levels) with u = levels * clip(x / threshold, 0, 1)
    "clip": ("threshold", "levels", "shift"),
    "avgpool2d": ("kernel_size", "stride", "padding"),
    "adaptive_avgpool2d": ("output_size",),  # (oh, ow); the converter needs H % oh == 0
    "flatten": (),  # flattens everything but the batch dimension
    "add": (),  # elementwise sum of its inputs (residual merge)
    "cat": ("dim",),  # concatenation of its inputs along ``dim`` (channels: 1)
}
ACTIVATIONS = ("relu", "clip")


@dataclass
class AnnNode:
    name: str  #: unique; the source model's name for it (e.g. "features.3") where it has one
    op: str  #: one of OPS
    inputs: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown ANN op '{self.op}'")
        missing = [p for p in OPS[self.op] if p not in self.params]
        if missing:
            raise ValueError(f"{self.name}: op '{self.op}' needs params {missing}")


@dataclass
class AnnGraph:
    nodes: list[AnnNode]  #: topological order; nodes[0] is the input
    output: str  #: name of the node whose value is the network output (logits)
    _modules: dict[str, nn.Module] | None = field(default=None, init=False, repr=False,
                                                   compare=False)

    def node(self, name: str) -> AnnNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.nodes[0].params["shape"])

    def consumers(self, name: str) -> list[AnnNode]:
        return [n for n in self.nodes if name in n.inputs]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-node output shapes (no batch dimension), by running the graph once on zeros."""
        names = {n.name for n in self.nodes}
        values = self.run(torch.zeros((1, *self.input_shape)), keep=names)
        return {name: tuple(values[name].shape[1:]) for name in names}

    @torch.no_grad()
    def run(self, x: torch.Tensor, keep: set[str] | None = None,
            alter: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None
            ) -> dict[str, torch.Tensor]:
        """Evaluate on a batch; returns the output under "output" and every node in ``keep``.
        ``alter`` maps node names to functions applied to their values before later nodes see
        them (what-if measurements: one layer quantized, the rest float). A value no later
        node reads is let go: on a ResNet-18 shape every node's value, held to the end, is 2.5
        times the activations."""
        readers = self._readers()
        values: dict[str, torch.Tensor] = {}
        kept: dict[str, torch.Tensor] = {}
        for node in self.nodes:
            values[node.name] = x if node.op == "input" else \
                self._evaluate(node, [values[i] for i in node.inputs])
            if alter and node.name in alter:
                values[node.name] = alter[node.name](values[node.name])
            if keep and node.name in keep:
                kept[node.name] = values[node.name]
            _let_go(values, node.inputs, readers, self.output)
        kept["output"] = values[self.output]
        return kept

    def stream(self, images: np.ndarray, chunk: int, wanted: set[str]
               ) -> Iterator[tuple[str, np.ndarray]]:
        """(node, its float32 output on all ``images``) for the nodes in ``wanted``, in graph
        order. The graph runs node by node, each over the chunks of ``chunk`` images ``run``
        would take, and holds only the outputs later nodes still read: ``run`` on all images
        keeps every layer's, which on a ResNet-18 shape and 1,024 images is 2.3 GB. Each
        chunk's values are ``run``'s on it, bit for bit: every chunk is an array of its own,
        as in ``run`` (a slice of one array can be aligned otherwise, and the BLAS rounds a
        product by its operands' alignment)."""
        readers = self._readers()
        held: dict[str, list[torch.Tensor]] = {}
        for node in self.nodes:
            out = [torch.as_tensor(images[first:first + chunk], dtype=torch.float32)
                   for first in range(0, len(images), chunk)] if node.op == "input" else \
                self._each_chunk(node, [held[i] for i in node.inputs])
            _let_go(held, node.inputs, readers)
            if readers[node.name]:
                held[node.name] = out
            if node.name in wanted:
                yield node.name, torch.cat(out).numpy()

    @torch.no_grad()
    def _each_chunk(self, node: AnnNode, inputs: list[list[torch.Tensor]]
                    ) -> list[torch.Tensor]:
        return [self._evaluate(node, list(parts)) for parts in zip(*inputs, strict=True)]

    def _readers(self) -> Counter:
        """Per node, how many nodes read its value."""
        return Counter(i for node in self.nodes for i in node.inputs)

    def _evaluate(self, node: AnnNode, inputs: list[torch.Tensor]) -> torch.Tensor:
        module = self.modules()[node.name]
        return module(*module_arguments(module, inputs))

    def modules(self) -> dict[str, nn.Module]:
        """Each node (but the input) as a torch module in eval mode, built on first use: the
        one definition of what an op computes (``run`` calls them; ``neurodeploy.nn.from_ann``
        wires them into a trainable module). A graph is not edited once built."""
        if self._modules is None:
            self._modules = {n.name: node_module(n).eval() for n in self.nodes if n.op != "input"}
        return self._modules


def _let_go(values: dict, inputs: tuple[str, ...], readers: Counter, keep: str = "") -> None:
    """One read of each of ``inputs`` done: drop the values no node will read again
    (``keep`` excepted)."""
    for name in inputs:
        readers[name] -= 1
        if readers[name] == 0 and name != keep:
            del values[name]


def node_module(node: AnnNode) -> nn.Module:
    """The torch module computing ``node``'s op with its parameters (float32 copies)."""
    p = node.params
    if node.op in ("linear", "conv2d"):
        weight = torch.as_tensor(np.asarray(p["weight"], np.float32))
        if node.op == "linear":
            layer = nn.Linear(weight.shape[1], weight.shape[0], bias=p["bias"] is not None)
        else:
            layer = nn.Conv2d(weight.shape[1] * int(p["groups"]), weight.shape[0],
                              tuple(weight.shape[2:]), stride=tuple(p["stride"]),
                              padding=tuple(p["padding"]), dilation=tuple(p["dilation"]),
                              groups=int(p["groups"]), bias=p["bias"] is not None)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if p["bias"] is not None:
                layer.bias.copy_(torch.as_tensor(np.asarray(p["bias"], np.float32)))
        return layer
    simple: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "clip": lambda: ThresholdClip(float(p["threshold"]), int(p["levels"]),
                                      float(p["shift"])),
        "avgpool2d": lambda: nn.AvgPool2d(tuple(p["kernel_size"]), tuple(p["stride"]),
                                          tuple(p["padding"]), count_include_pad=True),
        "adaptive_avgpool2d": lambda: nn.AdaptiveAvgPool2d(tuple(p["output_size"])),
        "flatten": nn.Flatten,
        "add": Sum,
        "cat": lambda: Cat(int(p["dim"])),
    }
    return simple[node.op]()

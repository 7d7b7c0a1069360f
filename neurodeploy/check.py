"""``neurodeploy check``: how every node of a model maps to the spiking network, and every
node that does not map, with its hint, without compiling (no calibration, no quantization).

The frontend walks the model once in collecting mode, so all unsupported ops are found in one
go; a model whose ops all map is then converted with placeholder thresholds, which applies
the converter's structural rules (activation placement, residual adds, pooling windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

from neurodeploy.convert import ConvertOptions, to_snn
from neurodeploy.core.population import NEURON_TYPES
from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend import CAPTURES, load_model
from neurodeploy.frontend.ann import ACTIVATIONS, AnnGraph, AnnNode
from neurodeploy.frontend.capture import GraphBuilder
from neurodeploy.frontend.load import load_file


@dataclass(frozen=True)
class NodeMapping:
    name: str
    op: str  #: the frontend's op ("" for an op it refused)
    shape: tuple[int, ...]  #: output shape without batch (empty when unknown)
    maps_to: str  #: what it becomes in the spiking network
    problem: str = ""  #: the refusal, with its hint, when the node does not map


@dataclass(frozen=True)
class CheckResult:
    model: str
    nodes: list[NodeMapping]

    @property
    def unsupported(self) -> list[NodeMapping]:
        return [n for n in self.nodes if n.problem]

    def as_dict(self) -> dict:
        return {"model": self.model, "supported": not self.unsupported,
                "nodes": [vars(n) | {"shape": list(n.shape)} for n in self.nodes]}


def check_model(path: str | Path, *, arch: str | None = None, trust_pickle: bool = False,
                input_shape: tuple[int, ...] | None = None) -> CheckResult:
    loaded = load_file(Path(path), arch=arch, trust_pickle=trust_pickle)
    builder = GraphBuilder(collect=True)
    CAPTURES[loaded.kind](loaded.model, builder)
    if builder.problems:
        rows = [NodeMapping(n.name, n.op, (), "captured") for n in builder.nodes]
        for position, err in reversed(builder.problems):  # back to front keeps positions valid
            rows.insert(position, NodeMapping(err.node or "?", "", (), "not supported", str(err)))
        return CheckResult(str(path), rows)
    ann = load_model(path, arch=arch, trust_pickle=trust_pickle, input_shape=input_shape)
    return CheckResult(str(path), describe(ann))


def describe(ann: AnnGraph) -> list[NodeMapping]:
    """Each ANN node with what the converter makes of it (or why it cannot)."""
    shapes = ann.shapes()
    thresholds = {n.name: 1.0 for n in ann.nodes if n.op in ACTIVATIONS}
    try:
        snn = to_snn(ann, thresholds, ConvertOptions())
    except UnsupportedLayer as err:
        return [NodeMapping(n.name, n.op, shapes[n.name],
                            "not supported" if n.name == err.node else "-",
                            str(err) if n.name == err.node else "") for n in ann.nodes]
    return [NodeMapping(n.name, n.op, shapes[n.name], _mapping(ann, snn, n))
            for n in ann.nodes]


def _mapping(ann: AnnGraph, snn: nir.NIRGraph, node: AnnNode) -> str:
    p = node.params
    if node.op == "input":
        return "input: integers injected every step (direct encoding)"
    if node.op == "linear" and node.name == ann.output:
        return "readout: Linear into the non-firing integrator"
    if node.op in ("linear", "conv2d"):
        what = "Linear" if node.op == "linear" else (
            f"Conv2d {'x'.join(map(str, np.shape(p['weight'])[2:]))} stride {p['stride']} "
            f"padding {p['padding']} dilation {p['dilation']} groups {p['groups']}")
        into = [dst for src, dst in snn.edges if src in (node.name, f"{node.name}.part0")
                and isinstance(snn.nodes[dst], NEURON_TYPES)]
        population = f"'{into[0]}'" if into else "the next population"
        return f"synapse layer {what} into {population}"
    if node.op in ACTIVATIONS:
        inputs = sum(1 for _, dst in snn.edges if dst == node.name)
        return "IF population" + (f" summing {inputs} synapse layers" if inputs > 1 else "")
    if node.op in ("avgpool2d", "adaptive_avgpool2d"):
        window = snn.nodes[node.name].kernel_size
        return (f"sum pool {'x'.join(str(int(k)) for k in window)} (the 1/{int(np.prod(window))}"
                " is folded into the next weights)")
    if node.op == "flatten":
        return "flatten (reorders, no synapse hop)"
    if node.op == "cat":
        return "concatenation: each reading layer is split into one synapse layer per part"
    if node.op == "add":
        (reader,) = ann.consumers(node.name)
        return f"residual merge: its summands' synapse layers all feed '{reader.name}'"
    return node.op

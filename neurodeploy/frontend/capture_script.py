"""Capture a TorchScript module (``torch.jit.script`` or ``torch.jit.trace``) from its graph.

The inlined graph still holds the eval-time checks of ``nn`` modules (``if self.training``,
input-rank guards). They are evaluated rather than pattern-matched: attribute reads and
constants become Python values, ``prim::If`` on a known condition follows the taken branch,
and a check whose condition depends on the input (producing no tensor) is skipped.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.capture import (
    HANDLERS,
    INPUT,
    LAYER_MODULES,
    UNKNOWN,
    Capture,
    GraphBuilder,
    bind,
    has_ref,
    node_name,
    unsupported,
)

#: attribute holding one sample's shape in TorchScript files neurodeploy writes
INPUT_SHAPE_ATTRIBUTE = "neurodeploy_input_shape"
#: prim/aten ops that only convert a scalar's type; the value passes through unchanged.
PASS_THROUGH = ("prim::NumToTensor", "aten::Int", "aten::IntImplicit", "aten::Float",
                "aten::ScalarImplicit", "prim::unchecked_cast")
_HIERARCHY_ITEM = re.compile(r"([\w]+)\(([^()]*)\)")


def capture_script(module: torch.jit.ScriptModule,
                   builder: GraphBuilder | None = None) -> Capture:
    """Walk ``module.inlined_graph`` in eval mode, translating each ATen call into ``builder``."""
    module.eval()
    graph = module.inlined_graph
    inputs = list(graph.inputs())
    if len(inputs) != 2:
        raise UnsupportedLayer(f"the TorchScript model takes {len(inputs) - 1} inputs",
                               hint="Only single-input models are supported")
    walker = _Walker(module, builder or GraphBuilder())
    walker.env[inputs[0].unique()] = module
    walker.env[inputs[1].unique()] = INPUT
    walker.block(graph.nodes())
    outputs = [walker.env[v.unique()] for v in graph.return_node().inputs()]
    return Capture(walker.builder, outputs[0] if len(outputs) == 1 else tuple(outputs), module,
                   input_shape=_recorded_shape(module))


def _recorded_shape(module: torch.jit.ScriptModule) -> tuple[int, ...] | None:
    """The sample shape ``neurodeploy finetune`` stores in the files it writes."""
    shape = getattr(module, INPUT_SHAPE_ATTRIBUTE, None)
    if isinstance(shape, tuple | list) and shape and all(isinstance(d, int) for d in shape):
        return tuple(shape)
    return None


def _is_tensor(value: torch._C.Value) -> bool:
    return isinstance(value.type(), torch._C.TensorType)


class _Walker:
    """Evaluates the graph's non-tensor values and sends tensor ops to the builder."""

    def __init__(self, root: torch.jit.ScriptModule, builder: GraphBuilder) -> None:
        self.root = root
        self.builder = builder
        self.env: dict[int, Any] = {}

    def block(self, nodes: Any) -> None:
        for node in nodes:
            values = self.node(node, [self.env[v.unique()] for v in node.inputs()])
            for out, value in zip(node.outputs(), values, strict=True):
                self.env[out.unique()] = value

    def node(self, node: torch._C.Node, ins: list[Any]) -> list[Any]:
        kind = node.kind()
        n_out = node.outputsSize()
        if kind == "prim::Constant":
            return [_constant(node.output())]
        if kind == "prim::GetAttr":
            known = isinstance(ins[0], torch.jit.ScriptModule)
            return [getattr(ins[0], node.s("name")) if known else UNKNOWN]
        if kind == "prim::ListConstruct":
            return [list(ins)]
        if kind == "prim::TupleConstruct":
            return [tuple(ins)]
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            return list(ins[0]) if isinstance(ins[0], list | tuple) else [UNKNOWN] * n_out
        if kind in PASS_THROUGH:
            return [ins[0]]
        if kind == "prim::If":
            return self.branch(node, ins[0])
        if kind.startswith(("aten::", "neurodeploy::")):  # without network tensors: bookkeeping
            return self.aten(node, ins) if has_ref(ins) else [UNKNOWN] * n_out
        if has_ref(ins) or any(_is_tensor(v) for v in node.outputs()):
            raise UnsupportedLayer(f"{kind} is not supported", node=self.name(node, kind))
        return [UNKNOWN] * n_out

    def branch(self, node: torch._C.Node, condition: Any) -> list[Any]:
        if isinstance(condition, bool):
            taken = list(node.blocks())[0 if condition else 1]
            self.block(taken.nodes())
            return [self.env[v.unique()] for v in taken.returnNode().inputs()]
        if any(_is_tensor(v) for v in node.outputs()):
            wrapped = _first_unsupported(node)  # F.softmax's TorchScript form branches on dim
            if wrapped is not None:
                op = wrapped.kind().split("::")[1]
                raise unsupported(self.name(wrapped, op), op)
            raise UnsupportedLayer("the model branches on a value computed from its input",
                                   node=self.name(node, "if"),
                                   hint="Data-dependent control flow cannot be converted")
        return [UNKNOWN] * node.outputsSize()  # an input check such as "expected 4D input"

    def aten(self, node: torch._C.Node, ins: list[Any]) -> list[Any]:
        op = node.kind().split("::")[1]
        if op not in HANDLERS and not any(_is_tensor(v) for v in node.outputs()):
            return [UNKNOWN] * node.outputsSize()  # x.size(0), x.dim(): shape queries
        name = self.name(node, op.rstrip("_"))
        if op not in HANDLERS:
            return [self.builder.refuse(unsupported(name, op), ins[0])] * node.outputsSize()
        schema = torch._C.parse_schema(node.schema())
        result = self.builder.call(op, name, bind(schema, ins, {}))
        return list(result) if isinstance(result, tuple) else [result]

    def name(self, node: torch._C.Node, op: str) -> str:
        items = [(n, t) for n, t in _HIERARCHY_ITEM.findall(node.getModuleHierarchy())
                 if n not in ("UNKNOWN_INSTANCE", "SELF")]
        path = ".".join(n for n, _ in items)
        return node_name(path, bool(items) and self._is_torch_layer(path), op)

    def _is_torch_layer(self, path: str) -> bool:
        module = self.root
        for part in path.split("."):
            module = getattr(module, part, None)
        if not isinstance(module, torch.jit.ScriptModule):
            return False
        qualified = module._c._type().qualified_name()
        return any(f".{prefix}" in qualified for prefix in LAYER_MODULES)


def _constant(value: torch._C.Value) -> Any:
    try:
        return value.toIValue()
    except RuntimeError:  # e.g. a Function constant: never used as data
        return UNKNOWN


def _first_unsupported(node: torch._C.Node) -> torch._C.Node | None:
    """The first tensor op inside ``node``'s blocks that has no mapping: what a branch the
    frontend cannot resolve computes, a more useful thing to name than the branch."""
    for block in node.blocks():
        for inner in block.nodes():
            kind = inner.kind()
            if kind.startswith("aten::") and kind.split("::")[1] not in HANDLERS and \
                    any(_is_tensor(v) for v in inner.outputs()):
                return inner
            found = _first_unsupported(inner)
            if found is not None:
                return found
    return None

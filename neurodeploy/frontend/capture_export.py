"""Capture a ``torch.export`` program from its ATen graph.

Both the default (training IR: ``aten.conv2d``, ``aten.batch_norm``, ``aten.linear``) and
decomposed programs (``aten.convolution``, ``_native_batch_norm_legit_no_training``,
``permute`` + ``addmm``) are read: ops on stored tensors alone, such as transposing a weight,
are evaluated, and the rest go to the shared handlers.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

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
    has_unknown,
    node_name,
    unsupported,
)

DEFAULT_BATCH = 2


def capture_export(program: ExportedProgram, builder: GraphBuilder | None = None) -> Capture:
    """Translate ``program.graph`` into ``builder``; its example input fixes the input shape."""
    lifted, user_inputs = _inputs(program)
    if len(user_inputs) != 1:
        raise UnsupportedLayer(f"the exported program takes {len(user_inputs)} inputs",
                               hint="Only single-input models are supported")
    builder = builder or GraphBuilder()
    env: dict[fx.Node, Any] = {}
    user_outputs = [spec.arg.name for spec in program.graph_signature.output_specs
                    if spec.kind == OutputKind.USER_OUTPUT]
    outputs: list[Any] = []
    shape: tuple[Any, ...] = ()
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == user_inputs[0]:
            env[node] = INPUT
            shape = tuple(node.meta["val"].shape) if "val" in node.meta else ()
        elif node.op == "placeholder":
            env[node] = lifted.get(node.name, UNKNOWN)
        elif node.op == "call_function":
            env[node] = _call(builder, node, fx.node.map_arg(node.args, env.__getitem__),
                              fx.node.map_arg(node.kwargs, env.__getitem__))
        elif node.op == "output":
            outputs = [env[n] for n in node.args[0] if n.name in user_outputs]
    batch = shape[0] if shape and isinstance(shape[0], int) else DEFAULT_BATCH
    fixed = shape[1:] if shape and all(isinstance(d, int) for d in shape[1:]) else None
    return Capture(builder, outputs[0] if len(outputs) == 1 else tuple(outputs),
                   program.module(), batch=batch, input_shape=fixed)


def _inputs(program: ExportedProgram) -> tuple[dict[str, Any], list[str]]:
    """Lifted parameters, buffers and constants by placeholder name; user input names."""
    stored = {**program.state_dict, **program.constants}
    specs = program.graph_signature.input_specs
    users = [spec.arg.name for spec in specs if spec.kind == InputKind.USER_INPUT]
    lifted = {spec.arg.name: stored.get(spec.target, UNKNOWN) for spec in specs
              if spec.kind != InputKind.USER_INPUT and spec.target is not None}
    return lifted, users


def _call(builder: GraphBuilder, node: fx.Node, args: Any, kwargs: Any) -> Any:
    target = node.target
    if target is operator.getitem and isinstance(args[0], list | tuple):
        return args[0][args[1]]
    if not isinstance(target, torch._ops.OpOverload):
        if has_ref(args):
            return builder.refuse(unsupported(_name(node), getattr(target, "__name__",
                                                                   str(target))), args[0])
        return UNKNOWN  # symbolic-shape arithmetic
    op = target._schema.name.split("::")[1]
    if has_ref(args) or has_ref(kwargs):
        if op in HANDLERS:
            return builder.call(op, _name(node), bind(target._schema, args, kwargs))
        if not any(str(r.type).startswith("Tensor") for r in target._schema.returns):
            return UNKNOWN  # sym_size and other shape queries
        refused = builder.refuse(unsupported(_name(node), op), args[0])
        extra = len(target._schema.returns) - 1  # e.g. max_pool2d_with_indices: the indices
        return (refused, *[UNKNOWN] * extra) if extra else refused
    if has_unknown(args) or has_unknown(kwargs) or target._schema.is_mutable:
        return UNKNOWN
    return target(*args, **kwargs)  # pure op on stored tensors, e.g. permute(weight)


def _name(node: fx.Node) -> str:
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    path, kind = stack[-1] if stack else ("", "")
    return node_name(str(path), str(kind).startswith(LAYER_MODULES), node.name)

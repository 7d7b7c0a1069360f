"""Capture an ``nn.Module`` (state dict + arch, or trusted pickle) with ``torch.fx``.

Leaf modules are translated to ATen-style calls from their attributes; functions and tensor
methods are bound to the ATen schema of the op they stand for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.capture import (
    INPUT,
    UNKNOWN,
    Capture,
    GraphBuilder,
    bind,
    has_ref,
    has_unknown,
    one_line,
    unsupported,
)
from neurodeploy.nn import ThresholdClip

aten = torch.ops.aten
ModuleCall = tuple[str, dict[str, Any]]


def _conv(m: nn.Conv2d, x: Any) -> ModuleCall:
    if m.padding_mode != "zeros":
        raise UnsupportedLayer(f"Conv2d with padding_mode='{m.padding_mode}'",
                               hint="Use padding_mode='zeros'")
    return "conv2d", {"input": x, "weight": m.weight, "bias": m.bias, "stride": m.stride,
                      "padding": m.padding, "dilation": m.dilation, "groups": m.groups}


def _batch_norm(m: nn.BatchNorm1d | nn.BatchNorm2d, x: Any) -> ModuleCall:
    return "batch_norm", {"input": x, "weight": m.weight, "bias": m.bias, "eps": m.eps,
                          "running_mean": m.running_mean, "running_var": m.running_var}


def _avg_pool(m: nn.AvgPool2d, x: Any) -> ModuleCall:
    return "avg_pool2d", {"input": x, "kernel_size": m.kernel_size, "stride": m.stride,
                          "padding": m.padding, "ceil_mode": m.ceil_mode,
                          "count_include_pad": m.count_include_pad,
                          "divisor_override": m.divisor_override}


def _threshold_clip(m: ThresholdClip, x: Any) -> ModuleCall:
    return "threshold_clip", {"input": x, "threshold": m.threshold, "levels": m.levels,
                              "shift": m.shift, "noise": 0.0}


#: Leaf module type -> its call in ATen terms.
MODULES: dict[type[nn.Module], Callable[[Any, Any], ModuleCall]] = {
    ThresholdClip: _threshold_clip,
    nn.Linear: lambda m, x: ("linear", {"input": x, "weight": m.weight, "bias": m.bias}),
    nn.Conv2d: _conv,
    nn.ReLU: lambda m, x: ("relu_" if m.inplace else "relu", {"input": x}),
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: lambda m, x: ("adaptive_avg_pool2d",
                                        {"input": x, "output_size": m.output_size}),
    nn.Flatten: lambda m, x: ("flatten", {"input": x, "start_dim": m.start_dim,
                                          "end_dim": m.end_dim}),
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d), _batch_norm),
    nn.Identity: lambda m, x: ("identity", {"input": x}),
    **dict.fromkeys((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d),
                    lambda m, x: ("dropout", {"input": x})),
}

#: Python function -> the ATen overload whose schema names its arguments.
FUNCTIONS: dict[Callable[..., Any], torch._ops.OpOverload] = {
    F.relu: aten.relu.default, torch.relu: aten.relu.default, torch.relu_: aten.relu_.default,
    F.linear: aten.linear.default, F.conv2d: aten.conv2d.default,
    F.avg_pool2d: aten.avg_pool2d.default,
    F.adaptive_avg_pool2d: aten.adaptive_avg_pool2d.default, torch.mean: aten.mean.dim,
    torch.flatten: aten.flatten.using_ints,
    torch.reshape: aten.reshape.default, F.dropout: aten.dropout.default,
    operator.add: aten.add.Tensor, torch.add: aten.add.Tensor, operator.iadd: aten.add_.Tensor,
    torch.cat: aten.cat.default, torch.concat: aten.cat.default,
    torch.ops.neurodeploy.threshold_clip: torch.ops.neurodeploy.threshold_clip.default,
}

#: Tensor method name -> ATen overload.
METHODS: dict[str, torch._ops.OpOverload] = {
    "relu": aten.relu.default, "relu_": aten.relu_.default,
    "flatten": aten.flatten.using_ints, "view": aten.view.default,
    "reshape": aten.reshape.default, "add": aten.add.Tensor, "add_": aten.add_.Tensor,
    "contiguous": aten.contiguous.default, "mean": aten.mean.dim,
}

SHAPE_METHODS = ("size", "dim")  #: their results are run-time values, used only in reshapes


class _Tracer(fx.Tracer):
    """torch.fx's tracer, with neurodeploy's own layers kept whole like torch.nn's."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, ThresholdClip) or super().is_leaf_module(m, module_qualified_name)


def capture_module(module: nn.Module, builder: GraphBuilder | None = None) -> Capture:
    """Trace ``module`` symbolically and translate each node into ``builder``."""
    module.eval()
    try:
        traced = fx.GraphModule(module, _Tracer().trace(module))
    except Exception as err:  # fx raises many types for untraceable Python code
        raise UnsupportedLayer(f"torch.fx cannot trace {type(module).__name__}: {one_line(err)}",
                               hint="Save the model with torch.export.save or "
                                    "torch.jit.script instead") from err
    builder = builder or GraphBuilder()
    env: dict[fx.Node, Any] = {}
    output: Any = None
    for node in traced.graph.nodes:
        args = fx.node.map_arg(node.args, env.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
        if node.op == "placeholder":
            env[node] = _placeholder(node, first=not env)
        elif node.op == "get_attr":
            env[node] = operator.attrgetter(node.target)(traced)
        elif node.op == "call_module":
            env[node] = _call_module(builder, node.target, traced.get_submodule(node.target),
                                     args)
        elif node.op in ("call_function", "call_method"):
            env[node] = _call(builder, node, args, dict(kwargs))
        elif node.op == "output":
            output = args[0]
    return Capture(builder, output, module)


def _placeholder(node: fx.Node, *, first: bool) -> Any:
    if first:
        return INPUT
    if node.args:
        return node.args[0]  # an optional argument left at its default
    raise UnsupportedLayer(f"the model takes a second input '{node.target}'",
                           hint="Only single-input models are supported")


def _call_module(builder: GraphBuilder, target: str, module: nn.Module, args: Any) -> Any:
    to_call = next((MODULES[t] for t in type(module).__mro__ if t in MODULES), None)
    if to_call is None:
        return builder.refuse(unsupported(target, type(module).__name__), args[0])
    try:
        op, call_args = to_call(module, args[0])
    except UnsupportedLayer as err:
        return builder.refuse(UnsupportedLayer(str(err), node=target), args[0])
    return builder.call(op, target, call_args)


def _call(builder: GraphBuilder, node: fx.Node, args: Any, kwargs: dict[str, Any]) -> Any:
    is_method = node.op == "call_method"
    op_name = node.target if is_method else getattr(node.target, "__name__", str(node.target))
    overload = METHODS.get(node.target) if is_method else FUNCTIONS.get(node.target)
    if overload is not None:
        if node.target in ("view", "reshape") and not isinstance(args[-1], list | tuple):
            args = (args[0], list(args[1:]))  # x.view(n, -1): sizes given as varargs
        kwargs.pop("inplace", None)
        if "training" in kwargs:
            kwargs["train"] = kwargs.pop("training")
        op = overload._schema.name.split("::")[1]
        return builder.call(op, node.name, bind(overload._schema, args, kwargs))
    if has_ref(args) or has_ref(kwargs):
        if (is_method and node.target in SHAPE_METHODS) or node.target is getattr:
            return UNKNOWN
        return builder.refuse(unsupported(node.name, str(op_name)), args[0] if args else None)
    if has_unknown(args) or has_unknown(kwargs):
        return UNKNOWN
    if is_method:
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    return node.target(*args, **kwargs)

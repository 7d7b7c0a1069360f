"""PyTorch model file -> AnnGraph: load, capture, fold BatchNorm, then check by running.

Every captured graph is run twice before it is returned: on zeros, to turn a wrong input
shape into a readable error at the layer that rejects it, and on random data against the
source model, so a layer the frontend misread fails here instead of in conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from neurodeploy.errors import InputError, UnsupportedLayer, whole_number
from neurodeploy.frontend.ann import AnnGraph, AnnNode
from neurodeploy.frontend.capture import Capture, one_line
from neurodeploy.frontend.capture_export import capture_export
from neurodeploy.frontend.capture_fx import capture_module
from neurodeploy.frontend.capture_script import capture_script
from neurodeploy.frontend.load import modes_kept, open_model
from neurodeploy.frontend.rewrite import move_flattens

__all__ = ["AnnGraph", "AnnNode", "load_model"]

CAPTURES: dict[str, Callable[..., Capture]] = {
    "module": capture_module, "script": capture_script, "export": capture_export}
SHAPE_HINT = ("Pass the shape of one sample without the batch dimension, e.g. --input-shape "
              "1,28,28 (input_shape=(1, 28, 28))")
TOLERANCE = 1e-4  #: relative to the output's magnitude; BatchNorm folding changes rounding only
HALF_TOLERANCE = 2e-2  #: the same for 16-bit models: their own rounding, about 1e-3 a layer
#: values in one input sample: far beyond any chip's neurons (Loihi 2: 1M per chip), and what
#: the checks below can run through memory (a 4096 x 4096 RGB image holds 50M)
MAX_INPUT_VALUES = 1 << 26


def load_model(model: Any, *, arch: str | None = None, trust_pickle: bool = False,
               input_shape: tuple[int, ...] | None = None, shape_of: str | None = None
               ) -> AnnGraph:
    """Read a PyTorch model (an ``nn.Module``, scripted module or ``torch.export`` program
    in memory, or a file of one) as an AnnGraph that computes what the model computes.

    ``arch`` ("module:Class" or "file.py:Class") rebuilds a state dict file; ``trust_pickle``
    allows unpickling a whole module; ``input_shape`` is one sample's shape (a torch.export
    program records it, other formats need it). ``shape_of`` names the data ``input_shape``
    was read from, so a shape error points at that data (no ``input_shape``: it held one
    sample, whose first axis may or may not be the batch).
    """
    try:
        return _load(model, arch, trust_pickle, input_shape, inferred=shape_of is not None)
    except InputError as err:
        if shape_of is None or err.hint != SHAPE_HINT:
            raise
        if input_shape is None:
            raise InputError(f"the model's input shape cannot be read from {shape_of}: they "
                             "hold a single sample", hint="Pass a batch (N, *input_shape), or "
                             "the input shape (input_shape=, --input-shape)") from err
        raise InputError(err.message, node=err.node, hint=f"That is the shape of {shape_of}: "
                         "give samples of the shape the model takes") from err


def _load(model: Any, arch: str | None, trust_pickle: bool,
          input_shape: tuple[int, ...] | None, inferred: bool) -> AnnGraph:
    """``inferred``: ``input_shape`` was read from data, so a shape the model records wins
    (the caller then names the data that does not fit)."""
    loaded = open_model(model, arch=arch, trust_pickle=trust_pickle)
    with modes_kept(loaded.model):
        capture = CAPTURES[loaded.kind](loaded.model)
        given = None if inferred and capture.input_shape is not None else input_shape
        shape = _input_shape(given, capture.input_shape)
        graph = capture.builder.graph(capture.output, shape)
        _check_finite(graph)
        _check_runs(graph)
        _check_not_empty(graph)
        graph = move_flattens(graph)
        _check_matches(graph, capture)
    return graph


def _input_shape(given: Sequence[int] | None,
                 recorded: tuple[int, ...] | None) -> tuple[int, ...]:
    if given is None:
        if recorded is None:
            raise InputError("the model's input shape is unknown", hint=SHAPE_HINT)
        return tuple(recorded)
    if isinstance(given, str | bytes) or not isinstance(given, Sequence | np.ndarray):
        raise InputError(f"input_shape must be a sequence of sizes, got {given!r}",
                         hint="For example input_shape=(1, 28, 28) (--input-shape 1,28,28)")
    shape = tuple(whole_number(d, "every size of input_shape", least=0) for d in given)
    if not shape or min(shape) < 1:
        raise InputError(f"input shape {shape} must be a non-empty list of positive sizes",
                         hint=SHAPE_HINT)
    if np.prod(shape, dtype=float) > MAX_INPUT_VALUES:
        raise InputError(f"input shape {shape} holds {np.prod(shape, dtype=float):.3g} values "
                         f"per sample; neurodeploy takes at most {MAX_INPUT_VALUES}",
                         hint=SHAPE_HINT)
    if recorded is not None and shape != tuple(recorded):
        raise InputError(f"the exported program expects input shape {tuple(recorded)}, "
                         f"but input shape {shape} was given",
                         hint="Omit input_shape (--input-shape) for torch.export programs")
    return shape


def _check_finite(graph: AnnGraph) -> None:
    for node in graph.nodes:
        for key in ("weight", "bias"):
            value = node.params.get(key)
            if value is not None and not np.isfinite(value).all():
                raise InputError(f"{key} contains NaN or Inf values", node=node.name,
                                 hint="The checkpoint is damaged or its training diverged")


def _check_not_empty(graph: AnnGraph) -> None:
    """A layer with no outputs (e.g. Linear(64, 0)) runs in torch but maps to no neurons."""
    for name, shape in graph.shapes().items():
        if 0 in shape:
            raise InputError(f"produces an empty output (shape {shape})", node=name,
                             hint="Every layer needs at least one output unit")


def _check_runs(graph: AnnGraph) -> None:
    """Run on zeros; on failure name the first layer that rejects its input, and why."""
    x = torch.zeros(2, *graph.input_shape)
    try:
        graph.run(x)
        return
    except RuntimeError:
        pass
    for k, node in enumerate(graph.nodes[1:], start=1):
        try:
            AnnGraph(graph.nodes[:k + 1], node.name).run(x)
        except RuntimeError as err:
            before = AnnGraph(graph.nodes[:k], graph.nodes[k - 1].name).run(
                x, keep=set(node.inputs))
            got = [tuple(before[name].shape[1:]) for name in node.inputs]
            raise InputError(f"input shape {graph.input_shape} does not fit the model: "
                             f"{_expectation(node, got, err)}", node=node.name,
                             hint=SHAPE_HINT) from err


def _expectation(node: AnnNode, got: list[tuple[int, ...]], err: RuntimeError) -> str:
    weight = node.params.get("weight")
    if node.op == "linear":
        if len(got[0]) > 1 and np.prod(got[0]) == weight.shape[1]:  # no flatten before it
            return (f"it expects flat samples of {weight.shape[1]} features, but gets samples "
                    f"of shape {got[0]}")
        shape = f" (a sample of shape {got[0]})" if len(got[0]) > 1 else ""
        return (f"it expects {weight.shape[1]} input features, but gets "
                f"{int(np.prod(got[0]))}{shape}")
    if node.op == "conv2d":
        channels = weight.shape[1] * int(node.params["groups"])
        rank = "" if len(got[0]) == 3 else f" ({len(got[0])} dimensions)"
        return (f"it expects a (C, H, W) input with C = {channels}, but gets shape "
                f"{got[0]}{rank}")
    return f"it gets shapes {got} ({one_line(err)})"


def _check_matches(graph: AnnGraph, capture: Capture) -> None:
    """Compare with the source model on random data: a misread layer must not pass silently."""
    x = torch.rand(capture.batch, *graph.input_shape, generator=torch.Generator().manual_seed(0))
    dtype = _floating_dtype(capture.reference)
    try:
        with torch.no_grad():
            expected = capture.reference(x.to(dtype))
    except Exception as err:  # the user's forward(); any error can come out
        raise InputError(f"the model fails on input shape {graph.input_shape}: {one_line(err)}",
                         hint=SHAPE_HINT) from err
    got = graph.run(x)["output"]
    if not isinstance(expected, torch.Tensor) or expected.shape != got.shape:
        raise UnsupportedLayer("the captured graph's output does not have the model's output "
                               f"shape ({tuple(got.shape)} vs "
                               f"{getattr(expected, 'shape', type(expected).__name__)})",
                               node=graph.output, hint="Please report this model")
    expected = expected.to(torch.float32)
    scale = max(1.0, float(expected.abs().max()))
    diff = float((got - expected).abs().max())
    if diff > (HALF_TOLERANCE if dtype.itemsize < 4 else TOLERANCE) * scale:
        hooked = _hooked_modules(capture.reference)
        if hooked:  # a hook is no bug of the frontend: no capture sees it
            raise UnsupportedLayer(f"forward hooks on {', '.join(hooked)} change what the "
                                   "model computes, and no captured graph holds hooks (it "
                                   f"differs from the model by up to {diff:.3g})",
                                   hint="Remove the hooks, or do what they do in forward()")
        raise UnsupportedLayer(f"the captured graph differs from the model by up to {diff:.3g}",
                               hint="The model computes something the frontend reads "
                                    "differently; please report this model")


def _hooked_modules(model: Any) -> list[str]:
    """Modules of ``model`` with forward (pre-)hooks, by name."""
    if not isinstance(model, torch.nn.Module):
        return []
    return [f"'{name}'" if name else "the model" for name, module in model.named_modules()
            if module._forward_hooks or module._forward_pre_hooks]


def _floating_dtype(model: Any) -> torch.dtype:
    """The dtype a model computes in: that of most of its parameters' values (a .double() or
    .half() model refuses float32 inputs; one stray float64 scalar, unused or not, does not
    make a float32 model's layers take float64); float32 without floating parameters."""
    params = model.parameters() if isinstance(model, torch.nn.Module) else ()
    values: dict[torch.dtype, int] = {}
    for p in params:
        if p.is_floating_point():
            values[p.dtype] = values.get(p.dtype, 0) + p.numel()
    return max(values, key=values.__getitem__) if values else torch.float32

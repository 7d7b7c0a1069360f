r"""Training-time modules users put in their own models: the learnable threshold clip.

A converted neuron with threshold :math:`\theta` and T steps can only send values in
``[0, theta]`` in steps of ``theta / T``. ``ThresholdClip`` makes the ANN live with the same
limits while it trains, so conversion has nothing left to approximate:

.. math::
    u = L \cdot \mathrm{clip}(x / \theta, 0, 1), \qquad
    y = \frac{\theta}{L} \, \mathrm{clip}(\lfloor u + \phi \rfloor, 0, L)

with a trainable per-layer threshold :math:`\theta`, ``levels`` L and ``shift`` :math:`\phi`.
The floor passes gradients straight through (QCFS, Bu et al. 2022), so :math:`\theta` learns
where to clip. With ``noise`` p > 0 each element is left unquantized with probability p
while training (dual-phase phase I's noisy quantize-clip, Wang et al.), which keeps the
gradient of a mostly quantized network informative.

The function is one registered op, ``torch.ops.neurodeploy.threshold_clip``: TorchScript,
``torch.export`` and ``torch.fx`` all record it as a single call, so the frontend reads the
learned threshold from it whichever way the model was saved (loading such a file needs
``import neurodeploy``, which registers the op).

``prepare(model, method, levels)`` swaps a model's ReLUs (modules and functional calls) for
``ThresholdClip`` and MaxPool2d for AvgPool2d; ``from_ann`` rebuilds a loaded model as a
trainable module.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from neurodeploy.errors import InputError

INIT_PERCENTILE = 99.9  #: initial threshold: this percentile of the layer's input activation
DEFAULT_THRESHOLD = 8.0  #: without calibration data (QCFS's initial value)


@torch.library.custom_op("neurodeploy::threshold_clip", mutates_args=())
def threshold_clip(x: torch.Tensor, threshold: torch.Tensor, levels: int, shift: float,
                   noise: float) -> torch.Tensor:
    """Quantize-clip ``x`` (see the module docstring); ``noise`` > 0 only while training.
    In place on one fresh tensor: the clip runs on every activation of every training batch,
    so each pass over the data counts."""
    u = (x / threshold).clamp_(0.0, 1.0).mul_(levels)
    if noise > 0:
        q = torch.floor(u + shift).clamp_(0.0, float(levels))
        q = torch.where(torch.rand_like(u) < noise, u, q)
    else:
        q = u.add_(shift).floor_().clamp_(0.0, float(levels))
    return q.mul_(threshold / levels)


@threshold_clip.register_fake
def _threshold_clip_fake(x, threshold, levels, shift, noise):
    return torch.empty_like(x)


def _setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1], output)


def _backward(ctx, grad):
    """Straight-through floor: the gradients of theta/L * clip(u + shift, 0, L) with the
    quantized value kept, i.e. what autograd gives for QCFS's code with a STE floor:
    d/dx = [0 < x < theta], d/dtheta = sum(grad * (out - [0 < x < theta] * x)) / theta."""
    x, threshold, out = ctx.saved_tensors
    grad_x = torch.where((x > 0) & (x < threshold), grad, 0.0)
    if threshold.numel() == 1:  # one threshold per layer: two dot products, no temporaries
        flat = [t.reshape(-1) for t in (grad, out, grad_x, x)]
        grad_threshold = ((torch.dot(flat[0], flat[1]) - torch.dot(flat[2], flat[3]))
                          / threshold).reshape(threshold.shape)
    else:
        grad_threshold = ((grad * out - grad_x * x) / threshold).sum_to_size(threshold.shape)
    return grad_x, grad_threshold, None, None, None


threshold_clip.register_autograd(_backward, setup_context=_setup)


class ThresholdClip(nn.Module):
    """ReLU replacement with a trainable clipping threshold and ``levels`` output steps."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, levels: int = 4,
                 shift: float = 0.5, noise: float = 0.0) -> None:
        super().__init__()
        if threshold <= 0:
            raise InputError(f"ThresholdClip threshold must be positive, got {threshold}")
        if levels < 1:
            raise InputError(f"ThresholdClip levels must be at least 1, got {levels}")
        if not 0.0 <= noise < 1.0:
            raise InputError(f"ThresholdClip noise must be in [0, 1), got {noise}")
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))
        self.levels = int(levels)
        self.shift = float(shift)
        self.noise = float(noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = self.noise if self.training else 0.0
        return torch.ops.neurodeploy.threshold_clip(x, self.threshold, self.levels, self.shift,
                                                    noise)

    def extra_repr(self) -> str:
        return (f"threshold={float(self.threshold.detach()):.4g}, levels={self.levels}, "
                f"shift={self.shift}, noise={self.noise}")


@dataclass(frozen=True)
class ClipStyle:
    """How one method's ANN activation quantizes (algorithms.md §1, §3, §6)."""

    shift: float  #: 1/2 turns the floor into rounding (v_init = theta/2 on the SNN side)
    noise: float  #: probability of leaving an element unquantized while training


#: method -> its activation. ECL's learnable clip is QCFS's (algorithms.md §6.1); dual-phase
#: phase I quantizes with levels = T and leaves 10% of the elements unquantized.
STYLES: dict[str, ClipStyle] = {
    "qcfs": ClipStyle(shift=0.5, noise=0.0),
    "ecl": ClipStyle(shift=0.5, noise=0.0),
    "dual_phase": ClipStyle(shift=0.5, noise=0.1),
}


def prepare(model: nn.Module, method: str = "ecl", levels: int = 4,
            calib: torch.Tensor | np.ndarray | None = None) -> nn.Module:
    """A copy of ``model`` ready to train for ``method``: every ReLU (module, ``F.relu``,
    ``torch.relu``, ``x.relu()``) becomes a ``ThresholdClip``, every max pooling an average
    pooling (with a warning: spikes cannot be max-pooled). With ``calib`` (a batch of
    inputs) each threshold starts at the 99.9th percentile of the activation it clips,
    layer after layer; otherwise at 8.0.
    """
    if method not in STYLES:
        raise InputError(f"unknown training method '{method}'",
                         hint=f"Choose from: {', '.join(sorted(STYLES))}")
    if isinstance(model, torch.jit.ScriptModule):
        raise InputError("a TorchScript model cannot be prepared for training",
                         hint="Rebuild it as an nn.Module (neurodeploy.nn.from_ann) or use "
                              "`neurodeploy finetune`")
    style = STYLES[method]
    prepared = _swap_functional(copy.deepcopy(model), lambda: _clip(style, levels))
    _swap_modules(prepared, lambda: _clip(style, levels))
    if calib is not None:
        init_thresholds(prepared, torch.as_tensor(np.asarray(calib), dtype=torch.float32))
    return prepared


def clips(model: nn.Module) -> list[ThresholdClip]:
    return [m for m in model.modules() if isinstance(m, ThresholdClip)]


@torch.no_grad()
def init_thresholds(model: nn.Module, batch: torch.Tensor) -> None:
    """Set each clip's threshold to a percentile of its input on ``batch``, in network order
    (a clip sees its upstream clips' output)."""
    def observe(module: ThresholdClip, args: tuple[torch.Tensor, ...]) -> None:
        value = float(np.percentile(args[0].detach().numpy(), INIT_PERCENTILE))
        module.threshold.fill_(value if value > 0 else max(float(args[0].max()), 1.0))

    hooks = [clip.register_forward_pre_hook(observe) for clip in clips(model)]
    was_training = model.training
    try:
        model.eval()
        model(batch)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def _clip(style: ClipStyle, levels: int) -> ThresholdClip:
    return ThresholdClip(levels=levels, shift=style.shift, noise=style.noise)


def _swap_modules(model: nn.Module, make: Callable[[], ThresholdClip]) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, make())
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, _avg_pool(name, child.kernel_size, child.stride,
                                                child.padding, child.ceil_mode))


def _avg_pool(where: str, kernel, stride, padding, ceil_mode) -> nn.AvgPool2d:
    warnings.warn(f"{where}: MaxPool2d replaced by AvgPool2d (spikes cannot be max-pooled); "
                  "train or fine-tune the model after prepare()", stacklevel=3)
    return nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)


_RELU_CALLS = (F.relu, torch.relu, torch.relu_)


def _swap_functional(model: nn.Module, make: Callable[[], ThresholdClip]) -> nn.Module:
    """Replace functional ReLU and max pooling calls by modules (torch.fx); a model fx cannot
    trace is returned as it is (its ReLU modules are still swapped)."""
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # fx raises many types for untraceable Python code
        return model
    graph = traced.graph
    changed = False
    for node in list(graph.nodes):
        relu = ((node.op == "call_function" and node.target in _RELU_CALLS)
                or (node.op == "call_method" and node.target in ("relu", "relu_")))
        pool = node.op == "call_function" and node.target is F.max_pool2d
        if not (relu or pool):
            continue
        name = _free_name(traced, f"{node.name}_clip" if relu else f"{node.name}_avg")
        traced.add_submodule(name, make() if relu else _pool_from_call(node))
        with graph.inserting_after(node):
            new = graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        changed = True
    if not changed:
        return model
    graph.lint()
    traced.recompile()
    return traced


def _pool_from_call(node: fx.Node) -> nn.AvgPool2d:
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    values = dict(zip(names, node.args[1:], strict=False)) | dict(node.kwargs)
    kernel = values["kernel_size"]
    return _avg_pool(node.name, kernel, values.get("stride") or kernel, values.get("padding", 0),
                     values.get("ceil_mode", False))


def _free_name(module: nn.Module, base: str) -> str:
    taken = dict(module.named_modules())
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


class Sum(nn.Module):
    """A residual merge (``aten.add``: two inputs); fixed arguments, as TorchScript needs to
    save a fine-tuned network."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Cat(nn.Module):
    """Concatenation of any number of inputs, taken as one list (TorchScript has no varargs)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.dim)


def module_arguments(module: nn.Module, inputs: list) -> tuple:
    """How ``module`` takes its node's inputs: one list for a ``Cat``, else one each."""
    return (list(inputs),) if isinstance(module, Cat) else tuple(inputs)


def from_ann(ann) -> fx.GraphModule:
    """An ``AnnGraph`` (what ``neurodeploy.frontend.load_model`` returns, BatchNorm folded) as
    a trainable module built from the graph's own op modules (``AnnGraph.modules``, fresh
    copies so training leaves the graph as it was)."""
    root = nn.Module()
    graph = fx.Graph()
    values: dict[str, fx.Node] = {}
    inputs = 0
    for node in ann.nodes:
        if node.op == "input":  # one argument per input, in order (x, x_1, ...)
            values[node.name] = graph.placeholder(f"x_{inputs}" if inputs else "x")
            inputs += 1
            continue
        key = _free_name(root, node.name.replace(".", "_"))
        module = copy.deepcopy(ann.modules()[node.name]).train()
        root.add_module(key, module)
        values[node.name] = graph.call_module(
            key, module_arguments(module, [values[i] for i in node.inputs]))
    graph.output(values[ann.output])
    return fx.GraphModule(root, graph, class_name="ConvertedAnn")


__all__ = ["STYLES", "Cat", "ClipStyle", "Sum", "ThresholdClip", "clips", "from_ann",
           "init_thresholds", "module_arguments", "prepare", "threshold_clip"]

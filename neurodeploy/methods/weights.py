"""Weight calibration through time: a synapse layer's weights and bias trained, on unlabeled
images, so its spiking neurons reproduce the ANN activation (SNN calibration's advanced
pipeline, algorithms.md §2.3C; dual-phase phase II (b), §3.3).

The layer and its neurons run over T steps on the input spike trains recorded from the
deployed integer network (``methods.deployed``), so upstream rounding is part of what is
corrected; the threshold gets a tanh surrogate gradient. The loss is a choice of the method:
SNN calibration compares values (MSE), dual-phase the per-sample softmax (KL divergence, as
the authors' code). A quarter of the images only scores the fit: it stops after a few passes
without a better score, or without one better by a set fraction (early stopping), and the
best state on them is kept.

A population fed through a residual sum is fitted as the sum: every summand runs on its own
recorded upstream spikes, the weighted summands' weights are fitted together, an identity
shortcut passes its upstream values unchanged, and the population's bias sits in the first
weighted summand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.core.meta import copy_graph, population_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.frontend.ann import ACTIVATIONS, AnnGraph, AnnNode
from neurodeploy.methods.corrections import with_population
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.nir_compat import replace_node
from neurodeploy.nn import from_ann

HELD_OUT = 0.25  #: fraction of the images that only scores the fit
SURROGATE_SLOPE = 2.5  #: alpha of the tanh surrogate (dual-phase's initial value)
LOSSES = ("mse", "kl")
#: the share of the memory budget the fit's input values may take to be kept (``_Upstream``)
KEPT_SHARE = 0.25
KEPT_BATCH = 64  #: images converted at a time when they are kept


@dataclass(frozen=True)
class WeightFit:
    """How one layer is fitted: the loss (``LOSSES``), most passes over the fitting images,
    passes without an improvement of the held-out loss before the fit stops, the fraction of
    the best loss a pass must take off to count as one (the best state is kept whatever the
    size of its gain), batch size and Adam's learning rate."""

    loss: str
    epochs: int = 20
    patience: int = 2
    min_improvement: float = 0.0
    batch: int = 64
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"weight calibration loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0 <= self.min_improvement < 1:
            raise ValueError(f"min_improvement must be in [0, 1), got {self.min_improvement}")


def calibrate_weights(snn: nir.NIRGraph, pop: str, net: DeployedNetwork, target: np.ndarray,
                      fit: WeightFit) -> tuple[nir.NIRGraph, dict]:
    """``pop``'s synapse weights and bias fitted to the ANN activation ``target`` on ``net``'s
    images; the graph and a report (held-out loss before and after, or why the layer was
    skipped)."""
    merge = input_merge(net.ctx.ann, population_meta(snn, pop).source)
    paths = None if merge is None else _paired_paths(merge, snn, pop, net)
    if fit.epochs == 0 or paths is None or len(target) < 2:
        why = "disabled" if fit.epochs == 0 else "unsupported input" if paths is None else \
            "one image: none to hold out"
        return snn, {"skipped": why}
    upstream = _Upstream(snn, merge, paths, net)
    layer = _LayerThroughTime(merge, population_meta(snn, pop), target.shape[1:], fit.loss)
    split = max(1, int(len(target) * (1 - HELD_OUT)))
    target_t = torch.as_tensor(target, dtype=torch.float32)
    held = np.arange(split, len(target))
    best = (layer.score(upstream, held, target_t, fit.batch), layer.state())
    start = best[0]
    optimizer = AmsGrad(list(layer.parameters()), lr=fit.lr)
    passes = stale = 0
    while passes < fit.epochs and stale < fit.patience:
        for index in torch.randperm(split).split(fit.batch):
            optimizer.zero_grad()
            layer.loss(upstream(index.numpy()), target_t[index]).backward()
            optimizer.step()
        passes += 1
        held_loss = layer.score(upstream, held, target_t, fit.batch)
        stale = 0 if held_loss < best[0] * (1 - fit.min_improvement) else stale + 1
        if held_loss < best[0]:
            best = (held_loss, layer.state())
    weights, bias = best[1]
    nodes = {path.synapse: replace_node(snn.nodes[path.synapse],
                                        weight=weights[chain.synapse.name].astype(np.float64))
             for chain, path in zip(merge.chains, paths, strict=True)
             if chain.synapse is not None}
    snn = with_population(copy_graph(snn, nodes), pop, bias=bias.astype(np.float64))
    return snn, {"loss": fit.loss, "held_out_before": start, "held_out_after": best[0],
                 "passes": passes}


class AmsGrad:
    """Adam with AMSGrad: ``torch.optim.Adam(amsgrad=True)``'s update on the CPU, in its
    order of operations (the same values). torch.optim's first use imports torch._dynamo:
    1.7 s of CPU time, most of what a p99.99 compile takes, paid by every weight fit."""

    def __init__(self, params: list[torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.steps = 0
        #: per parameter: the moving averages of the gradient and of its square, and the
        #: largest of the latter so far
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p), torch.zeros_like(p))
                        for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.steps)
        correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        for p, (mean, square, largest) in zip(self.params, self.moments, strict=True):
            grad = p.grad
            mean.lerp_(grad, 1 - beta1)
            square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            torch.maximum(largest, square, out=largest)
            p.addcdiv_(mean, (largest.sqrt() / correction2_sqrt).add_(self.eps),
                       value=-step_size)


@dataclass(frozen=True)
class _Chain:
    """The ANN nodes from the previous activation (or the input) to one synapse layer."""

    source: str  #: the upstream activation node, or the input node
    nodes: list[AnnNode]  #: pooling/flattening in order, then the synapse layer last; none for
    #: an identity shortcut (the upstream values are the summand)

    @property
    def synapse(self) -> AnnNode | None:
        return self.nodes[-1] if self.nodes else None


@dataclass(frozen=True)
class _Merge:
    """What feeds one activation: a single chain, or the summands of a residual add."""

    chains: list[_Chain]
    add: AnnNode | None  #: the residual add, None for a single chain

    @property
    def weighted(self) -> list[AnnNode]:
        """The synapse layers the fit trains (identity shortcuts have none)."""
        return [c.synapse for c in self.chains if c.synapse is not None]


def input_chain(ann: AnnGraph, start: AnnNode) -> _Chain | None:
    """The single-input path ending at ``start`` back to an activation or the input; None
    through anything but pooling and flattening."""
    nodes: list[AnnNode] = []
    node = start
    while node.op != "input" and node.op not in ACTIVATIONS:
        if node is not start and node.op not in ("avgpool2d", "flatten"):
            return None
        nodes.insert(0, node)
        if len(node.inputs) != 1:
            return None
        node = ann.node(node.inputs[0])
    return _Chain(node.name, nodes)


def input_merge(ann: AnnGraph, activation: str) -> _Merge | None:
    """The chains into ``activation``: one, or one per summand of the residual add before it;
    None where a chain is not a single path or no summand has weights."""
    head = ann.node(ann.node(activation).inputs[0])
    add = head if head.op == "add" else None
    chains = [input_chain(ann, ann.node(name)) for name in add.inputs] if add else \
        [input_chain(ann, head)]
    if None in chains:
        return None
    merge = _Merge(chains, add)
    return merge if merge.weighted else None


def _paired_paths(merge: _Merge, snn: nir.NIRGraph, pop: str, net: DeployedNetwork
                  ) -> list | None:
    """The population's synaptic paths (``DeployedNetwork.paths``), one per chain of
    ``merge`` in order; None where they do not pair up."""
    paths = net.paths[pop]
    if len(paths) != len(merge.chains):
        return None
    for chain, path in zip(merge.chains, paths, strict=True):
        source = path.source if _is_input(snn, path.source) else \
            population_meta(snn, path.source).source
        if source != chain.source or len(path.nodes) != max(1, len(chain.nodes)):
            return None
    return paths


def _is_input(snn: nir.NIRGraph, name: str) -> bool:
    return isinstance(snn.nodes[name], nir.Input)


class _Upstream:
    """What each chain of a population's merge feeds its synapse layer each step for some of
    the images, (T, len(index), *shape) in ANN units, float32: the input images every step, or
    the deployed network's spikes of the upstream population times its float theta (``net``
    keeps them as integers), through the chain's pooling and flattening.

    The fit reads every image once a pass: converting and pooling them again each pass took a
    sixth of calibrate. So the values of all images are made once and kept, while they take
    at most ``KEPT_SHARE`` of the memory budget; past that, per batch. The input images are
    not kept (they are the same every step: a view repeats them). Pooling is the same float
    arithmetic either way (each output from its own window)."""

    def __init__(self, snn: nir.NIRGraph, merge: _Merge, paths: list, net: DeployedNetwork):
        self.snn, self.net = snn, net
        self.pops = [None if _is_input(snn, p.source) else p.source for p in paths]
        self.prefixes = [_prefix(chain) for chain in merge.chains]
        count = len(net.images)
        keep = [k for k, pop in enumerate(self.pops)
                if pop is not None or self.prefixes[k] is not None]
        shapes = {k: self._chain_values(k, np.arange(1)).shape[2:] for k in keep}
        float32 = 4  # bytes
        size = sum(float32 * net.steps * count * int(np.prod(s)) for s in shapes.values())
        self.kept: dict[int, torch.Tensor] = {}
        if size <= KEPT_SHARE * net.ctx.memory_budget:
            for k, shape in shapes.items():
                kept = self.kept[k] = torch.empty((net.steps, count, *shape), dtype=torch.float32)
                for start in range(0, count, KEPT_BATCH):
                    stop = min(start + KEPT_BATCH, count)
                    kept[:, start:stop] = self._chain_values(k, np.arange(start, stop))

    def __call__(self, index: np.ndarray) -> list[torch.Tensor]:
        return [self.kept[k][:, torch.from_numpy(index)] if k in self.kept else
                self._chain_values(k, index) for k in range(len(self.pops))]

    def _chain_values(self, k: int, index: np.ndarray) -> torch.Tensor:
        x = self._values(self.pops[k], index)
        prefix = self.prefixes[k]
        if prefix is None:
            return x
        steps, batch = x.shape[:2]
        x = prefix.run(x.reshape(steps * batch, *x.shape[2:]))["output"]
        return x.reshape(steps, batch, *x.shape[1:])

    def _values(self, pop: str | None, index: np.ndarray) -> torch.Tensor:
        if pop is None:
            images = self.net.images[index]
            return torch.as_tensor(images, dtype=torch.float32).expand(self.net.steps,
                                                                        *images.shape)
        return torch.from_numpy(self.net.spike_values(self.snn, pop, index, np.float32))


def _prefix(chain: _Chain) -> AnnGraph | None:
    """The pooling and flattening between a chain's source and its synapse layer, as a graph
    of its own; None where there is none."""
    if len(chain.nodes) < 2:
        return None
    nodes = [AnnNode("x", "input", (), {"shape": (1,)})]
    for node in chain.nodes[:-1]:
        nodes.append(dataclasses.replace(node, inputs=(nodes[-1].name,)))
    return AnnGraph(nodes, nodes[-1].name)


class _BurstSpike(torch.autograd.Function):
    """Spikes sum_k H(x_k), x_k = (v - k theta) / theta for k = 1..max_burst; gradient of
    sum_k 0.5 * tanh(alpha * x_k) + 0.5 with respect to v (theta is not fitted). One node
    in the autograd graph per step whatever the burst size, and the spikes counted without
    one (a graph per spike made the fit at burst 4 take twice as long). At burst 1 the
    arithmetic is the one-spike surrogate's, in its order."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, theta: torch.Tensor, max_burst: int) -> torch.Tensor:
        ctx.save_for_backward(v, theta)
        ctx.max_burst = max_burst
        spikes = (v >= theta).to(v.dtype)  # x_k >= 0 exactly when v >= k theta (theta > 0)
        for k in range(2, max_burst + 1):
            spikes += v >= k * theta
        return spikes

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        v, theta = ctx.saved_tensors
        total = None
        for k in range(1, ctx.max_burst + 1):
            part = _surrogate(grad, (v - k * theta) / theta, theta)
            total = part if total is None else total.add_(part)
        return total, None, None


class _NegativeBurst(torch.autograd.Function):
    """The dual threshold's negative spikes: sum_k H(y_k) over k = 1..cap, y_k = (theta_neg -
    (k - 1) theta - v) / theta, where cap (per neuron, not differentiable) is the smaller of
    the burst size and the net count sent so far; gradient of sum_k 0.5 * tanh(alpha y_k)
    with respect to v, as ``_BurstSpike``'s."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, theta: torch.Tensor, theta_neg: torch.Tensor,
                cap: torch.Tensor, max_burst: int) -> torch.Tensor:
        ctx.save_for_backward(v, theta, theta_neg, cap)
        ctx.top = int(min(max_burst, cap.max()))  # no neuron may send more (none at the start)
        spikes = torch.zeros_like(v)
        for k in range(1, ctx.top + 1):  # y_k >= 0 exactly when v <= theta_neg - (k-1) theta
            spikes += (v <= theta_neg - (k - 1) * theta) & (cap >= k)
        return spikes

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        v, theta, theta_neg, cap = ctx.saved_tensors
        total = torch.zeros_like(v)
        for k in range(1, ctx.top + 1):
            part = _surrogate(grad, (theta_neg - (k - 1) * theta - v) / theta, theta)
            total -= part * (cap >= k)
        return total, None, None, None, None


def _surrogate(grad: torch.Tensor, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``grad`` times the slope of 0.5 tanh(alpha x), x = (v - boundary) / theta, in v:
    grad * 0.5 * alpha * (1 - t**2) / theta, in that order, in place (the temporaries took a
    third of this function's time). ``x`` is the caller's temporary; it is spent."""
    slope = torch.tanh(x.mul_(SURROGATE_SLOPE)).square_().neg_().add_(1)
    return (grad * 0.5).mul_(SURROGATE_SLOPE).mul_(slope).div_(theta)


def surrogate_steps(current: torch.Tensor, theta: torch.Tensor, v_init: torch.Tensor,
                    max_burst: int, theta_neg: torch.Tensor | None = None
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per step of ``current`` (T, batch, ...), the input including the bias: the spikes and
    the membrane after the reset, differentiable through ``_BurstSpike`` (and, with the dual
    threshold ``theta_neg``, ``_NegativeBurst``).

    The forward values are the rule's (core/neuron.py) for integer values without leak,
    input shift, bias table, reset to zero or saturation, which the fit does not model
    (tests/unit/core/test_rule_mirrors.py holds it to ``neuron.run`` there)."""
    v = v_init.expand_as(current[0])
    # the net spikes sent, which the negative ones spend
    count = None if theta_neg is None else torch.zeros_like(current[0])
    for step in current:
        v = v + step
        s = _BurstSpike.apply(v, theta, max_burst)
        if theta_neg is not None:
            s = s - _NegativeBurst.apply(v, theta, theta_neg, count, max_burst)
            count = count + s.detach()
        v = v - s * theta
        yield s, v


class _LayerThroughTime(torch.nn.Module):
    """One synapse layer (or the summands of a residual merge) and its neurons over T steps,
    differentiable: reset by subtraction, up to ``max_burst`` spikes a step, negative spikes
    where the population has the dual threshold, no bias table (stages after the fit add
    those)."""

    def __init__(self, merge: _Merge, meta, shape: tuple[int, ...], loss: str) -> None:
        super().__init__()
        self.loss_name = loss
        self.max_burst = int(meta.max_burst)
        biased = merge.weighted[0]
        nodes, ends = [], []
        for k, chain in enumerate(merge.chains):
            name = f"{chain.source}#{k}"  # one input per summand, even from one source
            nodes.append(AnnNode(name, "input", (), {"shape": (1,)}))
            if chain.synapse is not None:  # its pooling and flattening are ``_Upstream``'s
                bias = np.asarray(meta.bias, np.float32) if chain.synapse is biased else None
                nodes.append(dataclasses.replace(chain.synapse, inputs=(name,),
                                                 params={**chain.synapse.params, "bias": bias}))
                name = chain.synapse.name
            ends.append(name)
        if merge.add is not None:
            nodes.append(dataclasses.replace(merge.add, inputs=tuple(ends)))
        self.module = from_ann(AnnGraph(nodes, nodes[-1].name))
        layers = [m for m in self.module.modules()
                  if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
        self.layers = dict(zip((node.name for node in merge.weighted), layers, strict=True))
        self.biased = biased.name

        def param(value) -> torch.Tensor:
            return torch.as_tensor(param_for_shape(value, shape), dtype=torch.float32)

        self.register_buffer("theta", param(meta.theta))
        self.register_buffer("v_init", param(meta.v_init))
        self.theta_neg = param(meta.theta_neg) if meta.dual else None

    def forward(self, upstream: list[torch.Tensor]) -> torch.Tensor:
        """Per chain (T, batch, ...) input values -> (batch, ...) mean value sent per step."""
        steps, batch = upstream[0].shape[:2]
        current = self.module(*(x.reshape(steps * batch, *x.shape[2:]) for x in upstream))
        current = current.reshape(steps, batch, *current.shape[1:])
        sent = torch.zeros_like(current[0])
        for s, _ in surrogate_steps(current, self.theta, self.v_init, self.max_burst,
                                    self.theta_neg):
            sent = sent + s * self.theta
        return sent / steps

    def loss(self, upstream: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        rate = self(upstream).flatten(1)
        if self.loss_name == "mse":
            return F.mse_loss(rate, target.flatten(1))
        return F.kl_div(F.log_softmax(rate, dim=1), F.softmax(target.flatten(1), dim=1),
                        reduction="batchmean")

    @torch.no_grad()
    def score(self, upstream: _Upstream, index: np.ndarray, target: torch.Tensor, batch: int
              ) -> float:
        """The loss on the images ``index``, ``batch`` at a time: the mean of the batches'
        losses weighted by their sizes. In one batch the held-out quarter took a fifth of the
        fit (its temporaries outgrow the caches), and its input values, kept through every
        pass, took as much memory as the spike records they come from."""
        total = 0.0
        for rows in torch.from_numpy(index).split(batch):
            total += float(self.loss(upstream(rows.numpy()), target[rows])) * len(rows)
        return total / len(index)

    def state(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(ANN synapse layer -> weight, the population's bias), copies."""
        weights = {name: layer.weight.detach().numpy().copy()
                   for name, layer in self.layers.items()}
        return weights, self.layers[self.biased].bias.detach().numpy().copy()

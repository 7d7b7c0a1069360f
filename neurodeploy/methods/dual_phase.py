"""Dual-phase conversion (Wang et al.; algorithms.md §3), phase II on the SNN side.

Phase I is training: ``neurodeploy.nn.prepare(model, "dual_phase", levels=T)`` makes every
activation a noisy quantize-clip with T levels and a learned threshold (or ``neurodeploy
finetune --method dual_phase``). Conversion then builds single-spike neurons with those
thresholds and ``v_init = theta/2`` and removes what the ANN cannot see, the residual
membrane error of uneven spike trains, on a few hundred unlabeled images, layer by layer in
network order (so each layer is corrected for its already-corrected inputs):

1. membrane-potential calibration: ``v_init += T * (mean ANN activation - mean SNN rate)``
   per neuron, the rates measured on the deployed integer network (``methods.probe``);
2. weight calibration through time: the layer's weights and bias are trained so the SNN
   layer, run over T steps on its recorded input spike trains with a surrogate gradient for
   the threshold, matches the ANN activation (KL divergence between the softmax of the two,
   per sample, as the authors' code); the best state on held-out images is kept;
3. membrane-potential calibration again, for the new weights.

Layers fed through a residual sum keep their weights (step 2 needs one input chain).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.frontend.ann import AnnGraph, AnnNode
from neurodeploy.graph import populations
from neurodeploy.meta import get_graph_meta, param_for_shape, population_meta, set_graph_meta
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.learned import LearnedClip
from neurodeploy.methods.potential import calibrate_potential
from neurodeploy.methods.probe import ann_activations, simulate
from neurodeploy.nn import from_ann
from neurodeploy.passes.base import copy_graph, update_populations
from neurodeploy.progress import progress

CALIBRATION_IMAGES = 256  #: "a few hundred unlabeled images" (the authors use 256-1280)
HELD_OUT = 0.25  #: fraction of the calibration images that only scores weight calibration
SURROGATE_SLOPE = 2.5  #: alpha of the tanh surrogate (the authors' initial value)


@dataclass(frozen=True)
class DualPhase:
    name: str = "dual_phase"
    builds: bool = True
    needs_calibration: bool = True
    weight_epochs: int = 20  #: passes over the fitting images per layer (0: skip step 2)
    batch: int = 64
    lr: float = 1e-3

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        images = ctx.calibration(self.name)[:CALIBRATION_IMAGES]
        snn = LearnedClip(self.name)(None, ctx)
        targets = ann_activations(ctx, images, snn)
        torch.manual_seed(ctx.seed)
        report = {}
        firing = [p for p in populations(snn) if population_meta(snn, p).fires]
        for pop in progress(firing, "dual-phase calibration", ctx.show_progress):
            snn = calibrate_potential(snn, pop, images, targets[pop], ctx)
            snn, report[pop] = self._weights(snn, pop, images, targets[pop], ctx)
            snn = calibrate_potential(snn, pop, images, targets[pop], ctx)
        meta = get_graph_meta(snn)
        note = {**meta.notes[self.name], "weight_calibration": report,
                "calibration_images": len(images)}
        set_graph_meta(snn, dataclasses.replace(meta, notes={**meta.notes, self.name: note}))
        return snn

    def _weights(self, snn: nir.NIRGraph, pop: str, images: np.ndarray, target: np.ndarray,
                 ctx: MethodContext) -> tuple[nir.NIRGraph, dict]:
        chain = input_chain(ctx.ann, population_meta(snn, pop).source)
        if self.weight_epochs == 0 or chain is None:
            return snn, {"skipped": "disabled" if self.weight_epochs == 0 else "residual input"}
        upstream = _upstream_spikes(snn, chain, images, ctx)
        layer = _LayerThroughTime(chain, population_meta(snn, pop), target.shape[1:],
                                  ctx.options.timesteps)
        split = max(1, int(len(images) * (1 - HELD_OUT)))
        target_t = torch.as_tensor(target, dtype=torch.float32)
        held = slice(split, None)
        best = (layer.score(upstream[:, held], target_t[held]), layer.state())
        start = best[0]
        optimizer = torch.optim.Adam(layer.parameters(), lr=self.lr, amsgrad=True)
        for _ in range(self.weight_epochs):
            for index in torch.randperm(split).split(self.batch):
                optimizer.zero_grad()
                layer.loss(upstream[:, index], target_t[index]).backward()
                optimizer.step()
            held_loss = layer.score(upstream[:, held], target_t[held])
            if held_loss < best[0]:
                best = (held_loss, layer.state())
        weight, bias = best[1]
        synapse = _synapse_name(snn, pop)
        node = dataclasses.replace(snn.nodes[synapse], weight=weight.astype(np.float64))
        snn = copy_graph(snn, {synapse: node})
        snn = update_populations(snn, lambda name, meta: dataclasses.replace(
            meta, bias=bias.astype(np.float64)) if name == pop else meta)
        return snn, {"held_out_kl_before": start, "held_out_kl_after": best[0]}


@dataclass(frozen=True)
class _Chain:
    """The ANN nodes from the previous activation (or the input) to one synapse layer."""

    source: str  #: the upstream activation node, or "input"
    nodes: list[AnnNode]  #: pooling/flattening in order, then the synapse layer last


def input_chain(ann: AnnGraph, activation: str) -> _Chain | None:
    """The single-input path into ``activation``'s synapse layer; None through a sum."""
    nodes = [ann.node(ann.node(activation).inputs[0])]
    while True:
        inputs = nodes[0].inputs
        if len(inputs) != 1:
            return None
        previous = ann.node(inputs[0])
        if previous.op in ("input", "relu", "clip"):
            return _Chain(previous.name, nodes)
        if previous.op not in ("avgpool2d", "flatten"):
            return None
        nodes.insert(0, previous)


def _upstream_spikes(snn: nir.NIRGraph, chain: _Chain, images: np.ndarray,
                     ctx: MethodContext) -> torch.Tensor:
    """(T, batch, *shape) values the chain receives each step, in ANN units."""
    steps = ctx.options.timesteps
    if chain.source == "input":
        return torch.as_tensor(images, dtype=torch.float32).expand(steps, *images.shape)
    pop = next(p for p in populations(snn) if population_meta(snn, p).source == chain.source)
    values = simulate(snn, images, ctx).spike_values(pop)
    return torch.as_tensor(values, dtype=torch.float32)


def _synapse_name(snn: nir.NIRGraph, pop: str) -> str:
    return next(src for src, dst in snn.edges if dst == pop)


class _Spike(torch.autograd.Function):
    """Heaviside of (v - theta) / theta; gradient of 0.5 * tanh(alpha * x) + 0.5."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * 0.5 * SURROGATE_SLOPE * (1 - torch.tanh(SURROGATE_SLOPE * x) ** 2)


class _LayerThroughTime(torch.nn.Module):
    """One synapse layer and its single-spike neurons over T steps, differentiable."""

    def __init__(self, chain: _Chain, meta, shape: tuple[int, ...], timesteps: int) -> None:
        super().__init__()
        synapse = chain.nodes[-1]
        params = {**synapse.params, "bias": np.asarray(meta.bias, np.float32)}
        inputs = (chain.source,)
        nodes = [AnnNode(chain.source, "input", (), {"shape": (1,)})]
        for node in chain.nodes:
            nodes.append(dataclasses.replace(node, inputs=inputs, params=params
                                             if node is synapse else node.params))
            inputs = (node.name,)
        self.module = from_ann(AnnGraph(nodes, synapse.name))
        as_tensor = {"dtype": torch.float32}
        self.register_buffer("theta", torch.as_tensor(param_for_shape(meta.theta, shape),
                                                      **as_tensor))
        self.register_buffer("v_init", torch.as_tensor(param_for_shape(meta.v_init, shape),
                                                       **as_tensor))
        self.timesteps = timesteps

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """(T, batch, ...) input values -> (batch, ...) mean value sent per step."""
        steps, batch = spikes.shape[:2]
        current = self.module(spikes.reshape(steps * batch, *spikes.shape[2:]))
        current = current.reshape(steps, batch, *current.shape[1:])
        v = self.v_init.expand_as(current[0])
        sent = torch.zeros_like(current[0])
        for t in range(steps):
            v = v + current[t]
            s = _Spike.apply((v - self.theta) / self.theta)
            v = v - s * self.theta
            sent = sent + s * self.theta
        return sent / steps

    def loss(self, spikes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        rate = self(spikes).flatten(1)
        return F.kl_div(F.log_softmax(rate, dim=1), F.softmax(target.flatten(1), dim=1),
                        reduction="batchmean")

    @torch.no_grad()
    def score(self, spikes: torch.Tensor, target: torch.Tensor) -> float:
        return float(self.loss(spikes, target))

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        layer = next(m for m in self.module.modules() if isinstance(m, torch.nn.Linear
                                                                   | torch.nn.Conv2d))
        return (layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())

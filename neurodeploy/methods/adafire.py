"""AdaFire (Wang et al., AAAI 2025; algorithms.md §4): burst neurons with a per-layer burst
size, and sensitivity spike compression (SSC). A builder on top of SNN calibration.

1. Every layer may send up to ``B0`` spikes per step (graded payload); for each layer and
   each burst size B in 1..B0 the MMSE threshold for B is searched (``methods.mmse``).
2. Sensitivity table: for each layer and B, only that layer at B (the others at B0), the
   deployed network runs on calibration images; sensitivity = symmetric KL between its
   output softmax and the ANN's, cost = the synaptic operations the layer's spikes cause (a
   graded spike is one event, as on the chip).
3. Per-layer B minimising the summed sensitivity with the summed cost within ``ratio`` of the
   cost at ``desired`` spikes per layer (``methods.search``).
4. SSC: per layer, thresholds scaled by r in 1.0, 1.5, ..., 10.0 (a burst then sends the same
   value in fewer, larger quanta); the scales minimising the summed cost with the summed
   sensitivity within ``ssc_ratio`` of the unscaled network's. A layer's larger scales are
   not probed once one scale cannot fit that budget next to the layers already probed.
5. The theta/(2T) rounding shift and the bias and potential correction of ``calibrate``.

Targets without graded spikes cannot send bursts: the stage refuses them up front.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.convert import to_snn
from neurodeploy.core.graph import readout_name
from neurodeploy.core.meta import population_meta
from neurodeploy.errors import InputError
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.calibration import correction_images
from neurodeploy.methods.corrections import (
    correct,
    firing,
    rounding_shift,
    with_note,
    with_populations,
)
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.mmse import activation_samples, mmse_thresholds_by_burst
from neurodeploy.methods.probe import ActivationStream
from neurodeploy.methods.search import pareto_choice, symmetric_kl
from neurodeploy.progress import counter

INITIAL_BURST = 8  #: the authors' initialspike
DESIRED_BURST = 4  #: the authors' maxspike: the cost budget is the cost at this burst
SCALES = np.arange(1.0, 10.01, 0.5)  #: the authors' SSC grid
SEARCH_SAMPLES = 128  #: images the sensitivity tables are measured on


@dataclass(frozen=True)
class AdaFire:
    name: str = "adafire"
    builds: bool = True
    needs_calibration: bool = True
    window_specific: bool = True
    ratio: float = 1.0  #: cost budget, relative to every layer at DESIRED_BURST (README: 1.0)
    ssc_ratio: float = 1.1  #: SSC sensitivity budget, relative to the unscaled network

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        if not ctx.target.spikes.graded:
            raise InputError(f"method stage '{self.name}' sends burst spikes, but target "
                             f"'{ctx.target.name}' has binary spikes",
                             hint="Use a target with graded spikes (e.g. loihi2)")
        bursts = list(range(1, burst_ceiling(ctx) + 1))
        # each step in its own function: the activation samples and the search's deployed
        # network (a spike record per layer) are freed before the corrections make theirs
        graph, note = self._search(ctx, self._thresholds(ctx, bursts), bursts)
        graph, errors = correct(graph, ctx, correction_images(ctx, self.name), self.name,
                                ctx.target.neuron.per_neuron_v_init)
        return with_note(graph, self.name, {
            **note, "mean_abs_rate_error_before": errors,
            "seconds": time.perf_counter() - start})

    def _thresholds(self, ctx: MethodContext, bursts: list[int]
                    ) -> dict[str, dict[int, float | np.ndarray]]:
        """Activation node -> burst size -> its MMSE threshold."""
        samples = activation_samples(ctx.ann, ctx.calibration(self.name),
                                     ctx.options.per_channel, ctx.seed, ctx.memory_budget)
        if not samples:
            raise InputError(f"method stage '{self.name}' chooses the bursts of ReLU layers, "
                             "and the model has none", hint="Use method='calibrate'")
        return {name: burst_thresholds(values, ctx, bursts) for name, values in samples.items()}

    def _search(self, ctx: MethodContext, thetas: dict[str, dict[int, float | np.ndarray]],
                bursts: list[int]) -> tuple[nir.NIRGraph, dict]:
        """The network of the chosen bursts and scales, and the note on how they were chosen."""
        top = bursts[-1]
        search = CandidateSearch(ctx, correction_images(ctx, self.name, SEARCH_SAMPLES), thetas)
        layers = list(thetas)
        chosen = dict.fromkeys(layers, top)
        sens, cost = search.table(chosen, [("burst", b) for b in bursts], self.name)
        budget = self.ratio * cost[:, bursts.index(min(DESIRED_BURST, top))].sum()
        picks = pareto_choice(sens, cost, budget)
        chosen = {name: bursts[k] for name, k in zip(layers, picks, strict=True)}
        keep = search.sensitivity(chosen) * len(layers) * self.ssc_ratio
        ssc_sens, ssc_cost = search.table(chosen, [("scale", r) for r in SCALES], self.name,
                                          limit=keep)
        scales = {name: float(SCALES[k]) for name, k in
                  zip(layers, pareto_choice(ssc_cost, ssc_sens, keep), strict=True)}
        return search.build(chosen, scales), {
            "max_burst": chosen, "threshold_scale": scales,
            "burst_sensitivity": sens, "burst_synops": cost}


def burst_ceiling(ctx: MethodContext) -> int:
    """The largest burst the search considers: the authors' initial burst, within the
    target's and, when the options ask for bursts (``max_burst`` above 1), within theirs."""
    asked = ctx.options.max_burst if ctx.options.max_burst > 1 else INITIAL_BURST
    return max(1, min(INITIAL_BURST, ctx.target.neuron.max_burst, asked))


def burst_thresholds(values: np.ndarray, ctx: MethodContext, bursts: list[int]
                     ) -> dict[int, float | np.ndarray]:
    found = mmse_thresholds_by_burst(values, ctx.options.timesteps, bursts)
    return {b: theta if ctx.options.per_channel else float(theta[0])
            for b, theta in found.items()}


class CandidateSearch:
    """Builds and measures candidate networks (each layer: a burst size and a scale)."""

    def __init__(self, ctx: MethodContext, images: np.ndarray,
                 thetas: dict[str, dict[int, float | np.ndarray]]):
        self.ctx, self.images, self.thetas = ctx, images, thetas
        self.reference: np.ndarray | None = None
        #: every candidate differs from the base network in one layer: the layers before it
        #: keep their spikes, only it and the layers after it run again
        self.net: DeployedNetwork | None = None

    def build(self, bursts: dict[str, int], scales: dict[str, float] | None = None
              ) -> nir.NIRGraph:
        scales = scales or {}
        thresholds = {name: self.thetas[name][b] * scales.get(name, 1.0)
                      for name, b in bursts.items()}
        graph = to_snn(self.ctx.ann, thresholds, self.ctx.options)
        graph = with_populations(graph, {pop: {"max_burst": bursts[name]} for pop in firing(graph)
                                         for name in [_source(graph, pop)] if name in bursts})
        return rounding_shift(graph, self.ctx.options.timesteps)

    def measure(self, graph: nir.NIRGraph, population: str) -> tuple[float, float]:
        """(symmetric KL to the ANN's output, synaptic operations ``population`` causes per
        image)."""
        if self.net is None:
            self.reference = ActivationStream(self.ctx, self.images, graph).pop(
                readout_name(graph))
            self.net = DeployedNetwork(graph, self.images, self.ctx)
        caused = sum(ops / len(self.images) for ops in self.net.synops(graph, population))
        return symmetric_kl(self.net.logits(graph), self.reference), caused

    def sensitivity(self, bursts: dict[str, int]) -> float:
        """Symmetric KL to the ANN's output of the network with these bursts, unscaled."""
        graph = self.build(bursts)
        return self.measure(graph, _population(graph, next(iter(bursts))))[0]

    def table(self, base: dict[str, int], options: list[tuple[str, float]], stage: str,
              limit: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(layers, options) sensitivity and cost, changing one layer at a time from base.

        The base network is measured once for every layer's option that leaves it as it is.
        The last layer is probed first: a probe re-runs the changed layer and the layers after
        it, which the probe before changed, so no probe pays for restoring one.

        ``limit`` is the budget of the summed sensitivity. A layer's options come in order of
        coarseness, and once one's sensitivity plus the least each layer probed before adds
        exceeds it, that option cannot be chosen: it and the layer's coarser options are
        infinite, not probed (on the tables of the examples and the VGG-11 shape the
        sensitivity only grows from there)."""
        layers = list(base)
        sens, cost = np.full((2, len(layers), len(options)), np.inf)
        graph = self.build(base)
        for i, layer in enumerate(layers):
            kept = [k for k, (kind, value) in enumerate(options)
                    if value == (base[layer] if kind == "burst" else 1.0)]
            sens[i, kept], cost[i, kept] = self.measure(graph, _population(graph, layer))
        bar = counter(int(np.isinf(sens).sum()), f"{stage} {options[0][0]} search",
                      self.ctx.show_progress)
        least = 0.0  # what the layers probed so far add to any choice, at the least
        for i in reversed(range(len(layers))):
            for k in np.flatnonzero(np.isinf(sens[i])):
                sens[i, k], cost[i, k] = self._probe(base, layers[i], options[k])
                bar.update()
                if sens[i, k] + least > limit:
                    sens[i, k] = cost[i, k] = np.inf
                    bar.update(int(np.isinf(sens[i, k + 1:]).sum()))
                    break
            least += sens[i].min()
        bar.close()
        return sens, cost

    def _probe(self, base: dict[str, int], layer: str, option: tuple[str, float]
               ) -> tuple[float, float]:
        """``measure`` of the base network with ``layer`` changed to ``option``."""
        kind, value = option
        bursts, scales = dict(base), {}
        if kind == "burst":
            bursts[layer] = int(value)
        else:
            scales[layer] = value
        graph = self.build(bursts, scales)
        return self.measure(graph, _population(graph, layer))


def _source(graph: nir.NIRGraph, population: str) -> str:
    return population_meta(graph, population).source


def _population(graph: nir.NIRGraph, activation: str) -> str:
    return next(p for p in firing(graph) if _source(graph, p) == activation)


"""SNN calibration (Li et al., ICML 2021; algorithms.md §2): a training-free builder.

1. thresholds by MMSE search for the compiled T (``methods.mmse``);
2. the theta/(2T) rounding shift in the bias instead of v_init = theta/2;
3. layer by layer on the deployed integer network, in network order: bias correction (per
   channel) and potential correction (per-neuron ``v_init``) (``methods.corrections``); then
   weight calibration (the "advanced" pipeline, §2.3C: the layer's weights and bias fitted
   through time to the ANN activation, MSE loss, ``methods.weights``) and the corrections
   again for the new weights.

``correct`` is step 3 alone as a refiner, for a network whose thresholds another stage chose:
``ecl+correct`` (with ``--max-burst``) compiles the trained clips with burst spikes and then
corrects what the short window still gets wrong on the deployed network.

Weight calibration is on by default: at T=4 on the Fashion-MNIST CNN it is worth about one
point (benchmarks/methods_ops.py, docs/methods.md) for a minute or two of compile time.
``Calibrate(weights=None)`` is the light pipeline (corrections only, on 256 images).
It needs only unlabeled images; the result is specific to the compiled T (the shift and the
corrections are).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np
import torch

from neurodeploy.convert import to_snn
from neurodeploy.frontend.ann import ACTIVATIONS
from neurodeploy.methods.base import MethodContext, seeded_subset
from neurodeploy.methods.corrections import (
    correct,
    correct_population,
    layer_by_layer,
    rounding_shift,
    with_note,
)
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.mmse import activation_samples, mmse_thresholds
from neurodeploy.methods.probe import ActivationStream
from neurodeploy.methods.weights import WeightFit, calibrate_weights

#: images the corrections are measured on (the authors use one batch of 128)
CORRECTION_SAMPLES = 256
#: images weight calibration fits on, drawn from the calibration source when the other stages
#: use fewer, a seeded subset when they use more (the authors use 1024)
WEIGHT_SAMPLES = 1024
#: the authors' loss; a pass must take 1% off the best held-out loss to keep the fit going
#: (later passes gained a fraction of a percent each, for half of calibrate's time)
MSE_FIT = WeightFit("mse", min_improvement=0.01)


def correction_images(ctx: MethodContext, stage: str, samples: int = CORRECTION_SAMPLES
                      ) -> np.ndarray:
    """A seeded subset of the calibration images."""
    return seeded_subset(ctx.calibration(stage), samples, ctx.seed)


def calibrated_thresholds(ctx: MethodContext, stage: str, max_burst: dict[str, int]
                          ) -> dict[str, float | np.ndarray]:
    samples = activation_samples(ctx.ann, ctx.calibration(stage), ctx.options.per_channel,
                                 ctx.seed, ctx.memory_budget)
    return mmse_thresholds(samples, ctx.options.timesteps, max_burst, ctx.options.per_channel)


@dataclass(frozen=True)
class Calibrate:
    name: str = "calibrate"
    builds: bool = True
    needs_calibration: bool = True
    window_specific: bool = True
    #: per-neuron v_init ("advanced"; only where the target can load one per neuron); bias
    #: correction only if False
    potential: bool = True
    #: weight calibration of every layer (the advanced pipeline); None: corrections only
    weights: WeightFit | None = MSE_FIT

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        burst = ctx.options.max_burst
        activations = [n.name for n in ctx.ann.nodes if n.op in ACTIVATIONS]
        thresholds = calibrated_thresholds(ctx, self.name, dict.fromkeys(activations, burst))
        graph = rounding_shift(to_snn(ctx.ann, thresholds, ctx.options), ctx.options.timesteps)
        potential = self.potential and ctx.target.neuron.per_neuron_v_init
        if self.weights is None:
            graph, errors = correct(graph, ctx, correction_images(ctx, self.name), self.name,
                                    potential)
            fits = {}
        else:
            graph, errors, fits = self._with_weights(graph, ctx, potential, self.weights)
        return with_note(graph, self.name, {
            "mean_abs_rate_error_before": errors, "potential_correction": potential,
            "weight_calibration": fits,
            "seconds": time.perf_counter() - start})

    def _with_weights(self, graph: nir.NIRGraph, ctx: MethodContext, potential: bool,
                      fit: WeightFit) -> tuple[nir.NIRGraph, dict, dict]:
        # as many as the fit takes, whatever the source holds: the images' spike records and
        # ANN targets are held for the layers being worked on
        images = seeded_subset(ctx.calibration(self.name, WEIGHT_SAMPLES), WEIGHT_SAMPLES,
                               ctx.seed)
        ann = ActivationStream(ctx, images, graph)
        net = DeployedNetwork(graph, images, ctx)
        torch.manual_seed(ctx.seed)
        errors, fits = {}, {}
        for name in layer_by_layer(graph, net, self.name, ctx.show_progress):
            target = ann.pop(name)
            graph, errors[name] = correct_population(graph, net, name, target, potential)
            graph, fits[name] = calibrate_weights(graph, name, net, target, fit)
            graph, _ = correct_population(graph, net, name, target, potential)
        return graph, errors, fits


#: the light pipeline (``calibrate_light``): corrections only, on 256 images
LIGHT = Calibrate("calibrate_light", weights=None)


@dataclass(frozen=True)
class Correct:
    """Bias and potential correction (step 3) of a network another stage built."""

    name: str = "correct"
    builds: bool = False
    needs_calibration: bool = True
    window_specific: bool = True

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        potential = ctx.target.neuron.per_neuron_v_init
        graph, errors = correct(graph, ctx, correction_images(ctx, self.name), self.name,
                                potential)
        return with_note(graph, self.name, {
            "mean_abs_rate_error_before": errors, "potential_correction": potential,
            "seconds": time.perf_counter() - start})

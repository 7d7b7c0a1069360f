"""SNN calibration (Li et al., ICML 2021; algorithms.md §2): a training-free builder.

1. thresholds by MMSE search for the compiled T (``methods.mmse``);
2. the theta/(2T) rounding shift in the bias instead of v_init = theta/2;
3. bias correction (per channel) and potential correction (per-neuron ``v_init``), layer by
   layer on the deployed integer network (``methods.corrections``).

It needs only unlabeled images; the result is specific to the compiled T (the shift and the
corrections are).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.convert import to_snn
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.corrections import correct, rounding_shift, with_note
from neurodeploy.methods.mmse import ACTIVATIONS, activation_samples, mmse_thresholds

#: images the corrections are measured on (the authors use one batch of 128)
CORRECTION_SAMPLES = 256


def correction_images(ctx: MethodContext, stage: str, samples: int = CORRECTION_SAMPLES
                      ) -> np.ndarray:
    """A seeded subset of the calibration images."""
    calib = ctx.calibration(stage)
    rng = np.random.default_rng(ctx.seed)
    return calib[np.sort(rng.permutation(len(calib))[:samples])]


def calibrated_thresholds(ctx: MethodContext, stage: str, max_burst: dict[str, int]
                          ) -> dict[str, float | np.ndarray]:
    samples = activation_samples(ctx.ann, ctx.calibration(stage), ctx.options.per_channel,
                                 ctx.seed)
    return mmse_thresholds(samples, ctx.options.timesteps, max_burst, ctx.options.per_channel)


@dataclass(frozen=True)
class Calibrate:
    name: str = "calibrate"
    builds: bool = True
    needs_calibration: bool = True
    #: per-neuron v_init ("advanced"; only where the target can load one per neuron); bias
    #: correction only if False
    potential: bool = True

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        burst = ctx.options.max_burst
        activations = [n.name for n in ctx.ann.nodes if n.op in ACTIVATIONS]
        thresholds = calibrated_thresholds(ctx, self.name, dict.fromkeys(activations, burst))
        graph = rounding_shift(to_snn(ctx.ann, thresholds, ctx.options), ctx.options.timesteps)
        potential = self.potential and ctx.target.neuron.per_neuron_v_init
        graph, errors = correct(graph, ctx, correction_images(ctx, self.name), self.name,
                                potential)
        return with_note(graph, self.name, {
            "mean_abs_rate_error_before": errors, "potential_correction": potential,
            "seconds": time.perf_counter() - start})


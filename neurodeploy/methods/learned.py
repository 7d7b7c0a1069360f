"""Builders whose thresholds were learned in training: QCFS and error-compensation learning.

Both read the thresholds from the model's ``neurodeploy.nn.ThresholdClip`` layers (the
learned clip is the threshold, so there is no clipping error left to calibrate) and start
every neuron at ``v_init = theta/2`` (the shift that turns the rate's floor into a round,
algorithms.md §1.2). They differ in the neuron:

- ``qcfs`` (Bu et al., ICLR 2022; algorithms.md §1): single positive spikes.
- ``ecl`` (error-compensation learning, Liu et al., ICML 2025; algorithms.md §6): adds the
  negative threshold ``theta_neg = -ratio * theta``. A neuron that fired on early input which
  later input cancels sends a negative spike, retracting it (only spikes it has sent: the
  net-count guard), so the count tracks the quantized ANN value instead of over-firing. Its
  optimized membrane initialization is ``v_init`` calibrated per neuron for the compiled T on
  unlabeled images (``methods/potential.py``), starting from theta/2. The negative threshold
  (0) and the calibrated ``v_init`` were chosen by measurement (docs/methods.md,
  benchmarks/dual_threshold.py).

With graded spikes (``max_burst`` > 1, e.g. ``--max-burst 8`` on loihi2) both send a clip of
L levels in fewer steps than L: each layer may send ``B = min(max_burst, ceil(L / T))`` spikes
a step at threshold ``theta / B``, so its window carries ``B * T >= L`` quanta of ``theta / B``
up to the same clip value ``theta``. At T = 1 such a network computes the quantized ANN itself
(up to the integer rounding); at larger T its residual unevenness is what ``+correct``
(``methods/calibration.py``) corrects on the deployed network.

``qcfs`` needs no calibration data; ``ecl`` needs a few hundred unlabeled images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import nir

from neurodeploy.convert import learned_thresholds, to_snn
from neurodeploy.core.meta import population_meta
from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods.base import MethodContext, seeded_subset
from neurodeploy.methods.corrections import firing, with_note, with_populations
from neurodeploy.methods.potential import calibrate_potentials

#: ECL's negative threshold as a fraction of theta (measured: docs/methods.md)
ECL_THETA_NEG_RATIO = 0.0
#: images v_init calibration measures on at most (their spikes and activations are kept)
POTENTIAL_SAMPLES = 1024


@dataclass(frozen=True)
class LearnedClip:
    name: str
    dual: bool = False
    theta_neg_ratio: float = ECL_THETA_NEG_RATIO
    v_init_ratio: float = 0.5
    #: then calibrate v_init per neuron for the compiled T (methods/potential.py)
    calibrate_v_init: bool = False
    builds: bool = True
    needs_calibration: bool = False

    @property
    def window_specific(self) -> bool:
        return self.calibrate_v_init

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        thresholds = require_clips(ctx.ann, self.name)
        levels = {n.name: int(n.params["levels"]) for n in ctx.ann.nodes if n.op == "clip"}
        bursts = {name: min(ctx.options.max_burst, -(-levels[name] // ctx.options.timesteps))
                  for name in thresholds}
        options = replace(ctx.options, dual=self.dual, theta_neg_ratio=self.theta_neg_ratio,
                          v_init_ratio=self.v_init_ratio, max_burst=1)
        snn = to_snn(ctx.ann, {name: theta / bursts[name] for name, theta in thresholds.items()},
                     options)
        snn = with_populations(snn, {pop: {"max_burst": bursts[population_meta(snn, pop).source]}
                                     for pop in firing(snn)})
        if self.calibrate_v_init:
            images = seeded_subset(ctx.calibration(self.name), POTENTIAL_SAMPLES, ctx.seed)
            snn = calibrate_potentials(snn, images, ctx)
        note = {"thresholds": thresholds, "levels": levels, "max_burst": bursts,
                "v_init_ratio": self.v_init_ratio, "v_init_calibrated": self.calibrate_v_init}
        if self.dual:
            note["theta_neg_ratio"] = self.theta_neg_ratio
        return with_note(snn, self.name, note)


def qcfs() -> LearnedClip:
    return LearnedClip("qcfs")


def ecl() -> LearnedClip:
    return LearnedClip("ecl", dual=True, calibrate_v_init=True, needs_calibration=True)


def require_clips(ann: AnnGraph, stage: str) -> dict[str, float]:
    """The learned thresholds; every activation must be a learned clip."""
    relu = next((n.name for n in ann.nodes if n.op == "relu"), None)
    if relu is not None:
        raise UnsupportedLayer(
            f"method '{stage}' needs thresholds learned in training, but this activation is a "
            "plain ReLU", node=relu,
            hint=f"Train with neurodeploy.nn.prepare(model, '{stage}') or fine-tune it first "
                 f"(neurodeploy.train.finetune, `neurodeploy finetune MODEL --method {stage}`)")
    return learned_thresholds(ann)

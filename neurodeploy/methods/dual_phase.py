"""Dual-phase conversion (Wang et al.; algorithms.md §3), phase II on the SNN side.

Phase I is training: ``neurodeploy.nn.prepare(model, "dual_phase", levels=T)`` makes every
activation a noisy quantize-clip with T levels and a learned threshold (or ``neurodeploy
finetune --method dual_phase``). Conversion then builds single-spike neurons with those
thresholds and ``v_init = theta/2`` and removes what the ANN cannot see, the residual
membrane error of uneven spike trains, on a few hundred unlabeled images, layer by layer in
network order (so each layer is corrected for its already-corrected inputs):

1. membrane-potential calibration: ``v_init += T * (mean ANN activation - mean SNN rate)``
   per neuron, the rates measured on the deployed integer network (``methods.deployed``);
2. weight calibration through time (``methods.weights``): the layer's weights and bias are
   trained so the SNN layer, run over T steps on its recorded input spike trains, matches
   the ANN activation (KL divergence between the softmax of the two, per sample, as the
   authors' code);
3. membrane-potential calibration again, for the new weights.

A layer fed through a residual sum is fitted as the sum (``methods.weights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import torch

from neurodeploy.core.meta import get_graph_meta
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.corrections import layer_by_layer, with_note
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.learned import LearnedClip
from neurodeploy.methods.potential import calibrate_potential
from neurodeploy.methods.probe import ActivationStream
from neurodeploy.methods.weights import WeightFit, calibrate_weights

CALIBRATION_IMAGES = 256  #: "a few hundred unlabeled images" (the authors use 256-1280)
KL_FIT = WeightFit("kl")  #: the authors' loss


@dataclass(frozen=True)
class DualPhase:
    name: str = "dual_phase"
    builds: bool = True
    needs_calibration: bool = True
    window_specific: bool = True
    weights: WeightFit = KL_FIT  #: step 2 (epochs=0 skips it)

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        images = ctx.calibration(self.name)[:CALIBRATION_IMAGES]
        snn = LearnedClip(self.name)(None, ctx)
        targets = ActivationStream(ctx, images, snn)
        net = DeployedNetwork(snn, images, ctx)
        torch.manual_seed(ctx.seed)
        report = {}
        for pop in layer_by_layer(snn, net, "dual-phase calibration", ctx.show_progress):
            target = targets.pop(pop)
            snn = calibrate_potential(snn, pop, net, target)
            snn, report[pop] = calibrate_weights(snn, pop, net, target, self.weights)
            snn = calibrate_potential(snn, pop, net, target)
        return with_note(snn, self.name, {**get_graph_meta(snn).notes[self.name],
                                          "weight_calibration": report,
                                          "calibration_images": len(images)})

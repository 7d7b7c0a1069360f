"""Max / percentile normalization (Diehl et al. 2015; Rueckauer et al. 2017): the baseline.

Thresholds come from activation statistics on calibration data; neurons are single-spike
integrate-and-fire with reset by subtraction and v_init = theta/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir

from neurodeploy.convert import activation_thresholds, to_snn
from neurodeploy.methods.base import MethodContext


@dataclass(frozen=True)
class Normalization:
    name: str  #: the statistic: "max" or "pNN.NN"
    builds: bool = True
    needs_calibration: bool = True
    window_specific: bool = False

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        thresholds = activation_thresholds(ctx.ann, ctx.calibration(self.name), self.name,
                                           ctx.options.per_channel)
        return to_snn(ctx.ann, thresholds, ctx.options)

"""Max / percentile normalization (Diehl et al. 2015; Rueckauer et al. 2017): the baseline.

Thresholds come from activation statistics on calibration data; neurons are single-spike
integrate-and-fire with reset by subtraction and v_init = theta/2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import nir
import numpy as np

from neurodeploy.convert import ConvertOptions, activation_thresholds, to_snn
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph


@dataclass(frozen=True)
class Normalization:
    statistic: str  #: "max" or "pNN.NN"
    needs_calibration: bool = True

    @property
    def name(self) -> str:
        return self.statistic

    def convert(self, ann: AnnGraph, calib: np.ndarray | None,
                options: ConvertOptions) -> nir.NIRGraph:
        if calib is None:
            raise InputError(f"method '{self.name}' needs calibration data",
                             hint="Pass --calib DATASET (e.g. digits, fashion-mnist, x.npz)")
        thresholds = activation_thresholds(ann, calib, self.statistic, options.per_channel)
        return to_snn(ann, thresholds, replace(options, method=self.name))

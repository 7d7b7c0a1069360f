"""Conversion methods: each turns an ANN graph (plus calibration data) into a float SNN.

A method only chooses parameters (thresholds, v_init, burst, dual threshold, corrections);
the neuron rule and the integer passes are the same for all of them.
"""

from __future__ import annotations

from typing import Protocol

import nir
import numpy as np

from neurodeploy.convert import ConvertOptions, parse_statistic
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods.normalization import Normalization


class Method(Protocol):
    name: str
    needs_calibration: bool

    def convert(self, ann: AnnGraph, calib: np.ndarray | None,
                options: ConvertOptions) -> nir.NIRGraph: ...


def get_method(name: str) -> Method:
    """'max' or a percentile such as 'p99.99' (the normalization baselines)."""
    try:
        parse_statistic(name)
    except InputError:
        raise InputError(f"unknown method '{name}'",
                         hint="Choose 'max' or a percentile such as 'p99.9' or 'p99.99'") \
            from None
    return Normalization(name)

"""quantize_thresholds: integer thresholds (positive and negative) in membrane units."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from neurodeploy.core.population import Population
from neurodeploy.errors import TargetLimitExceeded
from neurodeploy.passes.base import PassContext, per_population, unit
from neurodeploy.targets import Target


def quantize_thresholds(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """theta is rounded on the grid the weight exponent fixed (at least 1); the readout never
    fires, so its threshold is 1 by convention. The relative rounding error is recorded: it
    scales every spike this population sends."""
    return per_population(graph, ctx, "quantize_thresholds", "max_relative_error",
                          thresholds_of)


def thresholds_of(name: str, meta: Population, target: Target
                  ) -> tuple[Population, float | None]:
    """The population's thresholds in membrane units; the relative rounding error (None for
    the readout, which never fires)."""
    if not meta.fires:
        return dataclasses.replace(meta, theta=np.array(1, np.int32),
                                   theta_neg=np.array(0, np.int32)), None
    limit = (1 << target.neuron.threshold_bits) - 1
    exact = np.asarray(meta.theta, np.float64) / unit(meta, name)
    theta = np.maximum(np.round(exact), 1)
    if theta.max() > limit:
        raise TargetLimitExceeded(node=name, limit="threshold", value=int(theta.max()),
                                  allowed=limit, hint="Thresholds are large relative to "
                                  "the weights feeding this layer")
    theta_neg = np.minimum(np.round(np.asarray(meta.theta_neg) / unit(meta, name)), 0)
    return dataclasses.replace(meta, theta=theta.astype(np.int32),
                               theta_neg=theta_neg.astype(np.int32)), \
        float(np.abs(theta / exact - 1).max())

"""Activation thresholds from calibration data (the normalization baselines).

``max`` takes the largest activation seen; ``pNN.N`` takes that percentile of all values of
the layer (zeros included, as in Rueckauer et al. 2017), which ignores rare outliers and
so spends the neuron's few rate levels on the bulk of the distribution.

``per_channel`` takes the statistic per output channel (per neuron for Linear) instead of
per layer (channel-wise normalization, Kim et al. 2020): channels of one conv layer differ
in scale by an order of magnitude, and a layer-wide threshold leaves the small ones only a
few of their rate levels. On the neuron it is just a per-channel ``theta``; a chip with one
threshold per layer gets the same network by scaling each channel's input weights.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph

MAX_CALIBRATION_BATCHES = 4
BATCH_SIZE = 128
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")


def parse_statistic(name: str) -> float:
    """'max' -> 100.0, 'p99.99' -> 99.99; anything else is a user error (p0 too: the
    smallest ReLU output is 0, which would leave the threshold to the fall-back on max)."""
    if name == "max":
        return 100.0
    match = _PERCENTILE.match(name)
    if not match or float(match.group(1)) == 0:
        raise InputError(f"unknown threshold statistic '{name}'",
                         hint="Use 'max' or a percentile above 0 such as 'p99.9' or 'p99.99'")
    return float(match.group(1))


def activation_thresholds(ann: AnnGraph, calib: np.ndarray, statistic: str,
                          per_channel: bool = False) -> dict[str, float | np.ndarray]:
    """Per ReLU node: the statistic of its output over at most a few calibration batches;
    a float, or a (C,) array with ``per_channel``. A learned clip keeps its own threshold."""
    percentile = parse_statistic(statistic)
    relus = [n.name for n in ann.nodes if n.op == "relu"]
    batches = [calib[i:i + BATCH_SIZE] for i in range(0, len(calib), BATCH_SIZE)]
    values: dict[str, list[np.ndarray]] = {name: [] for name in relus}
    for batch in batches[:MAX_CALIBRATION_BATCHES]:
        acts = ann.run(torch.as_tensor(batch, dtype=torch.float32), keep=set(relus))
        for name in relus:
            values[name].append(acts[name].transpose(0, 1).flatten(1).numpy())
    thresholds: dict[str, float | np.ndarray] = {}
    for name in relus:
        data = np.concatenate(values[name], axis=1)  # (channels, samples * positions)
        layer = _statistic(data.ravel(), percentile)
        if layer <= 0:  # the percentile falls on zeros: fall back to the largest value seen
            layer = float(max(data.max(), 1.0))
        if per_channel:
            channels = np.array([_statistic(row, percentile) for row in data])
            thresholds[name] = np.where(channels > 0, channels, layer)  # (nearly) silent
        else:
            thresholds[name] = layer
    return {**thresholds, **learned_thresholds(ann)}


def learned_thresholds(ann: AnnGraph) -> dict[str, float]:
    """Per learned clip node (``neurodeploy.nn.ThresholdClip``): its trained threshold."""
    return {n.name: float(n.params["threshold"]) for n in ann.nodes if n.op == "clip"}


def _statistic(values: np.ndarray, percentile: float) -> float:
    return float(values.max() if percentile == 100.0 else np.percentile(values, percentile))

"""Activation thresholds from calibration data (the normalization baselines).

``max`` takes the largest activation seen; ``pNN.N`` takes that percentile of all values of
the layer (zeros included, as in Rueckauer et al. 2017), which ignores rare outliers and
so spends the neuron's few rate levels on the bulk of the distribution.
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
    """'max' -> 100.0, 'p99.99' -> 99.99; anything else is a user error."""
    if name == "max":
        return 100.0
    match = _PERCENTILE.match(name)
    if not match:
        raise InputError(f"unknown threshold statistic '{name}'",
                         hint="Use 'max' or a percentile such as 'p99.9' or 'p99.99'")
    return float(match.group(1))


def activation_thresholds(ann: AnnGraph, calib: np.ndarray, statistic: str) -> dict[str, float]:
    """Per ReLU node: the statistic of its output over at most a few calibration batches."""
    percentile = parse_statistic(statistic)
    relus = [n.name for n in ann.nodes if n.op == "relu"]
    batches = [calib[i:i + BATCH_SIZE] for i in range(0, len(calib), BATCH_SIZE)]
    values: dict[str, list[np.ndarray]] = {name: [] for name in relus}
    for batch in batches[:MAX_CALIBRATION_BATCHES]:
        acts = ann.run(torch.as_tensor(batch, dtype=torch.float32), keep=set(relus))
        for name in relus:
            values[name].append(acts[name].flatten().numpy())
    thresholds = {}
    for name in relus:
        data = np.concatenate(values[name])
        theta = float(data.max() if percentile == 100.0 else np.percentile(data, percentile))
        thresholds[name] = theta if theta > 0 else float(max(data.max(), 1.0))
    return thresholds

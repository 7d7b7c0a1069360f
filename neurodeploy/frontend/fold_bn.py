"""Fold inference-mode BatchNorm into the Linear/Conv2d before it.

A spiking network has no normalisation step, but at inference time BatchNorm is a fixed
per-channel affine map, so it can be absorbed into the weights of the layer that feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.ann import AnnNode

FOLDABLE = ("linear", "conv2d")


@dataclass(frozen=True)
class BatchNormStats:
    """The running statistics and affine parameters of one BatchNorm layer."""

    mean: np.ndarray
    var: np.ndarray
    eps: float
    gamma: np.ndarray | None = None  #: None when the layer has affine=False
    beta: np.ndarray | None = None


def fold_batch_norm(producer: AnnNode | None, bn: BatchNormStats, *, bn_name: str,
                    used_elsewhere: bool) -> AnnNode:
    """W' = W·γ/√(σ²+ε) per output channel;  b' = (b − μ)·γ/√(σ²+ε) + β.

    Only valid when the producer's pre-BatchNorm output feeds nothing else, since that value
    stops existing once the BatchNorm is folded away.
    """
    if producer is None or producer.op not in FOLDABLE:
        after = f"after '{producer.name}' ({producer.op})" if producer else "on the input"
        raise UnsupportedLayer(f"BatchNorm {after} cannot be folded", node=bn_name,
                               hint="BatchNorm is supported only directly after a Linear or "
                                    "Conv2d layer")
    if used_elsewhere:
        raise UnsupportedLayer(f"the output of '{producer.name}' is used both before and after "
                               "this BatchNorm, so it cannot be folded", node=bn_name)
    weight = np.asarray(producer.params["weight"], dtype=np.float64)
    channels = weight.shape[0]
    if bn.mean.shape != (channels,):
        raise UnsupportedLayer(f"BatchNorm has {bn.mean.size} channels but '{producer.name}' "
                               f"has {channels} outputs", node=bn_name)
    gamma = np.ones(channels) if bn.gamma is None else bn.gamma.astype(np.float64)
    beta = np.zeros(channels) if bn.beta is None else bn.beta.astype(np.float64)
    scale = gamma / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    bias = producer.params["bias"]
    bias = np.zeros(channels) if bias is None else np.asarray(bias, dtype=np.float64)
    folded_weight = weight * scale.reshape((channels,) + (1,) * (weight.ndim - 1))
    folded_bias = (bias - bn.mean.astype(np.float64)) * scale + beta
    params = {**producer.params, "weight": folded_weight.astype(np.float32),
              "bias": folded_bias.astype(np.float32)}
    return replace(producer, params=params)

"""What feeds a synapse layer: the value of one spike and the range of spike payloads.

Between a population (or the input) and the synapse layer reading it there may be sum
pools and a flatten; both change how many integers reach the synapse and what one integer
is worth, so the weight folding and the static bounds both walk this chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core.graph import predecessors
from neurodeploy.core.meta import InputMeta, get_node_meta
from neurodeploy.core.population import NEURON_TYPES, Population
from neurodeploy.errors import UnsupportedLayer


@dataclass(frozen=True)
class Source:
    unit: np.ndarray  #: ANN value of one integer arriving at the synapse (scalar or per input)
    low: int  #: smallest integer that can arrive in one step
    high: int  #: largest integer that can arrive in one step


def synapse_source(graph: nir.NIRGraph, synapse: str) -> Source:
    preds = predecessors(graph)
    (name,) = preds[synapse]
    return _source(graph, name, preds)


def _source(graph: nir.NIRGraph, name: str, preds) -> Source:
    node = graph.nodes[name]
    if isinstance(node, nir.Input):
        meta = get_node_meta(node, InputMeta, name)
        return Source(np.asarray(meta.scale), 0, meta.high)
    if isinstance(node, NEURON_TYPES):
        meta = get_node_meta(node, Population, name)
        theta = np.asarray(meta.theta, np.float64)
        if theta.ndim > 1:
            raise UnsupportedLayer("per-neuron thresholds cannot be folded into the next "
                                   "layer's weights; use per-layer or per-channel", node=name)
        low = -meta.max_burst if meta.dual else 0
        return Source(theta, low, meta.max_burst)
    (upstream,) = preds[name]
    src = _source(graph, upstream, preds)
    if isinstance(node, nir.SumPool2d):
        size = int(np.prod(node.kernel_size))
        return Source(src.unit / size, src.low * size, src.high * size)
    if isinstance(node, nir.Flatten):
        shape = tuple(int(d) for d in node.input_type["input"])
        unit = src.unit
        if unit.ndim == 1 and len(shape) == 3:
            unit = np.repeat(unit, shape[1] * shape[2])
        return Source(unit, src.low, src.high)
    if isinstance(node, nir.Delay):
        return src
    raise UnsupportedLayer(f"a {type(node).__name__} node cannot feed a synapse layer", node=name)


def per_input_channel(weight: np.ndarray, groups: int, values: np.ndarray) -> np.ndarray:
    """Broadcast a per-input-channel vector onto a weight tensor (grouped convs included)."""
    values = np.asarray(values, np.float64)
    if values.ndim == 0:
        return values
    if weight.ndim == 2:
        return values[None, :]
    out_channels, in_per_group = weight.shape[:2]
    group_of_output = np.arange(out_channels) // (out_channels // groups)
    channel = group_of_output[:, None] * in_per_group + np.arange(in_per_group)[None, :]
    return values[channel][:, :, None, None]

"""A compiled network as plain NIR (``--flavor standard``) for other NIR consumers.

Float weights in ANN units, IF nodes, no neurodeploy metadata. A spike is 1 (NIR's
convention), so a synapse weight is the integer mantissa times its unit ``2**(e - k)``
(membrane exponent e, input shift k), divided by the input scale on the first layer (the
input is the image in [0, 1]); thresholds and membranes are in ANN units (``theta * 2**e``).
A population's constant bias goes back into its synapse (``Affine``/``Conv2d`` bias): NIR
neurons have none. Leaky populations become LIF with ``tau = r = 4096 / decay`` (dt = 1).

The thresholds are written a quarter unit below the integer theta, so NIR's ``v > v_threshold``
fires exactly when the integer rule's ``v >= theta`` does (and ``import`` rounds them back).
What plain NIR cannot say is returned as warnings, one per feature, naming the populations.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neurodeploy.core.graph import populations, predecessors
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.core.population import Reset
from neurodeploy.fileio import atomic_write, via_memory
from neurodeploy.interop.nir_import import value_unit
from neurodeploy.nir_compat import replace_node

THRESHOLD_MARGIN = 0.25  #: units below theta: v > theta - 1/4 <=> v >= theta on the grid

#: feature -> what a plain-NIR consumer computes differently
LOSSES = {
    "reset by subtraction": "NIR resets to v_reset = 0, so a consumer discards the residual "
                            "charge and fires less for strong inputs",
    "v_init": "NIR membranes start at 0, so a consumer loses the half-threshold offset "
              "(rounding becomes flooring)",
    "negative spikes": "plain NIR has no dual-threshold neuron; a consumer never retracts "
                       "spikes",
    "bursts": "NIR spikes are single events; a consumer sends at most one spike per step",
    "per-step bias": "NIR biases are constant; a consumer adds the mean bias every step",
    "input shift": "the integer network rounds its shifted synaptic sum; a consumer adds the "
                   "exact float sum",
    "per-neuron convolution bias": "Conv2d biases are per channel; a consumer adds each "
                                   "channel's mean",
}


def to_standard(graph: nir.NIRGraph) -> tuple[nir.NIRGraph, list[str]]:
    """The plain NIR graph and the warnings (``feature: populations: consequence``)."""
    get_graph_meta(graph)
    preds = predecessors(graph)
    nodes: dict[str, nir.NIRNode] = {}
    lost: dict[str, list[str]] = {}
    for name in populations(graph):
        meta = population_meta(graph, name)
        exponent = meta.exponent or 0
        unit, weight_unit = 2.0 ** exponent, 2.0 ** (exponent - meta.input_shift)
        shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
        for feature, present in _features(meta).items():
            if present:
                lost.setdefault(feature, []).append(name)
        for i, synapse in enumerate(preds[name]):
            bias = _bias(meta, shape) * unit if i == 0 else None
            nodes[synapse] = _synapse(graph, synapse, weight_unit, bias, lost)
        nodes[name] = meta.to_node(shape, unit, THRESHOLD_MARGIN)
    nodes |= {name: _plain(node) for name, node in graph.nodes.items() if name not in nodes}
    warnings = [f"{feature} ({', '.join(names)}): {LOSSES[feature]}"
                for feature, names in lost.items()]
    return nir.NIRGraph(nodes, list(graph.edges)), warnings


def write_standard(graph: nir.NIRGraph, path: str | Path) -> list[str]:
    """Write the plain NIR file atomically; returns the warnings."""
    plain, warnings = to_standard(graph)
    atomic_write(path, via_memory(lambda buffer: nir.write(buffer, plain)))
    return warnings


def _features(meta) -> dict[str, bool]:
    return {
        "reset by subtraction": meta.fires and meta.reset is Reset.SUBTRACT,
        "v_init": bool(np.any(np.asarray(meta.v_init) != 0)),
        "negative spikes": meta.dual,
        "bursts": meta.max_burst > 1,
        "per-step bias": meta.bias_table is not None,
        "input shift": meta.input_shift > 0,
    }


def _bias(meta, shape: tuple[int, ...]) -> np.ndarray:
    """The constant bias over the population (the mean of a per-step table folded in)."""
    bias = np.broadcast_to(_channels(np.asarray(meta.bias, np.float64), shape), shape)
    if meta.bias_table is not None:
        rows = [np.broadcast_to(_channels(row, shape), shape) for row in meta.bias_table]
        bias = bias - np.mean(rows, axis=0)
    return bias


def _synapse(graph: nir.NIRGraph, name: str, weight_unit: float, bias: np.ndarray | None,
             lost: dict[str, list[str]]) -> nir.NIRNode:
    node = graph.nodes[name]
    weight = np.asarray(node.weight, np.float64) * weight_unit / value_unit(graph, name)
    out_channels = weight.shape[0]
    if bias is None:
        bias = np.zeros(out_channels)
    elif isinstance(node, nir.Conv2d):
        channels = bias.reshape(out_channels, -1)
        if not np.all(channels == channels[:, :1]):
            lost.setdefault("per-neuron convolution bias", []).append(name)
        bias = channels.mean(axis=1)
    if isinstance(node, nir.Conv2d):
        return replace_node(node, weight=weight, bias=bias, metadata={})
    return nir.Affine(weight=weight, bias=np.asarray(bias).reshape(out_channels))


def _channels(value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    return arr.reshape(arr.shape + (1,) * (len(shape) - 1)) if arr.ndim == 1 else arr


def _plain(node: nir.NIRNode) -> nir.NIRNode:
    """Any other node without our metadata (the input keeps its shape)."""
    if isinstance(node, nir.Input):
        return nir.Input(input_type=node.input_type)
    return replace_node(node, metadata={})


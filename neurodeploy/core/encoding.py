"""Input encoding and readout decoding: how images become the integers the input node
injects every step (direct encoding), and how the readout membrane becomes logits."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.graph import input_name, readout_name
from neurodeploy.core.meta import InputMeta, get_node_meta, population_meta
from neurodeploy.errors import InputError


def quantize_inputs(graph: nir.NIRGraph, images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> the integers the input node injects every step (integer
    arrays pass through)."""
    name = input_name(graph)
    meta = get_node_meta(graph.nodes[name], InputMeta, name)
    x = np.asarray(images)
    if np.issubdtype(x.dtype, np.integer):
        _check_range(x, meta)
        return x.astype(np.int32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InputError("float inputs must be finite and in [0, 1]")
    return np.round(x / meta.scale).astype(np.int32)


def check_inputs(graph: nir.NIRGraph, inputs: np.ndarray) -> None:
    """Integer inputs of the shape the input node declares (what every backend runs)."""
    name = input_name(graph)
    expected = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    if inputs.ndim != len(expected) + 1 or tuple(inputs.shape[1:]) != expected:
        raise InputError(f"input has shape {tuple(inputs.shape)}, the network expects "
                         f"(batch, {', '.join(map(str, expected))})")
    if not np.issubdtype(inputs.dtype, np.integer):
        raise InputError("inputs to a quantized network must be integers",
                         hint="Use neurodeploy.core.encoding.quantize_inputs() on float images")
    _check_range(inputs, get_node_meta(graph.nodes[name], InputMeta, name))


def _check_range(x: np.ndarray, meta: InputMeta) -> None:
    """Integers outside the input width would wrap on the way in: refuse them."""
    if x.size and (x.min() < 0 or x.max() > meta.high):
        raise InputError(f"integer inputs must be in 0..{meta.high} (the network's "
                         f"{meta.bits}-bit input), got {x.min()}..{x.max()}")


def readout_logits(graph: nir.NIRGraph, outputs: np.ndarray, timesteps: int) -> np.ndarray:
    """Integer readout membrane -> ANN units: one unit is 2**exponent, summed over T steps."""
    exponent = population_meta(graph, readout_name(graph)).exponent or 0
    return outputs * (2.0 ** exponent) / timesteps

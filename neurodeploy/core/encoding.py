"""Input encoding and readout decoding: how inputs become the integers the input node
injects, and how the readout membrane becomes logits.

Two kinds of input, told apart by their shape:
- a static input (batch, *shape), e.g. an image, is injected unchanged at every step of the
  window (direct encoding);
- a stream (batch, L, *shape), e.g. event frames or spike trains, injects its step t at step
  t; a window of T <= L steps reads the first T.
Both are integers in the input node's width (``quantize_inputs`` scales floats in [0, 1], and
uint8 images in 0..255).
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.graph import input_name, readout_name
from neurodeploy.core.meta import InputMeta, check_window, get_node_meta, population_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.errors import InputError, all_whole

#: event counts or spikes (N-MNIST frames, spike trains): one input integer is one event
EVENT_INPUT = InputMeta(bits=8, scale=1.0, events=True)


def input_meta(bits: int, events: bool) -> InputMeta:
    """The input of a target ``bits`` wide: event counts keep one event per integer; values
    in [0, 1] take 1 / (2**bits - 1) per integer."""
    return InputMeta(bits=bits, scale=1.0 if events else 1.0 / ((1 << bits) - 1),
                     events=events)


def quantize_inputs(graph: nir.NIRGraph, images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> the integers the input node injects every step. uint8
    images are 0..255, as calibration reads them, whatever the input's width (on an 8-bit
    input they are its integers); other integer arrays, and event counts, pass through."""
    name = input_name(graph)
    meta = get_node_meta(graph.nodes[name], InputMeta, name)
    x = np.asarray(images)
    if x.dtype == np.uint8 and not meta.events:
        x = x / 255.0
    if meta.events and not np.issubdtype(x.dtype, np.integer):
        if not all_whole(x):
            raise InputError("inputs of an event network are event counts: whole numbers "
                             "(a probability 0.5 would round to no event)")
        x = x.astype(np.int64)
    if np.issubdtype(x.dtype, np.integer):
        _check_range(x, meta)
        return x.astype(np.int32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InputError("float inputs must be finite and in [0, 1]")
    # In float64 whatever the array's dtype: a float32 division rounds 0.5 / (1/255) to 127
    # where float64 gives 128, and one image must give one input however it was stored.
    return np.round(x.astype(np.float64) / meta.scale).astype(np.int32)


def is_stream(graph: nir.NIRGraph, inputs: np.ndarray) -> bool:
    """Whether ``inputs`` carry a time axis after the batch axis (see the module docstring)."""
    return np.ndim(inputs) == len(_sample_shape(graph)) + 2


def check_inputs(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int | None = None
                 ) -> None:
    """Integer inputs of the shape the input node declares, static or a stream at least
    ``timesteps`` long, for a window the network can run (``check_window``): what every
    backend checks before it runs (on Lava before any process starts: an exception inside
    one hangs lava-nc 0.10's runtime)."""
    name = input_name(graph)
    expected = _sample_shape(graph)
    dims = ", ".join(map(str, expected))
    sample = tuple(inputs.shape[2:] if is_stream(graph, inputs) else inputs.shape[1:])
    if inputs.ndim not in (len(expected) + 1, len(expected) + 2) or sample != expected:
        raise InputError(f"input has shape {tuple(inputs.shape)}, the network expects "
                         f"(batch, {dims}) or a stream (batch, steps, {dims})")
    if is_stream(graph, inputs) and timesteps is not None and inputs.shape[1] < timesteps:
        raise InputError(f"the input streams hold {inputs.shape[1]} steps, a window of "
                         f"{timesteps} steps needs one input per step",
                         hint=f"Run at most {inputs.shape[1]} timesteps")
    if not np.issubdtype(inputs.dtype, np.integer):
        raise InputError("inputs to a quantized network must be integers",
                         hint="Use neurodeploy.core.encoding.quantize_inputs() on float images")
    _check_range(inputs, get_node_meta(graph.nodes[name], InputMeta, name))
    if timesteps is not None:
        check_window(graph, timesteps)


def step_inputs(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int) -> np.ndarray:
    """(batch, T, *shape): what the input node injects at each step of the window (a static
    input repeated, a stream's first T steps), as a view where possible."""
    if is_stream(graph, inputs):
        return inputs[:, :timesteps]
    return np.broadcast_to(inputs[:, None], (len(inputs), timesteps, *inputs.shape[1:]))


def _sample_shape(graph: nir.NIRGraph) -> tuple[int, ...]:
    return tuple(int(d) for d in graph.nodes[input_name(graph)].input_type["input"])


def _check_range(x: np.ndarray, meta: InputMeta) -> None:
    """Integers outside the input width would wrap on the way in: refuse them."""
    if x.size and (x.min() < 0 or x.max() > meta.high):
        raise InputError(f"integer inputs must be in 0..{meta.high} (the network's "
                         f"{meta.bits}-bit input), got {x.min()}..{x.max()}")


def readout_logits(graph: nir.NIRGraph, outputs: np.ndarray, timesteps: int) -> np.ndarray:
    """Integer readout membrane -> ANN units: one unit is 2**exponent, summed over T steps."""
    exponent = population_meta(graph, readout_name(graph)).exponent or 0
    return outputs * (2.0 ** exponent) / timesteps


def spike_values(graph: nir.NIRGraph, population: str, spikes: np.ndarray,
                 dtype: type = np.float64) -> np.ndarray:
    """(T, batch, *shape) integer spikes of ``population`` in ``graph`` -> the values they send
    in ANN units (a spike is worth the float theta): the float64 product rounded once to
    ``dtype``, C-ordered, written straight into the result (a float32 copy of a float64
    array costs twice)."""
    theta = np.asarray(population_meta(graph, population).theta, np.float64)
    out = np.empty(spikes.shape, dtype)
    return np.multiply(spikes, param_for_shape(theta, spikes.shape[2:]), out=out,
                       casting="same_kind")

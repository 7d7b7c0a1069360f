"""NIR's neuron nodes in the integer rule's terms: input gain, 12-bit leak, bias, threshold,
and what the translation loses (see nir_import's docstring for the discretization)."""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.errors import MetadataError, UnsupportedLayer
from neurodeploy.interop.approximations import Approximation

#: how far past 1 dt/tau may be when tau = dt was stored as float32 (each of the two rounded
#: by up to half an ulp)
FLOAT32_ROUNDING = 2 * float(np.finfo(np.float32).eps)


@dataclass
class NeuronModel:
    """A NIR neuron in the integer rule's terms (arrays broadcast over the population)."""

    gain: np.ndarray  #: multiplies the synaptic input
    decay: np.ndarray  #: integer leak in 1/4096 per step
    current_decay: np.ndarray  #: integer synaptic filter in 1/4096 per step (4096: none)
    bias: np.ndarray  #: constant input per step, membrane units
    theta: np.ndarray
    approximations: list[Approximation]


def neuron_model(name: str, node: nir.NIRNode, dt: float, shape: tuple[int, ...]
                 ) -> NeuronModel:
    """IF/LIF/CubaLIF/Threshold/I/LI forward-Euler discretized at ``dt``."""

    def arr(field: str) -> np.ndarray:
        value = getattr(node, field)
        try:
            values = np.broadcast_to(np.asarray(value, np.float64), shape)
        except ValueError:
            raise MetadataError(f"'{field}' of shape {np.shape(value)} does not fit the "
                                f"population's shape {shape}", node=name) from None
        if not np.isfinite(values).all():
            raise MetadataError(f"'{field}' holds NaN or infinite values", node=name)
        return values

    notes: list[Approximation] = []
    zero = np.zeros(shape)
    unfiltered = np.full(shape, DECAY_ONE)
    if isinstance(node, nir.Threshold):
        return NeuronModel(np.ones(shape), np.full(shape, DECAY_ONE), unfiltered, zero,
                           arr("threshold"), notes)
    if isinstance(node, (nir.IF, nir.I)):
        theta = arr("v_threshold") if isinstance(node, nir.IF) else np.ones(shape)
        return NeuronModel(dt * arr("r"), zero.astype(np.int64), unfiltered, zero, theta,
                           notes)
    cuba = isinstance(node, nir.CubaLIF)
    leak, decay = _decay(name, "leak dt/tau", dt, arr("tau_mem" if cuba else "tau"), notes)
    gain = leak * arr("r")
    theta = np.ones(shape) if isinstance(node, nir.LI) else arr("v_threshold")
    if not cuba:
        return NeuronModel(gain, decay, unfiltered, leak * arr("v_leak"), theta, notes)
    # i[t] = (1 - a) i[t-1] + a w_in x[t]: the filter keeps (4096 - d)/4096 of u, and the
    # input gain uses the rounded a, so the filter's DC gain w_in stays exact. The rule adds
    # the population's bias to u (filtered, as a synapse bias is); v_leak is scaled by a so
    # that it reaches the membrane at its DC value, only ramping in over ~1/a steps
    _, current_decay = _decay(name, "synaptic filter dt/tau_syn", dt, arr("tau_syn"), notes)
    if np.any(current_decay == 0):
        raise UnsupportedLayer("tau_syn/dt exceeds the 12-bit synaptic filter (4096 steps)",
                               node=name, hint="Pass a larger dt (--dt)")
    fraction = current_decay / DECAY_ONE
    if np.any(arr("v_leak") != 0):
        notes.append(Approximation(name, "v_leak", "added to v", "filtered with the input",
                                   f"ramps in over ~{_range(1 / fraction)} steps"))
    return NeuronModel(gain * arr("w_in") * fraction, decay, current_decay,
                       leak * arr("v_leak") * fraction, theta, notes)


def _decay(name: str, what: str, dt: float, tau: np.ndarray, notes: list[Approximation]
           ) -> tuple[np.ndarray, np.ndarray]:
    """(dt / tau, its 12-bit integer decay); the rounding is listed in ``notes``."""
    if np.any(tau <= 0):
        raise UnsupportedLayer("time constants must be positive", node=name)
    fraction = dt / tau
    if np.any(fraction > 1 + FLOAT32_ROUNDING):
        raise UnsupportedLayer(f"{what.split()[-1]} = {fraction.max():.3g} > 1: forward Euler "
                               "is unstable at this dt", node=name,
                               hint="Pass a smaller dt (--dt)")
    fraction = np.minimum(fraction, 1.0)  # a time constant of dt stored as float32
    decay = np.rint(fraction * DECAY_ONE).astype(np.int64)
    error = float(np.abs(decay / DECAY_ONE - fraction).max())
    if error > 0:
        notes.append(Approximation(name, what, _range(fraction), _range(decay / DECAY_ONE),
                                   f"{error:.2e} per step"))
    return fraction, decay


def _range(values: np.ndarray) -> str:
    low, high = float(np.min(values)), float(np.max(values))
    return f"{low:.6g}" if low == high else f"{low:.6g}..{high:.6g}"

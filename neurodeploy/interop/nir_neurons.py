"""NIR's neuron nodes in the integer rule's terms: input gain, 12-bit leak, bias, threshold,
and what the translation loses (see nir_import's docstring for the discretization)."""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.errors import MetadataError, UnsupportedLayer
from neurodeploy.interop.approximations import Approximation


@dataclass
class NeuronModel:
    """A NIR neuron in the integer rule's terms (arrays broadcast over the population)."""

    gain: np.ndarray  #: multiplies the synaptic input (and the synapse bias)
    decay: np.ndarray  #: integer leak in 1/4096 per step
    bias: np.ndarray  #: constant input per step, membrane units
    theta: np.ndarray
    approximations: list[Approximation]


def neuron_model(name: str, node: nir.NIRNode, dt: float, shape: tuple[int, ...]
                 ) -> NeuronModel:
    """IF/LIF/CubaLIF/Threshold/I/LI forward-Euler discretized at ``dt``."""

    def arr(value) -> np.ndarray:
        try:
            return np.broadcast_to(np.asarray(value, np.float64), shape)
        except ValueError:
            raise MetadataError(f"parameter of shape {np.shape(value)} does not fit the "
                                f"population's shape {shape}", node=name) from None

    notes: list[Approximation] = []
    zero = np.zeros(shape)
    if isinstance(node, nir.Threshold):
        return NeuronModel(np.ones(shape), np.full(shape, DECAY_ONE), zero, arr(node.threshold),
                      notes)
    if isinstance(node, (nir.IF, nir.I)):
        theta = arr(node.v_threshold) if isinstance(node, nir.IF) else np.ones(shape)
        return NeuronModel(dt * arr(node.r), zero.astype(np.int64), zero, theta, notes)
    tau = arr(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau)
    if np.any(tau <= 0):
        raise UnsupportedLayer("time constants must be positive", node=name)
    leak = dt / tau
    if np.any(leak > 1):
        raise UnsupportedLayer(f"dt/tau = {leak.max():.3g} > 1: forward Euler is unstable at "
                               f"this dt", node=name, hint="Pass a smaller dt (--dt)")
    decay = np.rint(leak * DECAY_ONE).astype(np.int64)
    error = float(np.abs(decay / DECAY_ONE - leak).max())
    if error > 0:
        notes.append(Approximation(name, "leak dt/tau", _range(leak),
                                   _range(decay / DECAY_ONE), f"{error:.2e} per step"))
    gain = leak * arr(node.r)
    if isinstance(node, nir.CubaLIF):
        gain = gain * arr(node.w_in)
        synaptic = dt / arr(node.tau_syn)
        if np.any(np.rint(np.minimum(synaptic, 1) * DECAY_ONE) != DECAY_ONE):
            low = float(np.minimum(synaptic, 1).min())
            notes.append(Approximation(
                name, "synaptic filter dt/tau_syn", _range(synaptic), "1 (no filter)",
                f"charge kept; input arrives up to {(1 - low) / low:.2g} steps earlier"))
    theta = np.ones(shape) if isinstance(node, nir.LI) else arr(node.v_threshold)
    return NeuronModel(gain, decay, leak * arr(node.v_leak), theta, notes)


def _range(values: np.ndarray) -> str:
    low, high = float(np.min(values)), float(np.max(values))
    return f"{low:.6g}" if low == high else f"{low:.6g}..{high:.6g}"

r"""THE integer neuron rule (design.md §2, algorithms.md §8), written once.

Every backend runs these functions: the reference simulator on batched torch tensors, the
Lava process model on its numpy Vars. The functions only use operators and ``where`` /
``clip`` that numpy and torch share, so the same lines execute in both.

Per population (parameters broadcast per layer, per channel or per neuron):
    theta > 0        threshold, in membrane units
    bias             constant input added every step
    bias_table[t]    optional per-step bias (FTBC); subtracted at step t
    v_init           membrane at the start of every sample
    max_burst >= 1   most spikes a neuron sends in one step (graded payload)
    dual, theta_neg  negative spikes (theta_neg <= 0) guarded by the net count c
    fires            False for the readout integrator
    input_shift      the synaptic input is divided by 2**input_shift, rounding half up

Per step t of a sample (state v, c; synaptic input I[t]):

.. math::
    m &= \mathrm{sat}_{B}(v + \lfloor (I[t] + h) / 2^k \rfloor + b - b_t[t]),
         \quad h = \lfloor 2^{k-1} \rfloor \\
    n^+ &= \min(B_{max}, \lfloor m / \theta \rfloor) \quad \text{if } m \ge \theta \\
    n^- &= \min(c, B_{max}, \lfloor (\theta_n - m)/\theta \rfloor + 1)
           \quad \text{if dual and } m \le \theta_n \text{ and } c > 0 \\
    s &= n^+ - n^-, \qquad v = m - s\,\theta, \qquad c = c + s

``sat_B`` saturates to the signed membrane width (as Loihi's voltage register does). Reset
by subtraction keeps every sub-threshold residual, so the spike count tracks the input sum
(algorithms.md §0). With the guard ``c > 0`` a neuron only retracts spikes it has sent, so
its net output never goes negative. A readout integrator never fires: it only accumulates.

All arithmetic is int32: with |v| < 2^27 (membrane width <= 28 bits), synaptic sums proven
below 2^27 by the static bound check, and n * theta <= |m| + theta, nothing can overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neurodeploy.dtypes import IntSpec

Array = Any  # numpy.ndarray or torch.Tensor: the rule below runs unchanged on both
MAX_MEMBRANE_BITS = 28


@dataclass(frozen=True)
class NeuronParams:
    """Integer parameters of one population, already shaped to broadcast against ``v``."""

    theta: Array
    bias: Array
    v_init: Array
    theta_neg: Array
    max_burst: int | Array = 1
    dual: bool = False
    fires: bool = True
    membrane_bits: int = 24
    input_shift: int = 0
    bias_table: Array | None = None  #: shape (T, *broadcastable); row t is used at step t

    def __post_init__(self) -> None:
        if not 2 <= self.membrane_bits <= MAX_MEMBRANE_BITS:
            raise ValueError(f"membrane_bits must be in 2..{MAX_MEMBRANE_BITS}")

    def map_arrays(self, fn) -> NeuronParams:
        """Apply ``fn`` to every array parameter (e.g. to move them into torch)."""
        changes = {name: fn(getattr(self, name))
                   for name in ("theta", "bias", "v_init", "theta_neg", "max_burst")}
        if self.bias_table is not None:
            changes["bias_table"] = fn(self.bias_table)
        return replace(self, **changes)


def initial_state(p: NeuronParams, like: Array) -> tuple[Array, Array]:
    """(v, c) at the start of a sample: v = v_init, c = 0, shaped and typed like ``like``."""
    zeros = like * 0
    return zeros + p.v_init, zeros


def step(v: Array, c: Array, current: Array, p: NeuronParams, t: int = 0
         ) -> tuple[Array, Array, Array]:
    """One timestep of the rule in the module docstring; returns the new (v, c, s).

    ``v`` and ``c`` are updated in place (and returned): a batched simulation would
    otherwise allocate several full-size temporaries per step.
    """
    xp = _namespace(v)
    if p.input_shift:
        current = (current + (1 << (p.input_shift - 1))) >> p.input_shift
    v += current
    v += p.bias
    if p.bias_table is not None:
        v -= p.bias_table[t]
    membrane = IntSpec(p.membrane_bits, signed=True)
    xp.clip(v, membrane.min, membrane.max, out=v)  # v now holds m
    if not p.fires:
        return v, c, v * 0
    if _is_one(p.max_burst):
        s = _like(v >= p.theta, v)  # single-spike fast path: the general formula gives the same
    else:
        s = _like(xp.where(v >= p.theta, _minimum(xp, v // p.theta, p.max_burst), 0), v)
    if p.dual:
        k = _minimum(xp, _minimum(xp, c, p.max_burst), (p.theta_neg - v) // p.theta + 1)
        s = s - _like(xp.where((v <= p.theta_neg) & (c > 0), k, 0), v)
        c += s
    v -= s * p.theta
    return v, c, s


def run(currents: Array, p: NeuronParams, keep_membranes: bool = True,
        spikes_out: Array | None = None) -> tuple[Array, Array | None]:
    """Run one sample window: currents (T, ...) -> (spikes, membranes), both (T, ...).

    ``spikes_out`` may be a preallocated buffer of another dtype (the reference simulator
    passes float32, the next layer's GEMM input, to save a conversion pass).
    """
    xp = _namespace(currents)
    v, c = initial_state(p, currents[0])
    spikes = xp.empty_like(currents) if spikes_out is None else spikes_out
    membranes = xp.empty_like(currents) if keep_membranes else None
    for t in range(currents.shape[0]):
        v, c, spikes[t] = step(v, c, currents[t], p, t)
        if membranes is not None:
            membranes[t] = v
    return spikes, membranes


def _namespace(x: Array):
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _minimum(xp, a: Array, b: Array) -> Array:
    return xp.where(a < b, a, b)


def _like(x: Array, like: Array) -> Array:
    """Cast to ``like``'s integer dtype: numpy and torch promote bools and scalars to int64,
    which would double the memory traffic of every later step."""
    return x.astype(like.dtype) if isinstance(x, np.ndarray) else x.to(like.dtype)


def _is_one(x: int | Array) -> bool:
    return isinstance(x, (int, np.integer)) and int(x) == 1

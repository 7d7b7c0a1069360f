r"""THE integer neuron rule (design.md §2, algorithms.md §8), written once.

``rule`` below is the rule for one neuron and one step, in plain integer arithmetic. It is
compiled (numba) into two loops around it: ``run`` advances whole windows of a batch (the
reference simulator), ``step`` advances one step of one population (the Lava process
model). There is no other implementation: every backend executes ``rule``.

Per population (parameters broadcast per layer, per channel or per neuron):
    theta > 0        threshold, in membrane units
    bias             constant input added every step
    bias_table[t]    optional per-step bias (FTBC); subtracted at step t
    v_init           membrane at the start of every sample
    max_burst >= 1   most spikes a neuron sends in one step (graded payload)
    dual, theta_neg  negative spikes (theta_neg <= 0) guarded by the net count c
    fires            False for the readout integrator
    input_shift      the synaptic input is divided by 2**input_shift, rounding half up
    decay            leak in 1/4096 of v per step (0: none; Loihi's 12-bit dv), applied to
                     the membrane left by the previous step, rounding toward zero
    current_decay    synaptic filter (a current-based synapse, Loihi's du): the input and
                     the bias charge a current u that keeps (4096 - d)/4096 of itself per
                     step, rounding toward zero, and u is what the membrane integrates
                     (4096, the default: no filter, u is the step's input)
    hard_reset       a spiking neuron resets to 0 instead of subtracting s * theta (NIR's
                     reset to v_reset = 0, Loihi's LIF)

Per step t of a sample (state v, c, u; synaptic input I[t]):

.. math::
    u &= \mathrm{sat}_{B}(\mu(u) + \lfloor (I[t] + h) / 2^k \rfloor + b),
         \quad h = \lfloor 2^{k-1} \rfloor, \quad
         \mu(u) = \mathrm{trunc}(u (4096 - d_u) / 4096) \\
    m &= \mathrm{sat}_{B}(\lambda(v) + u - b_t[t]), \quad
         \lambda(v) = \mathrm{trunc}(v (4096 - d) / 4096) \\
    n^+ &= \min(B_{max}, \lfloor m / \theta \rfloor) \quad \text{if } m \ge \theta \\
    n^- &= \min(c, B_{max}, \lfloor (\theta_n - m)/\theta \rfloor + 1)
           \quad \text{if dual and } m \le \theta_n \text{ and } c > 0 \\
    s &= n^+ - n^-, \qquad v = m - s\,\theta \;(\text{hard reset: } v = 0 \text{ if } s \ne 0),
         \qquad c = c + s

``sat_B`` saturates to the signed membrane width (as Loihi's voltage register does). Reset
by subtraction keeps every sub-threshold residual, so the spike count tracks the input sum
(algorithms.md §0). With the guard ``c > 0`` a neuron only retracts spikes it has sent, so
its net output never goes negative. A readout integrator never fires: it only accumulates.
The leak, the synaptic filter and the hard reset exist for networks imported from other tools
(``neurodeploy import``); converted networks use none, and the fast path below is compiled
without them.

The arithmetic is 64-bit inside ``rule``; state is stored as int32, which holds it because
``|v|, |u| < 2^27`` (membrane width <= 28 bits) and ``|c| <= T * max_burst``. Synaptic inputs may
arrive as floats holding exact integers (the reference simulator's GEMM output).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import numba
import numpy as np

from neurodeploy.core.dtypes import IntSpec

MAX_MEMBRANE_BITS = 28
DECAY_BITS = 12  #: Loihi's leak resolution (lava-notes §1: dv is 12 bits, unity 4096)
DECAY_ONE = 1 << DECAY_BITS
#: numba's own thread pool: GNU OpenMP (numba's default when present) aborts any process
#: forked after it started, and the Lava backend forks its workers after the reference ran
numba.config.THREADING_LAYER = "workqueue"


@dataclass(frozen=True)
class NeuronParams:
    """Integer parameters of one population (numpy), each broadcastable against the state
    (e.g. scalar, ``(C, 1, 1)`` per channel, or the full population shape)."""

    theta: np.ndarray
    bias: np.ndarray
    v_init: np.ndarray
    theta_neg: np.ndarray
    max_burst: int = 1
    dual: bool = False
    fires: bool = True
    membrane_bits: int = 24
    input_shift: int = 0
    bias_table: np.ndarray | None = None  #: shape (T, *broadcastable); row t is used at step t
    decay: np.ndarray | int = 0  #: leak per step in 1/4096 of v (DECAY_ONE: v forgotten)
    hard_reset: bool = False
    #: synaptic filter: u loses this many 1/4096ths per step (DECAY_ONE: no filter)
    current_decay: np.ndarray | int = DECAY_ONE

    def __post_init__(self) -> None:
        if not 2 <= self.membrane_bits <= MAX_MEMBRANE_BITS:
            raise ValueError(f"membrane_bits must be in 2..{MAX_MEMBRANE_BITS}")
        if int(self.max_burst) < 1:
            raise ValueError("max_burst must be at least 1")
        for decay in (self.decay, self.current_decay):
            if np.any(np.asarray(decay) < 0) or np.any(np.asarray(decay) > DECAY_ONE):
                raise ValueError(f"decays must be in 0..{DECAY_ONE}")

    def map(self, fn: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]) -> NeuronParams:
        """The same parameters with ``fn(array, lead)`` applied to every array that may
        differ between neurons (``lead`` is ``(T,)`` for the bias table's step axis): how a
        backend moves them into its own layout without listing them."""
        return dataclasses.replace(
            self, theta=fn(self.theta, ()), bias=fn(self.bias, ()), v_init=fn(self.v_init, ()),
            theta_neg=fn(self.theta_neg, ()), decay=fn(np.asarray(self.decay), ()),
            current_decay=fn(np.asarray(self.current_decay), ()),
            bias_table=None if self.bias_table is None else
            fn(self.bias_table, self.bias_table.shape[:1]))

    @property
    def per_neuron(self) -> tuple[np.ndarray, ...]:
        """The arrays that may differ between neurons (bias_table rows included)."""
        arrays = (self.theta, self.bias, self.v_init, self.theta_neg, np.asarray(self.decay),
                  np.asarray(self.current_decay))
        return arrays if self.bias_table is None else (*arrays, self.bias_table[0])


@numba.njit(inline="always")
def _floor_quotient(m, theta):
    """m // theta for 0 < theta <= m < 2^MAX_MEMBRANE_BITS, through float64: exact, because
    a non-integer quotient lies at least 1/theta below the next integer q + 1, farther than
    half an ulp of it ((q + 1) * theta <= 2m < 2^53), so truncation floors it. Float division
    vectorizes, integer division does not: burst neurons run about 5x faster."""
    return np.int64(np.float64(m) / np.float64(theta))


@numba.njit(inline="always")
def rule(v, c, u, current, theta, bias, bias_t, theta_neg, max_burst, dual, fires, low, high,
         shift, decay, current_decay, hard_reset):
    """One neuron, one step: (v, c, u, I[t]) -> (v, c, u, s). See the module docstring."""
    if shift > 0:
        current = (current + (1 << (shift - 1))) >> shift
    if current_decay < DECAY_ONE:  # Loihi's du: u * (4096 - d) / 4096, toward zero
        kept = u * (DECAY_ONE - current_decay)
        u = kept >> DECAY_BITS if kept >= 0 else -((-kept) >> DECAY_BITS)
        current = min(max(u + current + bias, low), high)
        bias = 0  # the synapse's bias is filtered with its input (NIR's CubaLIF)
    u = current
    if decay > 0:  # Loihi's dv: v * (4096 - d) / 4096, rounded toward zero
        kept = v * (DECAY_ONE - decay)
        v = kept >> DECAY_BITS if kept >= 0 else -((-kept) >> DECAY_BITS)
    m = min(max(v + current + bias - bias_t, low), high)
    if not fires:
        return m, c, u, 0
    s = 0
    if m >= theta:  # the division is only needed for bursts (the common single spike skips it)
        s = 1 if max_burst == 1 else min(max_burst, _floor_quotient(m, theta))
    elif dual and m <= theta_neg and c > 0:
        s = -min(c, max_burst, (theta_neg - m) // theta + 1)
    if dual:
        c += s
    if hard_reset and s != 0:
        return 0, c, u, s
    return m - s * theta, c, u, s


@numba.njit(inline="always")
def _neurons(currents, v, c, u, theta, bias, bias_t, theta_neg, max_burst, dual, fires, low,
             high, shift, leaks, decay, filters, current_decay, hard_reset, spikes):
    """``rule`` over one step of one sample's neurons, in place (``decay`` is read only when
    ``leaks``, ``current_decay`` only when ``filters``, so a literal False compiles them
    away)."""
    for j in range(currents.shape[0]):
        vj, cj, uj, s = rule(np.int64(v[j]), np.int64(c[j]), np.int64(u[j]),
                             np.int64(currents[j]), theta[j], bias[j], bias_t[j], theta_neg[j],
                             max_burst, dual, fires, low, high, shift,
                             decay[j] if leaks else 0,
                             current_decay[j] if filters else DECAY_ONE, hard_reset)
        v[j] = vj
        c[j] = cj
        u[j] = uj
        spikes[j] = s


def _advance(currents, v, c, u, theta, bias, bias_table, first_row, theta_neg, decay,
             current_decay, max_burst, dual, fires, low, high, shift, hard_reset, spikes,
             membranes):
    """Advance state (B, n) through currents (T, B, n); outputs (T, B, n) or (0, 0, 0).

    Time is the middle loop so the inner loop streams over contiguous neurons. The common
    cases (no dual threshold, no input shift, no leak or filter, reset by subtraction; single
    spikes, or bursts) call ``rule`` with literal flags: the compiler then drops its other
    branches and vectorizes the loop (about 4x faster).
    """
    steps, batch, neurons = currents.shape
    keep = membranes.shape[0] > 0
    zeros = np.zeros(neurons, np.int64)
    leaks = decay.shape[0] > 0
    filters = current_decay.shape[0] > 0
    plain = not dual and fires and shift == 0 and not leaks and not filters \
        and not hard_reset
    for b in numba.prange(batch):
        for t in range(steps):
            table = bias_table[first_row + t] if bias_table.shape[0] > 0 else zeros
            if plain and max_burst == 1:
                _neurons(currents[t, b], v[b], c[b], u[b], theta, bias, table, theta_neg, 1,
                         False, True, low, high, 0, False, zeros, False, zeros, False,
                         spikes[t, b])
            elif plain:
                _neurons(currents[t, b], v[b], c[b], u[b], theta, bias, table, theta_neg,
                         max_burst, False, True, low, high, 0, False, zeros, False, zeros,
                         False, spikes[t, b])
            else:
                _neurons(currents[t, b], v[b], c[b], u[b], theta, bias, table, theta_neg,
                         max_burst, dual, fires, low, high, shift, leaks, decay, filters,
                         current_decay, hard_reset, spikes[t, b])
            if keep:
                membranes[t, b] = v[b]


#: whole windows of a batch, on all cores (the reference simulator)
_advance_parallel = numba.njit(parallel=True, cache=True)(_advance)
#: one step inside a Lava process: serial, because Lava forks its workers and numba's thread
#: pool must not be used in a forked child
_advance_serial = numba.njit(cache=True)(_advance)


def initial_state(p: NeuronParams, like: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v, c, u) at the start of a sample: v = v_init, c = u = 0; int32, with the shape and
    memory layout of ``like``."""
    v = np.empty_like(like, dtype=np.int32)
    v[...] = p.v_init
    c = np.zeros_like(like, dtype=np.int32)
    return v, c, c.copy(order="K")


@dataclass(frozen=True)
class Kernel:
    """Parameters mapped once onto the compiled loop's (batch, neurons) view of a state
    array: a Lava process prepares this when it starts, not at every step.

    Neurons are taken in the memory order of the state (channels-last maps stay
    channels-last). The leading state axes along which no parameter varies become the
    loop's batch axis, so per-neuron parameters are (n,) vectors, never copied per sample.
    """

    params: NeuronParams
    axes: list[int]  #: state axes, outermost in memory first
    batch_neurons: tuple[int, int]
    theta: np.ndarray
    bias: np.ndarray
    theta_neg: np.ndarray
    decay: np.ndarray  #: (0,) when no neuron leaks
    current_decay: np.ndarray  #: (0,) when no neuron filters its input
    table: np.ndarray  #: (rows, n), (0, n) without a bias table

    @classmethod
    def of(cls, p: NeuronParams, like: np.ndarray) -> Kernel:
        """``like`` is one step's state (any dtype) in the layout the state will have."""
        state = like.shape
        axes = sorted(range(like.ndim), key=lambda a: -abs(like.strides[a]))
        # the outermost axis (samples, in the reference) is the batch unless a parameter
        # varies along it; everything else is one long neuron axis, which keeps loops long
        lead = 1 if len(axes) > 1 and axes[0] not in _varying_axes(p, state) else 0
        batch = prod(state[a] for a in axes[:lead])

        def vector(x) -> np.ndarray:
            full = np.broadcast_to(np.asarray(x), state).transpose(axes)
            return np.ascontiguousarray(full[(0,) * lead]).reshape(-1).astype(np.int64)

        neurons = prod(state) // max(batch, 1)
        return cls(p, axes, (batch, neurons), vector(p.theta), vector(p.bias),
                   vector(p.theta_neg),
                   vector(p.decay) if np.any(p.decay) else np.zeros(0, np.int64),
                   vector(p.current_decay) if np.any(np.asarray(p.current_decay) < DECAY_ONE)
                   else np.zeros(0, np.int64),
                   np.zeros((0, neurons), np.int64) if p.bias_table is None
                   else np.stack([vector(row) for row in p.bias_table]))

    def step(self, v: np.ndarray, c: np.ndarray, u: np.ndarray, current: np.ndarray,
             t: int = 0) -> np.ndarray:
        """One timestep: ``v``, ``c``, ``u`` updated in place; returns the spikes."""
        spikes = np.empty_like(v, dtype=np.int32)
        self._call(_advance_serial, np.asarray(current)[None], (v, c, u), t, spikes[None],
                   None)
        return spikes

    def _call(self, kernel, currents, state, first_row, spikes, membranes) -> None:
        """Run ``kernel`` on (T, *state) arrays viewed as (T, batch, neurons)."""
        p = self.params
        if p.bias_table is not None and len(p.bias_table) < first_row + currents.shape[0]:
            raise ValueError(f"bias table has {len(p.bias_table)} rows, steps up to "
                             f"{first_row + currents.shape[0]} need one each")
        shape3 = (currents.shape[0], *self.batch_neurons)
        membrane = IntSpec(p.membrane_bits, signed=True)
        outputs = [_view(spikes, self.axes, shape3)]
        outputs.append(np.zeros((0, 0, 0), np.int32) if membranes is None
                       else _view(membranes, self.axes, shape3))
        state3 = (1, *self.batch_neurons)
        kernel(_view(currents, self.axes, shape3, writable=False),
               *(_view(x[None], self.axes, state3)[0] for x in state),
               self.theta, self.bias, self.table, first_row, self.theta_neg, self.decay,
               self.current_decay, int(p.max_burst), bool(p.dual), bool(p.fires), membrane.min,
               membrane.max, int(p.input_shift), bool(p.hard_reset), *outputs)


def step(v: np.ndarray, c: np.ndarray, u: np.ndarray, current: np.ndarray, p: NeuronParams,
         t: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One timestep for state ``v``, ``c``, ``u`` (updated in place and returned) and the
    spikes (a Kernel made once serves every step of a long run)."""
    return v, c, u, Kernel.of(p, v).step(v, c, u, current, t)


def run(currents: np.ndarray, p: NeuronParams, keep_membranes: bool = True,
        spikes_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run one window from ``v_init``: currents (T, *state) -> (spikes, membranes), both
    (T, *state); spikes are written into ``spikes_out`` when given (any numeric dtype: the
    reference simulator passes its next GEMM's float input buffer)."""
    spikes = empty_window(currents) if spikes_out is None else spikes_out
    membranes = empty_window(spikes) if keep_membranes else None
    state = initial_state(p, spikes[0])
    Kernel.of(p, spikes[0])._call(_advance_parallel, currents, state, 0, spikes, membranes)
    return spikes, membranes


def empty_window(like: np.ndarray, shape: tuple[int, ...] | None = None,
                 dtype: type = np.int32) -> np.ndarray:
    """A (T, *state) buffer (``like``'s shape unless ``shape`` is given, e.g. for more
    samples) whose every step has the memory layout of ``like``'s: spikes are copied in and
    read back by the next layer without reordering."""
    axes = memory_order(like)
    shape = like.shape if shape is None else shape
    stored = np.empty((shape[0], *(shape[a + 1] for a in axes)), dtype)
    return stored.transpose(0, *(1 + axes.index(a) for a in range(len(axes))))


def memory_order(x: np.ndarray) -> list[int]:
    """The state axes of a (T, *state) array, outermost in memory first (ties: in order)."""
    return sorted(range(x.ndim - 1), key=lambda a: -abs(x.strides[a + 1]))


def _varying_axes(p: NeuronParams, state: tuple[int, ...]) -> set[int]:
    """State axes along which some parameter takes different values."""
    varying = set()
    for x in p.per_neuron:
        shape = np.shape(x)
        for offset, size in enumerate(shape):
            if size > 1:
                varying.add(len(state) - len(shape) + offset)
    return varying


def _view(x: np.ndarray, axes: list[int], shape3: tuple[int, int, int],
          writable: bool = True) -> np.ndarray:
    """``x`` (T, *state) as (T, B, n) in memory order, sharing memory when it is written."""
    moved = x.transpose(0, *(a + 1 for a in axes))
    try:
        flat = moved.view()
        flat.shape = shape3  # raises instead of copying
        return flat
    except AttributeError:
        if writable:
            raise ValueError("output buffer layout cannot be viewed as (T, batch, neurons)") \
                from None
        return np.ascontiguousarray(moved).reshape(shape3)

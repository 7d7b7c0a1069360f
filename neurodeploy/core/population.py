"""The population record: everything the neuron rule needs to know about one population.

The record is the authority. It is validated whenever it is built or read back from a file;
the NIR node a graph holds for the population (``IF``/``LIF`` for spiking neurons, ``I``/``LI``
for the readout integrator) is derived from it by ``to_node`` and never edited on its own; a
node read from a file that disagrees with its record is refused (``record_of``). The backends
get the rule's parameters from ``neuron_params``, so adding a parameter touches this record,
the rule (``core/neuron.py``) and their tests.

Values are floats in ANN units while a method builds the network, and integers in membrane
units (``2**exponent`` ANN units each) once the integer passes ran.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field

import nir
import numpy as np

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.neuron import DECAY_ONE, MAX_MEMBRANE_BITS, NeuronParams
from neurodeploy.errors import MetadataError

#: a parameter with more dimensions than this is per neuron, not per layer or per channel
MAX_PARAM_DIMS_PER_CHANNEL = 1
MAX_INPUT_SHIFT = 31  #: the rule rounds the shifted input in 64-bit arithmetic
MAX_EXPONENT = 64  #: |exponent|: a membrane unit of 2**64 ANN units means a broken file
MAX_TIMESTEPS = 1 << 16  #: a window longer than this is a damaged file, not a network
#: NIR node classes that hold a population (derived from its record)
NEURON_TYPES = (nir.IF, nir.LIF, nir.CubaLIF, nir.I, nir.LI)


class Kind(enum.StrEnum):
    IF = "if"  #: integrate-and-fire neurons
    READOUT = "readout"  #: the non-firing integrator whose membrane gives the logits


class Reset(enum.StrEnum):
    SUBTRACT = "subtract"  #: v -= s * theta: converted networks keep every residual
    ZERO = "zero"  #: v = 0 after a spike: NIR's reset to v_reset = 0, Loihi's LIF


@dataclass(frozen=True, eq=False)
class Population:
    """One neuron population (or the readout).

    Arrays are scalar, per channel (shape ``(C,)``) or per neuron (the population shape).
    """

    kind: Kind = Kind.IF
    theta: np.ndarray = field(default_factory=lambda: np.array(1))  #: > 0
    bias: np.ndarray = field(default_factory=lambda: np.array(0))  #: added every step
    v_init: np.ndarray = field(default_factory=lambda: np.array(0))  #: v at each window start
    theta_neg: np.ndarray = field(default_factory=lambda: np.array(0))  #: <= 0, dual only
    max_burst: int = 1  #: most spikes one neuron sends in one step (graded payload)
    dual: bool = False  #: negative spikes, guarded by the net spike count
    #: the membrane unit is 2**exponent ANN units (None until quantize_weights ran)
    exponent: int | None = None
    #: the synaptic input is right-shifted (rounding) by this many bits before it is
    #: integrated, so a threshold far above any single weight still fits the threshold width
    #: (Loihi's weight exponent plays this role); the weights' own unit is 2**(exponent-shift)
    input_shift: int = 0
    bias_table: np.ndarray | None = None  #: (T, ...) per-step bias (FTBC), subtracted at t
    #: leak per step in integer 1/4096ths of the membrane (neuron.DECAY_ONE); 0 for converted
    #: networks, set by ``neurodeploy import`` from NIR's tau and dt
    decay: np.ndarray = field(default_factory=lambda: np.array(0))
    #: synaptic filter (NIR's CubaLIF) in 1/4096ths of the current per step; DECAY_ONE (the
    #: default): none. Set by ``neurodeploy import`` from tau_syn and dt
    current_decay: np.ndarray = field(default_factory=lambda: np.array(DECAY_ONE))
    reset: Reset = Reset.SUBTRACT
    membrane_bits: int = 24  #: width of v; the target's, set by the integer passes
    source: str = ""  #: the ANN node (or the imported NIR node) this population replaces

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
            object.__setattr__(self, "reset", Reset(self.reset))
        except ValueError as exc:
            raise MetadataError(str(exc)) from None
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _numeric(name, value))
        _validate(self)

    @property
    def fires(self) -> bool:
        return self.kind is Kind.IF

    @property
    def quantized(self) -> bool:
        """Every value is an integer in membrane units (the integer passes ran)."""
        return all(
            np.issubdtype(np.asarray(getattr(self, name)).dtype, np.integer)
            for name in _ARRAYS if getattr(self, name) is not None)

    def replace(self, **changes) -> Population:
        return dataclasses.replace(self, **changes)

    def neuron_params(self, shape: tuple[int, ...]) -> NeuronParams:
        """The rule's integer parameters (int32), shaped to broadcast over (batch, *shape)."""
        if not self.quantized:
            raise MetadataError("population is not quantized; run the integer passes first")

        def arr(value: np.ndarray) -> np.ndarray:
            return param_for_shape(value, shape).astype(np.int32)

        return NeuronParams(
            theta=arr(self.theta), bias=arr(self.bias), v_init=arr(self.v_init),
            theta_neg=arr(self.theta_neg), max_burst=self.max_burst, dual=self.dual,
            fires=self.fires, membrane_bits=self.membrane_bits, input_shift=self.input_shift,
            bias_table=None if self.bias_table is None else
            np.stack([arr(row) for row in self.bias_table]),
            decay=arr(self.decay), hard_reset=self.reset is Reset.ZERO,
            current_decay=arr(self.current_decay))

    def to_node(self, shape: tuple[int, ...], unit: float = 1.0, margin: float = 0.0
                ) -> nir.NIRNode:
        """The standard NIR node of this population, without metadata.

        In the graph the node is in membrane units (``unit`` 1); the plain-NIR export asks for
        ANN units and a threshold ``margin`` below theta (interop/standard.py). A leak becomes
        ``LIF``/``LI`` with ``tau = r = 4096 / decay`` (dt = 1); a synaptic filter ``CubaLIF``
        with ``tau_syn = w_in = 4096 / current_decay``."""
        ones = np.ones(shape)
        decay = np.broadcast_to(param_for_shape(self.decay, shape), shape).astype(np.float64)
        tau = np.where(decay > 0, DECAY_ONE / np.maximum(decay, 1), np.inf)
        leaky = bool(np.any(decay))
        current = np.broadcast_to(param_for_shape(self.current_decay, shape), shape)
        if np.any(current < DECAY_ONE):
            tau_syn = DECAY_ONE / np.maximum(current.astype(np.float64), 1)
            theta = np.broadcast_to(param_for_shape(self.theta, shape), shape)
            return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=tau, v_leak=0 * ones,
                               v_threshold=(theta - margin) * unit, v_reset=0 * ones,
                               w_in=tau_syn)
        if not self.fires:
            return nir.LI(tau=tau, r=tau, v_leak=0 * ones) if leaky else nir.I(r=ones)
        theta = np.broadcast_to(param_for_shape(self.theta, shape), shape).astype(np.float64)
        threshold = (theta - margin) * unit
        if leaky:
            return nir.LIF(tau=tau, r=tau, v_leak=0 * ones, v_threshold=threshold,
                           v_reset=0 * ones)
        return nir.IF(r=ones, v_threshold=threshold, v_reset=0 * ones)


_MEMBRANE_VALUES = ("theta", "bias", "v_init", "theta_neg", "bias_table")
_ARRAYS = (*_MEMBRANE_VALUES, "decay", "current_decay")
_NODE_FIELDS = ("r", "tau", "tau_syn", "tau_mem", "w_in", "v_leak", "v_threshold", "v_reset")


def _numeric(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise MetadataError(f"'{name}' must be numbers, got {arr.dtype} values")
    if not np.isfinite(arr).all():
        raise MetadataError(f"'{name}' holds NaN or infinite values")
    return arr


def _validate(p: Population) -> None:
    """Ranges the rule and the registers need; a violation names the field."""
    def require(ok: bool, what: str) -> None:
        if not ok:
            raise MetadataError(what)

    for name in ("max_burst", "input_shift", "membrane_bits"):
        require(isinstance(getattr(p, name), int) and not isinstance(getattr(p, name), bool),
                f"'{name}' must be an integer")
    require(2 <= p.membrane_bits <= MAX_MEMBRANE_BITS,
            f"'membrane_bits' is {p.membrane_bits}, it must be in 2..{MAX_MEMBRANE_BITS}")
    membrane = IntSpec(p.membrane_bits, signed=True)
    require(1 <= p.max_burst <= membrane.max,
            f"'max_burst' is {p.max_burst}, it must be in 1..{membrane.max}")
    require(0 <= p.input_shift <= MAX_INPUT_SHIFT,
            f"'input_shift' is {p.input_shift}, it must be in 0..{MAX_INPUT_SHIFT}")
    require(p.exponent is None or abs(p.exponent) <= MAX_EXPONENT,
            f"'exponent' is {p.exponent}, it must be in -{MAX_EXPONENT}..{MAX_EXPONENT}")
    for name in ("decay", "current_decay"):
        value = getattr(p, name)
        require(np.all((value >= 0) & (value <= DECAY_ONE)),
                f"'{name}' must be in 0..{DECAY_ONE} (1/{DECAY_ONE}ths per step)")
        require(np.all(value == np.round(value)), f"'{name}' must hold integers")
    require(p.fires or np.all(p.current_decay == DECAY_ONE),
            "a readout integrator has no synaptic filter ('current_decay')")
    if p.bias_table is not None:
        require(p.bias_table.ndim >= 1 and len(p.bias_table) > 0,
                "'bias_table' must have one row per step")
        require(len(p.bias_table) <= MAX_TIMESTEPS, f"the bias table has {len(p.bias_table)} "
                f"rows, more than the longest window ({MAX_TIMESTEPS} steps)")
    if p.fires:
        require(bool(np.all(p.theta > 0)), "'theta' must be positive")
        require(bool(np.all(p.theta_neg <= 0)), "'theta_neg' must be zero or negative")
    for name in _MEMBRANE_VALUES:  # decay is in 1/4096ths, checked above
        value = getattr(p, name)
        if value is None or not np.issubdtype(value.dtype, np.integer) or value.size == 0:
            continue
        require(membrane.min <= int(value.min()) and int(value.max()) <= membrane.max,
                f"'{name}' does not fit the {p.membrane_bits}-bit membrane "
                f"(values {int(value.min())}..{int(value.max())})")


def param_for_shape(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a scalar / per-channel / per-neuron parameter to broadcast over ``shape``."""
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.shape == tuple(shape):
        return arr
    if arr.ndim == 1 and arr.shape[0] == shape[0]:
        return arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    raise MetadataError(f"parameter of shape {arr.shape} does not fit population {shape}")


def population_shape(node: nir.NIRNode) -> tuple[int, ...]:
    return tuple(int(d) for d in node.input_type["input"])


def check_node(node: nir.NIRNode, record: Population, name: str) -> None:
    """Refuse a population node that is not what its record derives (a file edited by hand,
    or written by a tool that changed one without the other)."""
    shape = population_shape(node)
    try:
        expected = record.to_node(shape)
        if record.quantized:  # every parameter fits the shape (else the first run fails)
            record.neuron_params(shape)
    except MetadataError as exc:
        raise MetadataError(str(exc), node=name) from None
    if type(node) is not type(expected):
        raise MetadataError(f"the node is a {type(node).__name__}, its record describes a "
                            f"{type(expected).__name__}", node=name)
    for key in _NODE_FIELDS:
        if hasattr(expected, key) and not np.array_equal(
                np.asarray(getattr(node, key), np.float64), getattr(expected, key)):
            raise MetadataError(f"the node's {key} disagrees with its record", node=name)

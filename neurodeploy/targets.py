"""Targets are data: `neurodeploy/target_files/NAME.toml` loaded strictly into frozen dataclasses.

Unknown keys, missing keys, wrong types and values outside what the code can use are errors
naming the file and the key path, so a typo in a chip description can never silently fall
back to a default or reach a pass as a width it cannot handle.

Two tables are optional, and their absence is a statement: no ``[system]`` means one chip, no
``[memory]`` means the core memory is not modelled in bits (``limits.synapses_per_core`` counts
synapses instead). A multi-chip system names its chip with ``base = "NAME"``: it takes every
table of ``target_files/NAME.toml`` and replaces the ones it gives (whole tables), so a board
is its chip file plus a ``[system]`` table, not a copy of the chip's widths.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.neuron import MAX_MEMBRANE_BITS
from neurodeploy.errors import TargetError

SCHEMA_VERSION = 1
MAX_INPUT_BITS = 24  #: inputs travel as graded 24-bit messages (Lava) and int32 arrays
TARGETS_DIR = Path(__file__).resolve().parent / "target_files"  # package data: ships in the wheel
#: inclusive range of each integer field, from the code that uses it (None: unbounded)
RANGES: dict[str, tuple[int, int | None]] = {
    # signed mantissas: one bit holds only 0; none can be wider than the widest membrane
    "weights.mantissa_bits": (2, MAX_MEMBRANE_BITS),
    "neuron.membrane_bits": (2, MAX_MEMBRANE_BITS),  # neuron.py keeps v in int32
    "neuron.threshold_bits": (1, MAX_MEMBRANE_BITS - 1),  # unsigned, below the membrane's max
    "neuron.bias_mantissa_bits": (1, MAX_MEMBRANE_BITS),  # 1 bit: biases must be 0
    # quantize_bias tries every shift up to 2**bits - 1: 5 bits shift past any membrane
    "neuron.bias_exponent_bits": (0, 5),
    "neuron.max_burst": (1, None),  # and it must fit the spike payload (below)
    "spikes.payload_bits": (1, 32),  # Lava's messages are int32
    "input.bits": (1, MAX_INPUT_BITS),  # graded 24-bit messages on Lava
    "timing.hop_delay": (0, 63),  # Loihi's 6-bit synaptic delays (lava-notes.md §7)
    "limits.cores": (0, None),
    "limits.neurons_per_core": (0, None),
    "limits.synapses_per_core": (0, None),
    "limits.fan_in_per_neuron": (0, None),
    "limits.synaptic_sum_bits": (2, 32),  # Lava accumulates in int32
    "system.chips": (1, None),
    "memory.bits_per_core": (1, None),
    "memory.weight_bits": (1, 32),  # at most the int32 a Lava weight is held in
    "memory.neuron_bits": (0, None),
}
ENERGIES = ("energy.synop_pj", "energy.neuron_update_pj")
MAX_ENERGY_PJ = 1e6  #: a microjoule per operation: far above any chip, and no total overflows
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  #: it ends up in default file names


@dataclass(frozen=True)
class WeightSpec:
    mantissa_bits: int  #: signed weight mantissa width; the per-layer power-of-two exponent
    #: only fixes the membrane unit, so it needs no hardware shift and has no range limit


@dataclass(frozen=True)
class NeuronSpec:
    membrane_bits: int  #: width of v; the neuron saturates there (as Loihi's voltage does)
    threshold_bits: int  #: unsigned threshold mantissa width
    bias_mantissa_bits: int  #: signed bias mantissa; bias = mantissa << exponent
    bias_exponent_bits: int  #: unsigned bias exponent width
    soft_reset: bool  #: reset by subtraction is available
    dual_threshold: bool  #: negative spikes with a net-count guard are available
    max_burst: int  #: largest spike count one neuron may send in one step
    per_neuron_v_init: bool  #: the membrane can start from a per-neuron value each sample
    bias_table: bool  #: a per-timestep bias table is available (FTBC)

    @property
    def membrane(self) -> IntSpec:
        return IntSpec(self.membrane_bits, signed=True)


@dataclass(frozen=True)
class SpikeSpec:
    graded: bool  #: spikes carry an integer payload (burst counts), not just an event
    signed: bool  #: negative payloads are allowed (dual-threshold neurons)
    payload_bits: int  #: width of a graded payload


@dataclass(frozen=True)
class InputSpec:
    bits: int  #: unsigned width of the direct-encoded input injected every step


@dataclass(frozen=True)
class TimingSpec:
    hop_delay: int  #: timesteps a spike needs to cross one synapse layer


@dataclass(frozen=True)
class LimitSpec:
    cores: int  #: cores per chip (0: not modelled)
    neurons_per_core: int  #: (0: not modelled)
    synapses_per_core: int  #: synaptic weights stored per core (0: not modelled)
    fan_in_per_neuron: int  #: (0: not modelled)
    synaptic_sum_bits: int  #: width of one step's synaptic input sum; larger sums wrap


@dataclass(frozen=True)
class EnergySpec:
    synop_pj: float  #: energy per synaptic operation (one spike event times one fan-out)
    neuron_update_pj: float  #: energy per neuron state update
    source: str  #: where the two numbers come from


@dataclass(frozen=True)
class SystemSpec:
    chips: int  #: chips of ``limits.cores`` cores each; spikes between them cross chips
    source: str  #: where the chip count comes from


@dataclass(frozen=True)
class MemorySpec:
    """One pool of bits per core holding synaptic weights and neuron state."""

    bits_per_core: int  #: the pool
    weight_bits: int  #: bits of one stored weight
    neuron_bits: int  #: bits of state one neuron keeps
    shared_kernels: bool  #: a convolution's kernel is stored once per core, not per neuron
    source: str  #: where the figures come from, and what is assumed


ONE_CHIP = SystemSpec(chips=1, source="one chip")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    weights: WeightSpec
    neuron: NeuronSpec
    spikes: SpikeSpec
    input: InputSpec
    timing: TimingSpec
    limits: LimitSpec
    energy: EnergySpec
    system: SystemSpec = ONE_CHIP  #: absent from a chip file: one chip
    memory: MemorySpec | None = None  #: absent: core memory not modelled in bits

    @property
    def total_cores(self) -> int:
        """Cores of the whole system (0: not modelled)."""
        return self.system.chips * self.limits.cores


def available_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name_or_path: str | Path) -> Target:
    """Load a target by name (target_files/NAME.toml) or by path to a .toml file."""
    if not isinstance(name_or_path, str | os.PathLike) or not os.fspath(name_or_path):
        raise TargetError(f"target must be a target's name or a .toml path, got "
                          f"{name_or_path!r}", hint=f"Names: {', '.join(available_targets())}")
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGETS_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise TargetError(f"unknown target '{name_or_path}'",
                              hint=f"Known targets: {', '.join(available_targets())}")
    raw = _read(path)
    base = raw.pop("base", None)
    if base is not None:
        chip = _read(_base_path(base, path))
        if "base" in chip:
            raise TargetError(f"{path.name}: base '{base}' has a base itself; name a chip file")
        raw = chip | raw
    target = _validate(_build(Target, raw, path.name, ""), path.name)
    if (path.resolve().parent != TARGETS_DIR.resolve() and target.name in available_targets()
            and target != load_target(target.name)):
        raise TargetError(f"{path.name}: name '{target.name}' is a shipped target's, and the "
                          "file differs from it", hint="Give it a name of its own (name = "
                          "\"...\"): a network records its target by name, and a shipped "
                          "name reads back as the shipped chip")
    return target


def _read(path: Path) -> dict:
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path.name}: not valid TOML ({exc})") from None
    schema = raw.pop("schema", None)
    if schema != SCHEMA_VERSION:
        raise TargetError(f"{path.name}: schema must be {SCHEMA_VERSION}, got {schema!r}")
    return raw


def _base_path(base: object, path: Path) -> Path:
    """A shipped chip by name, or a .toml path relative to the system file."""
    if not isinstance(base, str):
        raise TargetError(f"{path.name}: base must be str, got {base!r}")
    if base.endswith(".toml"):
        return path.parent / base
    if base not in available_targets():
        raise TargetError(f"{path.name}: base names an unknown target '{base}'",
                          hint=f"Known targets: {', '.join(available_targets())}")
    return TARGETS_DIR / f"{base}.toml"


def _validate(target: Target, fname: str) -> Target:
    for key, (low, high) in RANGES.items():
        value = _value(target, key)
        if value is None:  # an optional table that is absent
            continue
        if value < low or (high is not None and value > high):
            allowed = f"at least {low}" if high is None else f"in {low}..{high}"
            raise TargetError(f"{fname}: {key} must be {allowed}, got {value}")
    payload = IntSpec(target.spikes.payload_bits, target.spikes.signed)
    if target.neuron.max_burst > payload.max:
        raise TargetError(f"{fname}: neuron.max_burst {target.neuron.max_burst} does not fit "
                          f"the spike payload ({payload})")
    for key in ENERGIES:
        value = _value(target, key)
        if not 0 <= value <= MAX_ENERGY_PJ:
            raise TargetError(f"{fname}: {key} must be in 0..{MAX_ENERGY_PJ:g} pJ, got {value}")
    _check_consistent(target, fname)
    if not NAME.fullmatch(target.name):
        raise TargetError(f"{fname}: name must be one word of letters, digits, '_', '-' and "
                          f"'.' (at most 64), got {target.name!r}")
    if not target.description.isprintable():
        raise TargetError(f"{fname}: description must be one line of printable text")
    return target


def _check_consistent(target: Target, fname: str) -> None:
    """Fields that each pass their range but contradict one another: compile would refuse
    the feature saying the target has none, or the capacity would be computed on a chip that
    cannot exist."""
    rules = [
        (target.neuron.dual_threshold and not target.spikes.signed,
         "neuron.dual_threshold needs spikes.signed (negative spikes)"),
        (target.neuron.max_burst > 1 and not target.spikes.graded,
         "neuron.max_burst above 1 needs spikes.graded (a burst is one graded spike)"),
        (target.memory is not None and target.memory.weight_bits < target.weights.mantissa_bits,
         "memory.weight_bits must hold a weight: at least weights.mantissa_bits"),
        (target.system.chips > 1 and target.limits.cores == 0,
         "system.chips above 1 needs limits.cores (the cores of one chip)")]
    for broken, rule in rules:
        if broken:
            raise TargetError(f"{fname}: {rule}")


def _value(target: Target, key: str):
    section, name = key.split(".")
    return getattr(getattr(target, section), name, None)


def _build(cls: type, raw: object, fname: str, where: str):
    if not isinstance(raw, dict):
        raise TargetError(f"{fname}: [{where}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise TargetError(f"{fname}: unknown key {_path(where, unknown[0])}",
                          hint=f"Allowed keys here: {', '.join(fields)}")
    values = {}
    for name, field in fields.items():
        if name in raw:
            values[name] = _convert(hints[name], raw[name], fname, _path(where, name))
        elif field.default is dataclasses.MISSING:  # else an optional table, left out
            raise TargetError(f"{fname}: missing key {_path(where, name)}")
    return cls(**values)


def _convert(hint: object, value: object, fname: str, key: str):
    if typing.get_origin(hint) is types.UnionType:  # an optional table: X | None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, fname, key)
    ok = {int: type(value) is int, bool: type(value) is bool, str: isinstance(value, str),
          float: type(value) in (int, float)}[hint]
    if not ok:
        raise TargetError(f"{fname}: {key} must be {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key

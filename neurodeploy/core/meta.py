"""Typed views of ``node.metadata["neurodeploy"]`` and ``graph.metadata["neurodeploy"]``.

NIR round-trips nested metadata through HDF5, but ints come back as ``np.int64``, bools as
``np.bool_``, strings as bytes and lists as arrays. Every access goes through these
dataclasses so that normalisation happens in one place and a graph read from disk equals
the graph that was written.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from neurodeploy.core.population import MAX_TIMESTEPS, NEURON_TYPES, Population, population_shape
from neurodeploy.errors import InputError, MetadataError
from neurodeploy.nir_compat import replace_node
from neurodeploy.targets import MAX_INPUT_BITS

MAX_HOP_DELAY = 63  #: Loihi's 6-bit synaptic delays
SCHEMA_VERSION = 3  #: 2: the population record (reset mode, membrane width in the record);
#: 3: event inputs (InputMeta.events), the synaptic filter (Population.current_decay)
KEY = "neurodeploy"

#: NIR node classes that carry synaptic weights or routing (one hop each on pipelined targets)
SYNAPSE_TYPES = (nir.Linear, nir.Affine, nir.Conv2d, nir.SumPool2d)


@dataclass
class InputMeta:
    """The input: integers of ``bits`` width, worth ``scale`` each (core/encoding.py)."""

    bits: int = 8
    scale: float = 1.0 / 255  #: real (ANN) value of one integer input unit
    kind: str = "input"
    events: bool = False  #: integers count events (scale 1), not [0, 1] values

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= MAX_INPUT_BITS:
            raise MetadataError(f"input 'bits' is {self.bits}, it must be in 1..{MAX_INPUT_BITS}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise MetadataError(f"input 'scale' is {self.scale}, it must be a positive number")
        # one event per integer, or [0, 1] over the width: anything else rescales every input
        expected = 1.0 if self.events else 1.0 / self.high
        if self.scale != expected:
            raise MetadataError(f"input 'scale' is {self.scale}; {self.bits}-bit "
                                f"{'event' if self.events else '[0, 1]'} inputs have {expected}")

    @property
    def high(self) -> int:
        """The largest input integer."""
        return (1 << self.bits) - 1


@dataclass
class GraphMeta:
    """How an artifact was made and what it needs to run."""

    schema: int = SCHEMA_VERSION
    version: str = ""
    target: str = ""
    method: str = ""
    timesteps: int = 4
    hop_delay: int = 0
    quantized: bool = False
    #: check_overflow, per population: the largest |v| the worst-case bounds reach within the
    #: compiled window, and the longest window in which its membrane cannot saturate
    membrane_bounds: dict[str, int] = field(default_factory=dict)
    safe_windows: dict[str, int] = field(default_factory=dict)
    #: check_capacity: cores allocated per population (empty: not allocated)
    cores: dict[str, int] = field(default_factory=dict)
    #: check_capacity: "cores", "neurons", "synapses" used / available (modelled limits only)
    utilisation: dict[str, float] = field(default_factory=dict)
    #: check_capacity: the limits the network exceeds (kept when the check does not refuse)
    capacity_violations: list[str] = field(default_factory=list)
    pipeline: list[str] = field(default_factory=list)
    pass_seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.timesteps <= MAX_TIMESTEPS:
            raise MetadataError(f"'timesteps' is {self.timesteps}, it must be in "
                                f"1..{MAX_TIMESTEPS}")
        if not 0 <= self.hop_delay <= MAX_HOP_DELAY:
            raise MetadataError(f"'hop_delay' is {self.hop_delay}, it must be in "
                                f"0..{MAX_HOP_DELAY}")
        # the bookkeeping that report and summaries print as fact
        for key in ("membrane_bounds", "safe_windows", "cores", "utilisation", "pass_seconds"):
            for name, value in getattr(self, key).items():
                if not (math.isfinite(value) and value >= 0):
                    raise MetadataError(f"'{key}' of '{name}' is {value}, it must be a "
                                        "finite number >= 0")

    @property
    def safe_timesteps(self) -> int:
        """The largest T for which no membrane can saturate (0: unchecked)."""
        return min(self.safe_windows.values(), default=0)

    @property
    def cores_used(self) -> int:
        return sum(self.cores.values())


def get_node_meta(node: nir.NIRNode, cls: type, name: str = "") -> Any:
    raw = node.metadata.get(KEY)
    if raw is None:
        raise MetadataError("node has no neurodeploy metadata", node=name or None)
    return _from_dict(cls, raw, name)


def with_node_meta(node: nir.NIRNode, meta: Any) -> nir.NIRNode:
    """A copy of ``node`` carrying ``meta`` (NIR nodes are mutable: never edit in place)."""
    return replace_node(node, metadata={**node.metadata, KEY: _to_dict(meta)})


def get_graph_meta(graph: nir.NIRGraph) -> GraphMeta:
    raw = (graph.metadata or {}).get(KEY)
    if raw is None:
        raise MetadataError("not a neurodeploy graph (no neurodeploy metadata)",
                            hint="Compile a model with `neurodeploy compile` first")
    meta = _from_dict(GraphMeta, raw, "graph")
    if meta.schema != SCHEMA_VERSION:
        raise MetadataError(f"unknown schema version {meta.schema} (this neurodeploy reads "
                            f"{SCHEMA_VERSION})", hint="Recompile the model with this version")
    return meta


def set_graph_meta(graph: nir.NIRGraph, meta: GraphMeta) -> None:
    graph.metadata = {**(graph.metadata or {}), KEY: _to_dict(meta)}


def population_meta(graph: nir.NIRGraph, name: str) -> Population:
    return get_node_meta(graph.nodes[name], Population, name)


def population_node(record: Population, shape: tuple[int, ...]) -> nir.NIRNode:
    """The population's NIR node, derived from its record, carrying the record: the one way
    a population node is made."""
    node = record.to_node(tuple(shape))
    node.metadata = {KEY: _to_dict(record)}
    return node


def with_record(graph: nir.NIRGraph, name: str, record: Population) -> nir.NIRGraph:
    """A new graph whose population ``name`` is ``record`` (its node derived anew)."""
    return with_records(graph, {name: record})


def with_records(graph: nir.NIRGraph, records: dict[str, Population]) -> nir.NIRGraph:
    """A new graph whose populations are ``records`` (their nodes derived anew), in one copy:
    a copy per population made each rebuild of a network quadratic in its depth."""
    return copy_graph(graph, {name: population_node(record, population_shape(graph.nodes[name]))
                              for name, record in records.items()})


def copy_graph(graph: nir.NIRGraph, nodes: dict[str, nir.NIRNode]) -> nir.NIRGraph:
    """A new graph with ``nodes`` replacing same-named nodes; edges and metadata copied."""
    merged = {name: nodes.get(name, node) for name, node in graph.nodes.items()}
    return nir.NIRGraph(merged, list(graph.edges), metadata=_deep_copy(graph.metadata))


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value.copy() if hasattr(value, "copy") else value


def longest_window(graph: nir.NIRGraph) -> int | None:
    """The longest window the graph can run: its shortest per-step bias table (FTBC has one
    row per compiled step); None when no population has a table."""
    rows = [len(meta.bias_table) for node in graph.nodes.values()
            if isinstance(meta := _population_or_none(node), Population)
            and meta.bias_table is not None]
    return min(rows) if rows else None


def check_window(graph: nir.NIRGraph, timesteps: int) -> None:
    """Every backend refuses a window past the bias tables, in these words."""
    longest = longest_window(graph)
    if longest is not None and timesteps > longest:
        raise InputError(f"the network has per-step bias tables (FTBC) for {longest} steps; "
                         f"it cannot run {timesteps}",
                         hint=f"Use windows of at most {longest} steps, or compile for more")


def _population_or_none(node: nir.NIRNode) -> Population | None:
    if not isinstance(node, NEURON_TYPES) or KEY not in node.metadata:
        return None
    return get_node_meta(node, Population)


def _to_dict(meta: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(meta):
        value = getattr(meta, f.name)
        if value is None:
            continue  # HDF5 has no None: absence means None
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, list):
            value = np.array([str(v).encode() for v in value], dtype="S")
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()  # HDF5 cannot compress a 0-d dataset, which nir.write asks for
        out[f.name] = value
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The record's field types, resolved once per class (resolving them per read was a
    tenth of a calibrating search's bookkeeping)."""
    return typing.get_type_hints(cls)


def _from_dict(cls: type, raw: dict[str, Any], where: str) -> Any:
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise MetadataError(f"unknown metadata keys {sorted(unknown)}", node=where)
    # a file holds every key it was written with (only None is stored as absence): a missing
    # one is damage, not a default
    missing = sorted(name for name in known - set(raw) if not _optional(hints[name]))
    if missing:
        raise MetadataError(f"metadata key '{missing[0]}' is missing", node=where)
    values = {}
    for name, value in raw.items():
        try:
            values[name] = _normalise(hints[name], value)
        except (TypeError, ValueError, OverflowError) as exc:  # int(inf) overflows
            raise MetadataError(f"metadata key '{name}' is malformed ({exc})", node=where) \
                from None
    try:
        return cls(**values)
    except MetadataError as exc:
        raise MetadataError(str(exc), node=where) from None


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _normalise(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, type(int | None)) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _normalise(inner[0], value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value.decode() if isinstance(value, bytes) else value)
    if hint is str:
        if not isinstance(value, bytes | str):
            raise TypeError(f"{value!r} is not text")
        return value.decode() if isinstance(value, bytes) else value
    if hint is bool:
        if not isinstance(value, bool | np.bool_ | int | np.integer) or value not in (0, 1):
            raise TypeError(f"{value!r} is not a boolean")
        return bool(value)
    if hint is int:
        if not isinstance(value, int | np.integer | float | np.floating) or value != np.floor(
                value):
            raise TypeError(f"{value!r} is not a whole number")
        return int(value)
    if hint is float:
        if not isinstance(value, int | np.integer | float | np.floating):
            raise TypeError(f"{value!r} is not a number")
        return float(value)
    if hint is np.ndarray:
        return np.asarray(value)
    if origin is list:
        items = np.asarray(value)
        if items.ndim != 1:  # a lone string would be read as its characters
            raise TypeError(f"{value!r} is not a list")
        return [_normalise(args[0], v) for v in items.tolist()]
    if origin is dict:
        return {str(k): _normalise(args[1], v) for k, v in dict(value).items()}
    if hint is Any:
        return _plain(value)
    raise TypeError(f"unsupported metadata type {hint}")


def _plain(value: Any) -> Any:
    """Turn HDF5-returned values into plain Python/numpy values for free-form notes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value

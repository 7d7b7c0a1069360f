"""Typed views of ``node.metadata["neurodeploy"]`` and ``graph.metadata["neurodeploy"]``.

NIR round-trips nested metadata through HDF5, but ints come back as ``np.int64``, bools as
``np.bool_``, strings as bytes and lists as arrays. Every access goes through these
dataclasses so that normalisation happens in one place and a graph read from disk equals
the graph that was written.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from neurodeploy.errors import MetadataError

SCHEMA_VERSION = 1
KEY = "neurodeploy"

#: a parameter with more dimensions than this is per neuron, not per layer or per channel
MAX_PARAM_DIMS_PER_CHANNEL = 1
#: NIR node classes that carry synaptic weights or routing (one hop each on pipelined targets)
SYNAPSE_TYPES = (nir.Linear, nir.Affine, nir.Conv2d, nir.SumPool2d)


@dataclass
class InputMeta:
    """The direct-encoded input: integers of ``bits`` width, worth ``scale`` each."""

    bits: int = 8
    scale: float = 1.0 / 255  #: real (ANN) value of one integer input unit
    kind: str = "input"


@dataclass
class PopulationMeta:
    """One neuron population (or the readout). Values are float before quantization.

    Arrays are scalar, per channel (shape ``(C,)``) or per neuron (the population shape).
    ``exponent`` fixes the membrane unit: one integer unit is worth ``2**exponent`` in ANN
    units once the weights are quantized.
    """

    kind: str = "if"  #: "if" or "readout"
    theta: np.ndarray = field(default_factory=lambda: np.array(1.0))
    bias: np.ndarray = field(default_factory=lambda: np.array(0.0))
    v_init: np.ndarray = field(default_factory=lambda: np.array(0.0))
    theta_neg: np.ndarray = field(default_factory=lambda: np.array(0.0))
    max_burst: int = 1
    dual: bool = False
    exponent: int | None = None
    #: the synaptic input is right-shifted (rounding) by this many bits before it is
    #: integrated, so a threshold far above any single weight still fits the threshold width
    #: (Loihi's weight exponent plays this role); the weights' own unit is 2**(exponent-shift)
    input_shift: int = 0
    bias_table: np.ndarray | None = None
    #: leak per step in integer 1/4096ths of the membrane (neuron.DECAY_ONE); 0 for converted
    #: networks, set by ``neurodeploy import`` from NIR's tau and dt
    decay: np.ndarray = field(default_factory=lambda: np.array(0))
    hard_reset: bool = False  #: reset to 0 after a spike instead of by subtraction
    source: str = ""  #: the ANN node this population replaces
    #: check_overflow: the largest |v| the worst-case bounds reach within the compiled window
    #: (0: not checked), and the longest window in which no membrane can saturate
    membrane_bound: int = 0
    safe_timesteps: int = 0
    cores: int = 0  #: check_capacity: cores allocated to this population (0: not allocated)

    @property
    def fires(self) -> bool:
        return self.kind == "if"


@dataclass
class GraphMeta:
    """How an artifact was made and what it needs to run."""

    schema: int = SCHEMA_VERSION
    version: str = ""
    target: str = ""
    method: str = ""
    timesteps: int = 4
    hop_delay: int = 0
    membrane_bits: int = 24
    quantized: bool = False
    safe_timesteps: int = 0  #: largest T for which no membrane can saturate (0: unchecked)
    cores_used: int = 0  #: check_capacity (0: not checked, or no per-core limit modelled)
    #: check_capacity: "cores", "neurons", "synapses" used / available (modelled limits only)
    utilisation: dict[str, float] = field(default_factory=dict)
    #: check_capacity: the limits the network exceeds (kept when the check does not refuse)
    capacity_violations: list[str] = field(default_factory=list)
    pipeline: list[str] = field(default_factory=list)
    pass_seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


NodeMeta = InputMeta | PopulationMeta


def get_node_meta(node: nir.NIRNode, cls: type, name: str = "") -> Any:
    raw = node.metadata.get(KEY)
    if raw is None:
        raise MetadataError("node has no neurodeploy metadata", node=name or None)
    return _from_dict(cls, raw, name)


def with_node_meta(node: nir.NIRNode, meta: Any) -> nir.NIRNode:
    """A copy of ``node`` carrying ``meta`` (NIR nodes are mutable: never edit in place)."""
    metadata = dict(node.metadata)
    metadata[KEY] = _to_dict(meta)
    return dataclasses.replace(node, metadata=metadata)


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


def population_meta(graph: nir.NIRGraph, name: str) -> PopulationMeta:
    return get_node_meta(graph.nodes[name], PopulationMeta, name)


def longest_window(graph: nir.NIRGraph) -> int | None:
    """The longest window the graph can run: its shortest per-step bias table (FTBC has one
    row per compiled step); None when no population has a table."""
    rows = [len(meta.bias_table) for node in graph.nodes.values()
            if isinstance(meta := _population_or_none(node), PopulationMeta)
            and meta.bias_table is not None]
    return min(rows) if rows else None


def _population_or_none(node: nir.NIRNode) -> PopulationMeta | None:
    if not isinstance(node, (nir.IF, nir.I)) or KEY not in node.metadata:
        return None
    return get_node_meta(node, PopulationMeta)


def param_for_shape(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a scalar / per-channel / per-neuron parameter to broadcast over ``shape``."""
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.shape == tuple(shape):
        return arr
    if arr.ndim == 1 and arr.shape[0] == shape[0]:
        return arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    raise MetadataError(f"parameter of shape {arr.shape} does not fit population {shape}")


def _to_dict(meta: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(meta):
        value = getattr(meta, f.name)
        if value is None:
            continue  # HDF5 has no None: absence means None
        if isinstance(value, list):
            value = np.array([str(v).encode() for v in value], dtype="S")
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()  # HDF5 cannot compress a 0-d dataset, which nir.write asks for
        out[f.name] = value
    return out


def _from_dict(cls: type, raw: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise MetadataError(f"unknown metadata keys {sorted(unknown)}", node=where)
    values = {}
    for name, value in raw.items():
        try:
            values[name] = _normalise(hints[name], value)
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"metadata key '{name}' is malformed ({exc})", node=where) \
                from None
    return cls(**values)


def _normalise(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, type(int | None)) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _normalise(inner[0], value)
    if hint is str:
        return value.decode() if isinstance(value, bytes) else str(value)
    if hint is bool:
        return bool(value)
    if hint is int:
        return int(value)
    if hint is float:
        return float(value)
    if hint is np.ndarray:
        return np.asarray(value)
    if origin is list:
        return [_normalise(args[0], v) for v in np.asarray(value).tolist()]
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

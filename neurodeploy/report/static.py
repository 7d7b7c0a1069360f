"""What a compiled graph says without running it: per-population facts and the capacity.

Sizes and synapses come from the graph (``neurodeploy.capacity``); integer parameters, the
static membrane bound and the cores from the metadata the passes recorded. `compile` prints
these facts; the full report adds what a run on data measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.capacity import fan_in, synapse_layers
from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.targets import Target


@dataclass(frozen=True)
class Range:
    min: float
    max: float

    @classmethod
    def of(cls, values) -> Range | None:
        arr = np.asarray(values, np.float64)
        if arr.size == 0:
            return None
        low, high = arr.min(), arr.max()
        if float(low).is_integer() and float(high).is_integer():
            return cls(int(low), int(high))
        return cls(float(low), float(high))

    def __str__(self) -> str:
        return format_range(self.min, self.max)


def format_range(low: float, high: float) -> str:
    """"3" or "48..258"; fractions to 3 significant digits."""

    def one(x: float) -> str:
        return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"

    return one(low) if low == high else f"{one(low)}..{one(high)}"


@dataclass(frozen=True)
class LayerFacts:
    population: str
    kind: str  #: "if" (fires) or "readout"
    source: str  #: the ANN node it replaces
    shape: tuple[int, ...]
    neurons: int
    synapse_layers: tuple[str, ...]  #: weighted layers and sum pools feeding it
    synapses: int  #: stored synapses (sum of fan-in, see neurodeploy.capacity)
    fan_in_max: int
    fan_in_mean: float
    weight_mantissa: Range | None  #: integer weights of the weighted layers feeding it
    weight_exponent: int | None  #: one weight unit is 2**weight_exponent in ANN units
    exponent: int | None  #: one membrane unit is 2**exponent in ANN units
    input_shift: int
    theta: Range
    spike_value: Range | None  #: ANN value of one spike, theta * 2**exponent (None: readout)
    v_init: Range
    max_burst: int
    dual: bool
    #: integers of the per-step bias table (FTBC): steps x distinct values per step (per
    #: channel or per neuron), the extra memory a chip holds for it (0: no table)
    bias_table_entries: int
    membrane_bound: int  #: largest |v| the static worst case reaches within T (0: unchecked)
    membrane_limit: int  #: largest |v| the membrane width holds
    safe_timesteps: int  #: longest window without possible saturation (0: unchecked)
    cores: int  #: allocated by check_capacity (0: not allocated)


def layer_facts(graph: nir.NIRGraph) -> list[LayerFacts]:
    """One row per population (the readout last), in topological order."""
    gmeta = get_graph_meta(graph)
    chains = synapse_layers(graph)
    rows = []
    for name, counts in fan_in(graph).items():
        meta = population_meta(graph, name)
        shape = tuple(int(d) for d in counts.shape)
        weights = [np.asarray(graph.nodes[s].weight) for s in chains[name]
                   if getattr(graph.nodes[s], "weight", None) is not None]
        integer = bool(weights) and all(np.issubdtype(w.dtype, np.integer) for w in weights)
        exponent = meta.exponent
        spike = None
        if meta.fires and exponent is not None:
            spike = Range.of(param_for_shape(np.asarray(meta.theta, np.float64), shape)
                             * 2.0**exponent)
        rows.append(LayerFacts(
            population=name, kind=meta.kind, source=meta.source, shape=shape,
            neurons=int(counts.size), synapse_layers=tuple(chains[name]),
            synapses=int(counts.sum()), fan_in_max=int(counts.max(initial=0)),
            fan_in_mean=float(counts.mean()) if counts.size else 0.0,
            weight_mantissa=Range.of(np.concatenate([w.ravel() for w in weights]))
            if integer else None,
            weight_exponent=None if exponent is None else exponent - meta.input_shift,
            exponent=exponent, input_shift=meta.input_shift, theta=Range.of(meta.theta),
            spike_value=spike, v_init=Range.of(meta.v_init), max_burst=meta.max_burst,
            dual=meta.dual, bias_table_entries=bias_table_entries(meta.bias_table),
            membrane_bound=gmeta.membrane_bounds.get(name, 0),
            membrane_limit=IntSpec(meta.membrane_bits).max,
            safe_timesteps=gmeta.safe_windows.get(name, 0), cores=gmeta.cores.get(name, 0)))
    return rows


def bias_table_entries(table: np.ndarray | None) -> int:
    """Stored integers of a per-step bias table: rows times the values of one row."""
    return 0 if table is None else int(np.asarray(table).size)


LIMIT_KEYS = ("cores", "neurons_per_core", "synapses_per_core", "fan_in_per_neuron")


def capacity_facts(graph: nir.NIRGraph, target: Target) -> dict:
    """What check_capacity recorded, next to the target's limits (0: not modelled). Cores fill
    the chips in order, so the chips in use follow from the cores."""
    gmeta = get_graph_meta(graph)
    per_chip = target.limits.cores
    return {"target": target.name, "checked": "check_capacity" in gmeta.pipeline,
            "limits": {key: getattr(target.limits, key) for key in LIMIT_KEYS},
            "chips": target.system.chips,
            "memory_bits_per_core": target.memory.bits_per_core if target.memory else 0,
            "cores_used": gmeta.cores_used,
            "chips_used": -(-gmeta.cores_used // per_chip) if per_chip else 0,
            "utilisation": dict(gmeta.utilisation),
            "fits": not gmeta.capacity_violations,
            "violations": list(gmeta.capacity_violations)}


def capacity_line(capacity: dict) -> str:
    """One line: cores (and chips) used of the system's, how full they are, what does not
    fit, and (in a report) the spikes crossing chips."""
    limits, used = capacity["limits"], capacity["utilisation"]
    where = f"capacity on {capacity['target']}"
    if not capacity["checked"]:
        return f"{where}: not checked"
    if not capacity["cores_used"]:
        return f"{where}: not modelled (the target sets no per-core limit)"
    total = limits["cores"] * capacity["chips"]
    parts = [f"{capacity['cores_used']} cores" + (
        f" of {total} ({100 * used['cores']:.0f}%)" if "cores" in used else "")]
    if capacity["chips"] > 1:
        parts.append(f"{capacity['chips_used']} of {capacity['chips']} chips")
    parts += [f"{what} {100 * used[key]:.0f}% full" for key, what in
              (("neurons", "neuron slots"), ("synapses", "synaptic memory"),
               ("memory", "core memory")) if key in used]
    if "cross_chip_spikes" in capacity:
        parts.append(f"{capacity['cross_chip_spikes']:.4g} spikes cross chips per inference")
    text = f"{where}: " + ", ".join(parts)
    if capacity["violations"]:
        text += "; DOES NOT FIT: " + "; ".join(capacity["violations"])
    return text

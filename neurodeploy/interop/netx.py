"""A compiled network as a lava-dl netx HDF5 file (``--flavor netx``).

netx (``lava.lib.dl.netx.hdf5.Network``, lava-dl 0.6) builds Dense synapses and Loihi's CUBA
LIF neurons from ``layer/<i>/`` groups (lava-notes §6). The integer network maps onto them
where the neuron semantics coincide:

    Linear (int8 mantissas)  -> ``dense`` weight (netx re-encodes them exactly, as 2w >> 1)
    population theta, bias   -> ``vThMant = theta - 1`` (LIF spikes on ``v > vth``; with
                                ``a_in``, bias and vth all scaled by 2**6, ``v > (theta-1)<<6``
                                is ``v >= theta``), ``bias`` (netx uses ``bias_exp = 6``)
    decay                    -> ``vDecay``; ``iDecay = 4096`` makes the current the input
                                of this step only (du = 4095: no synaptic memory)
    readout                  -> a dense layer whose threshold is never reached

Only dense chains with one threshold and one leak per population, binary spikes and no
input shift are expressible; anything else is refused naming the node. LIF resets to 0 and
starts every sample at 0 (with ``reset_interval=T, reset_offset=1``, see netx_run), so a
network that resets by subtraction or starts from ``v_init`` runs differently: those
differences are returned as warnings. LIF's membrane and current hold 24 bits at 2**6 times
the integer network's unit, so they saturate (v) or wrap (u) beyond 2**17 units: where the
static worst-case bounds exceed that, a warning says so (the bounds are loose; the run
decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np

from neurodeploy.errors import MetadataError, UnsupportedLayer
from neurodeploy.fileio import atomic_write
from neurodeploy.graph import input_name, output_name
from neurodeploy.meta import PopulationMeta, get_graph_meta, population_meta
from neurodeploy.neuron import DECAY_ONE

STATE_SHIFT = 6  #: LIF scales a_in, bias and vth by 2**6 (lava-notes §1)
LIF_LIMIT = (1 << 23) >> STATE_SHIFT  #: |v| and |u| below this (integer units) never saturate
VTH_MAX = (1 << 17) - 1  #: vThMant is 17 bits


@dataclass(frozen=True)
class NetxLayer:
    """One netx dense block: the synapse and the population it feeds."""

    synapse: str
    population: str
    weight: np.ndarray  #: (out, in) integers
    meta: PopulationMeta


def dense_chain(graph: nir.NIRGraph) -> list[NetxLayer]:
    """Input [-> Flatten] -> (Linear -> population)* -> readout -> Output, or a refusal."""
    succs: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        succs.setdefault(src, []).append(dst)
    layers: list[NetxLayer] = []
    name = input_name(graph)
    while name != output_name(graph):
        following = succs.get(name, [])
        if len(following) != 1:
            raise UnsupportedLayer("netx export needs a chain (each node feeds one node)",
                                   node=name)
        name = following[0]
        node = graph.nodes[name]
        if isinstance(node, nir.Flatten) and not layers:
            continue  # the input is fed flattened
        if isinstance(node, nir.Output):
            break
        if not isinstance(node, nir.Linear):
            raise UnsupportedLayer(f"netx export supports dense chains only (Linear and "
                                   f"neurons), not {type(node).__name__}", node=name)
        (population,) = succs[name]
        layers.append(NetxLayer(name, population, np.rint(node.weight).astype(np.int64),
                                population_meta(graph, population)))
        name = population
    return layers


def to_netx(graph: nir.NIRGraph, path: str | Path) -> list[str]:
    """Write ``path`` atomically; returns what netx computes differently (warnings)."""
    if not get_graph_meta(graph).quantized:
        raise MetadataError("graph is not quantized; compile it fully first")
    layers = dense_chain(graph)
    for layer in layers:
        _check(layer)
    n_in = layers[0].weight.shape[1]
    atomic_write(path, lambda tmp: _write(tmp, n_in, layers))
    return _differences(graph, layers)


def _check(layer: NetxLayer) -> None:
    meta, name = layer.meta, layer.population
    problems = {"negative spikes (dual threshold)": meta.dual,
                "bursts (graded spikes)": meta.max_burst > 1,
                "a per-step bias table": meta.bias_table is not None,
                "an input shift": meta.input_shift > 0,
                "per-channel thresholds": np.ndim(meta.theta) > 0 and meta.fires,
                "per-neuron leaks": np.ndim(meta.decay) > 0,
                "thresholds above vThMant's 17 bits": int(np.max(meta.theta)) - 1 > VTH_MAX}
    for what, present in problems.items():
        if present:
            raise UnsupportedLayer(f"netx LIF neurons cannot express {what}", node=name,
                                   hint="Compile with --granularity layer and without "
                                        "--dual-threshold/--max-burst" if "thresh" in what
                                   else None)


def _write(path: str, n_in: int, layers: list[NetxLayer]) -> None:
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        first = root.create_group("0")
        first.create_dataset("type", data=np.bytes_("input"))
        first.create_dataset("shape", data=np.array([n_in]))
        for i, layer in enumerate(layers, start=1):
            group = root.create_group(str(i))
            group.create_dataset("type", data=np.bytes_("dense"))
            group.create_dataset("shape", data=np.array([layer.weight.shape[0]]))
            group.create_dataset("weight", data=layer.weight)
            bias = np.broadcast_to(np.asarray(layer.meta.bias, np.int64),
                                   layer.weight.shape[:1])
            group.create_dataset("bias", data=np.ascontiguousarray(bias))
            neuron = group.create_group("neuron")
            neuron.create_dataset("type", data=np.bytes_("CUBA"))
            neuron.create_dataset("iDecay", data=DECAY_ONE)
            neuron.create_dataset("vDecay", data=int(layer.meta.decay))
            theta = int(np.max(layer.meta.theta)) if layer.meta.fires else VTH_MAX + 1
            neuron.create_dataset("vThMant", data=theta - 1)
            neuron.create_dataset("refDelay", data=1)


def _differences(graph: nir.NIRGraph, layers: list[NetxLayer]) -> list[str]:
    largest_sum = get_graph_meta(graph).notes.get("check_overflow", {}).get(
        "max_abs_synaptic_sum", 0)
    found: dict[str, list[str]] = {}
    for layer in layers:
        meta = layer.meta
        for what, present in {
            f"membrane may saturate (worst-case |v| above netx LIF's {LIF_LIMIT})":
                meta.membrane_bound >= LIF_LIMIT,
            "reset by subtraction (netx LIF resets to 0)": meta.fires and not meta.hard_reset,
            "v_init (netx LIF starts every sample at 0)": bool(np.any(meta.v_init)),
            "leak (netx LIF decays on a 64x finer grid, rounding differently)":
                bool(np.any(meta.decay)),
        }.items():
            if present:
                found.setdefault(what, []).append(layer.population)
    notes = [f"{what}: {', '.join(names)}" for what, names in found.items()]
    if largest_sum >= LIF_LIMIT:
        notes.append(f"synaptic current may wrap (worst-case sum {largest_sum} above netx LIF's "
                     f"{LIF_LIMIT})")
    return notes

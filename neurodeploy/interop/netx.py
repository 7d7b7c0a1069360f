"""A compiled network as a lava-dl netx HDF5 file (``--flavor netx``).

netx (``lava.lib.dl.netx.hdf5.Network``, lava-dl 0.6) builds Dense synapses and Loihi's CUBA
LIF neurons from ``layer/<i>/`` groups (lava-notes §6). The integer network maps onto them
where the neuron semantics coincide:

    Linear (int8 mantissas)  -> ``dense`` weight (netx re-encodes them exactly, as 2w >> 1)
    Conv2d                   -> ``conv`` (netx flips the kernel for Lava's Conv, as the Lava
                                backend does; Conv keeps integer weights as they are)
    Flatten after a conv     -> ``flatten`` (netx flattens (X, Y, C) as (C, H, W))
    population theta, bias   -> ``vThMant = theta - 1`` (LIF spikes on ``v > vth``; with
                                ``a_in``, bias and vth all scaled by 2**6, ``v > (theta-1)<<6``
                                is ``v >= theta``), ``bias`` (netx uses ``bias_exp = 6``)
    decay                    -> ``vDecay``; ``iDecay = 4096`` makes the current the input
                                of this step only (du = 4095: no synaptic memory)
    readout                  -> a dense layer whose threshold is never reached

Only chains of dense and conv blocks (netx 0.6 has no pooling) with one threshold and one
leak per population, binary spikes and no input shift are expressible; anything else is
refused naming the node. LIF resets to 0 and starts every sample at 0 (with
``reset_interval=T, reset_offset=1``, see netx_run), so a network that resets by subtraction
or starts from ``v_init`` runs differently: those differences are returned as warnings.
LIF's membrane and current hold 24 bits at 2**6 times the integer network's unit, so they
saturate (v) or wrap (u) beyond 2**17 units: where the static worst-case bounds exceed
that, a warning says so (the bounds are loose; the run decides).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np

from neurodeploy.core.graph import input_name, successors
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.core.population import Population, Reset
from neurodeploy.errors import MetadataError, UnsupportedLayer
from neurodeploy.fileio import atomic_write, via_memory

STATE_SHIFT = 6  #: LIF scales a_in, bias and vth by 2**6 (lava-notes §1)
LIF_LIMIT = (1 << 23) >> STATE_SHIFT  #: |v| and |u| below this (integer units) never saturate
VTH_MAX = (1 << 17) - 1  #: vThMant is 17 bits


@dataclass(frozen=True)
class NetxLayer:
    """One netx block: a synapse layer (Linear or Conv2d) and the population it feeds."""

    synapse: str
    node: nir.NIRNode
    population: str
    shape: tuple[int, ...]  #: the population's (N,) or (C, H, W)
    meta: Population
    flatten: bool = False  #: a netx flatten layer comes first (after a conv block)

    @property
    def weight(self) -> np.ndarray:
        return np.rint(self.node.weight).astype(np.int64)


def netx_chain(graph: nir.NIRGraph) -> tuple[tuple[int, ...], list[NetxLayer]]:
    """Input -> ((Linear | Conv2d) -> population)*, with Flatten between, ending in the
    readout: the input shape netx is fed (flattened before a first dense block) and the
    blocks; anything else is refused naming the node."""
    succs = successors(graph)
    name = input_name(graph)
    shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    layers: list[NetxLayer] = []
    flatten = False
    while True:
        following = succs.get(name, [])
        if len(following) != 1:
            raise UnsupportedLayer("netx export needs a chain (each node feeds one node)",
                                   node=name)
        name = following[0]
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            break
        if isinstance(node, nir.Flatten):
            flatten = bool(layers)  # before the first block: the input is fed flattened
            continue
        if not isinstance(node, (nir.Linear, nir.Conv2d)):
            raise UnsupportedLayer(f"netx export supports Linear and Conv2d blocks (lava-dl "
                                   f"0.6 netx has no pooling), not {type(node).__name__}",
                                   node=name)
        (population,) = succs[name]
        out = tuple(int(d) for d in graph.nodes[population].input_type["input"])
        layers.append(NetxLayer(name, node, population, out,
                                population_meta(graph, population), flatten))
        flatten, name = False, population
    if isinstance(layers[0].node, nir.Linear):
        shape = (int(np.prod(shape)),)
    return shape, layers


def to_netx(graph: nir.NIRGraph, path: str | Path) -> list[str]:
    """Write ``path`` atomically; returns what netx computes differently (warnings)."""
    if not get_graph_meta(graph).quantized:
        raise MetadataError("graph is not quantized; compile it fully first")
    shape, layers = netx_chain(graph)
    for layer in layers:
        _check(layer)
    atomic_write(path, via_memory(lambda buffer: _write(buffer, shape, layers)))
    return _differences(graph, layers)


def _check(layer: NetxLayer) -> None:
    meta, name = layer.meta, layer.population
    problems = {"negative spikes (dual threshold)": meta.dual,
                "bursts (graded spikes)": meta.max_burst > 1,
                "a per-step bias table": meta.bias_table is not None,
                "an input shift": meta.input_shift > 0,
                "per-channel thresholds": np.ndim(meta.theta) > 0 and meta.fires,
                "per-neuron leaks": np.ndim(meta.decay) > 0,
                "a synaptic filter (its bias would leave the filter)":
                    bool(np.any(meta.current_decay < DECAY_ONE)),
                "per-neuron biases on a convolution":
                    isinstance(layer.node, nir.Conv2d) and np.ndim(meta.bias) > 1,
                "thresholds above vThMant's 17 bits": int(np.max(meta.theta)) - 1 > VTH_MAX}
    for what, present in problems.items():
        if present:
            hint = ("Compile with per-layer thresholds (--granularity layer, "
                    "ConvertOptions(per_channel=False))") if what.startswith("per-channel") \
                else None
            raise UnsupportedLayer(f"netx LIF neurons cannot express {what}", node=name,
                                   hint=hint)


def _write(path: str | io.BytesIO, shape: tuple[int, ...], layers: list[NetxLayer]) -> None:
    """netx stores shapes as (C, H, W) and reverses them to Lava's (X, Y, C) itself."""
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        groups = iter(root.create_group(str(i)) for i in range(2 * len(layers) + 1))
        first = next(groups)
        first.create_dataset("type", data=np.bytes_("input"))
        first.create_dataset("shape", data=np.array(shape))
        for layer in layers:
            if layer.flatten:
                next(groups).create_dataset("type", data=np.bytes_("flatten"))
            group = next(groups)
            conv = isinstance(layer.node, nir.Conv2d)
            group.create_dataset("type", data=np.bytes_("conv" if conv else "dense"))
            group.create_dataset("shape", data=np.array(layer.shape))
            group.create_dataset("weight", data=layer.weight)
            if conv:
                for key in ("stride", "padding", "dilation"):
                    value = np.broadcast_to(np.asarray(getattr(layer.node, key), np.int64),
                                            (2,))
                    group.create_dataset(key, data=np.ascontiguousarray(value))
                group.create_dataset("groups", data=int(layer.node.groups))
            bias = np.broadcast_to(np.asarray(layer.meta.bias, np.int64).reshape(-1),
                                   layer.shape[:1])
            group.create_dataset("bias", data=np.ascontiguousarray(bias))
            neuron = group.create_group("neuron")
            neuron.create_dataset("type", data=np.bytes_("CUBA"))
            neuron.create_dataset("iDecay", data=DECAY_ONE)
            neuron.create_dataset("vDecay", data=int(layer.meta.decay))
            theta = int(np.max(layer.meta.theta)) if layer.meta.fires else VTH_MAX + 1
            neuron.create_dataset("vThMant", data=theta - 1)
            neuron.create_dataset("refDelay", data=1)


def _differences(graph: nir.NIRGraph, layers: list[NetxLayer]) -> list[str]:
    gmeta = get_graph_meta(graph)
    largest_sum = gmeta.notes.get("check_overflow", {}).get("max_abs_synaptic_sum", 0)
    found: dict[str, list[str]] = {}
    for layer in layers:
        meta = layer.meta
        for what, present in {
            f"membrane may saturate (worst-case |v| above netx LIF's {LIF_LIMIT})":
                gmeta.membrane_bounds.get(layer.population, 0) >= LIF_LIMIT,
            "reset by subtraction (netx LIF resets to 0)":
                meta.fires and meta.reset is Reset.SUBTRACT,
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

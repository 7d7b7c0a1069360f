"""The deployed integer network on fixed calibration images, simulated one population at a
time and kept, for the stages that calibrate layer by layer.

A layer-by-layer stage changes one population at a time, and the spikes entering it do not
change: re-running the whole network for every correction (``probe.simulate``) makes the
work grow with the square of the depth. Here every population is rounded on its own
(``passes.quantize_population``) and simulated from its sources' kept spikes; it is rounded
and simulated again only when something it depends on changed: its record or its synapses,
its sources' records (their thresholds are folded into its weights) or its sources' spikes.
Changes are found by content, so a stage may rebuild a graph from scratch (AdaFire's search
does) and still reuses every population that came out the same.

The arithmetic is the reference simulator's (``core.synapse`` on exact integers, then
``core.neuron.run``), so every spike equals ``probe.simulate``'s. Images run in chunks within
the context's memory budget, which bounds the transient memory; per population one spike
record is kept (``SpikeRecord``: eight single spikes to a byte, bursts as int8), until a
layer-by-layer stage releases the records it has moved past (``release_behind``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from neurodeploy.backends.memory import check_free_memory, chunk_size, chunks
from neurodeploy.core import neuron
from neurodeploy.core.encoding import quantize_inputs, readout_logits, spike_values
from neurodeploy.core.graph import input_name, predecessors, readout_name, topological_order
from neurodeploy.core.meta import SYNAPSE_TYPES, copy_graph, get_node_meta
from neurodeploy.core.population import (
    NEURON_TYPES,
    Population,
    population_shape,
)
from neurodeploy.core.synapse import FLOAT32_EXACT, count_nonzero, dense, fan_out, synapse
from neurodeploy.methods.base import MethodContext
from neurodeploy.passes import PassContext, quantize_population
from neurodeploy.passes.quantize_input import quantize_input
from neurodeploy.passes.sources import synapse_source


@dataclass(frozen=True)
class _Path:
    """One synaptic input of a population: its source (a population or the input), the
    pools/flattens in between and the synapse layer, in order."""

    source: str
    nodes: tuple[str, ...]

    @property
    def synapse(self) -> str:
        return self.nodes[-1]


@dataclass(frozen=True)
class _Rounded:
    """A population and its synapses rounded for the graph content ``key`` names."""

    key: str
    nodes: dict[str, nir.NIRNode]
    dtype: torch.dtype  #: exact for its synaptic input (``_exact_dtype``)
    synapses: str  #: digest of the rounded nodes on its paths, and the dtype


@dataclass
class _Input:
    """A population's synaptic input on every image, for the synapses and source runs ``key``
    names, and how many times it was computed; kept per chunk (``_input_chunks``)."""

    key: str
    computed: int = 1
    chunks: list[torch.Tensor] | None = None


@dataclass
class _Run:
    """One population simulated on every image, for the graph content ``key`` names."""

    key: str
    spikes: SpikeRecord | None  #: None for the readout
    logits: np.ndarray | None  #: (images, classes) for the readout
    #: path's nodes -> per synapse layer on it (pools included), the synaptic operations its
    #: input caused over the window and all images; counted when first asked for (a search
    #: asks for one layer's)
    synops: dict[tuple[str, ...], dict[str, int]] = field(default_factory=dict)
    released: bool = False  #: spikes freed (``DeployedNetwork.release_behind``), key kept


class SpikeRecord:
    """A population's (T, images, *shape) integer spikes, kept in the memory order of the
    simulator's output, so the next layer's convolution reads them without reordering (five
    times faster): as int8 while a step's spikes fit (bursts up to 127), else int32; and
    eight to a byte along the innermost axis where every spike is 0 or 1 (one spike a step,
    none negative). Records are what calibration holds per image: on a ResNet-18 shape with
    1,024 images a first-stage record packed is 34 MB, not 268."""

    def __init__(self, like: np.ndarray, images: int, params: neuron.NeuronParams):
        #: the axes of a chunk (T, chunk, *shape) as stored: the images outermost (rows are
        #: read by image), the neuron axes in the simulator's memory order
        self.order = [0, 1, *(1 + a for a in neuron.memory_order(like) if a != 0)]
        self.packed = params.max_burst == 1 and not params.dual
        stored = [like.shape[0], images, *(like.shape[a] for a in self.order[2:])]
        self.innermost = stored[-1]
        if self.packed:
            stored[-1] = -(-stored[-1] // 8)
        dtype = np.uint8 if self.packed else np.int8 if params.max_burst <= 127 else np.int32
        self.stored = np.empty(stored, dtype)

    def write(self, rows: slice, spikes: np.ndarray) -> None:
        """Store the chunk ``spikes`` (T, rows, *shape) of the images ``rows``."""
        ordered = spikes.transpose(self.order)
        self.stored[:, rows] = np.packbits(ordered, axis=-1) if self.packed else ordered

    def read(self, rows: slice | np.ndarray) -> np.ndarray:
        """(T, len(rows), *shape) spikes of the images ``rows``, laid out in memory as the
        int8 record's rows would be (numpy puts the axis of an index array outermost): torch
        picks its convolution kernel, and with it the float rounding, by the layout."""
        ordered = self.stored[:, rows]
        if self.packed:
            axes = np.argsort([-stride for stride in ordered.strides], kind="stable")
            unpacked = np.unpackbits(ordered.transpose(axes), axis=-1, count=self.innermost)
            ordered = unpacked.view(np.int8).transpose(np.argsort(axes))
        return ordered.transpose(np.argsort(self.order))


class DeployedNetwork:
    """``images`` through the deployed version of any float graph of one network structure
    (the graphs a stage makes while it calibrates), population by population."""

    def __init__(self, graph: nir.NIRGraph, images: np.ndarray, ctx: MethodContext):
        self.ctx, self.images = ctx, images
        self.steps = ctx.options.timesteps
        self._input = quantize_input(graph, PassContext(target=ctx.target))
        self._input_name = input_name(graph)
        self.inputs = quantize_inputs(self._input, images)
        preds = predecessors(graph)
        order = topological_order(graph)
        self.populations = [n for n in order if isinstance(graph.nodes[n], NEURON_TYPES)]
        self.readout = readout_name(graph)
        self.paths = {p: [_path(graph, s, preds) for s in preds[p]] for p in self.populations}
        self.chunk = chunk_size(graph, self.steps, ctx.memory_budget)
        kept = sum(int(np.prod(population_shape(graph.nodes[p]))) for p in self.populations
                   if p != self.readout)  # a byte per neuron, step and image
        check_free_memory(self.steps * kept, len(images), self.steps,
                          hint="Calibrate for a shorter window, or on fewer images")
        self._runs: dict[str, _Run] = {}
        self._rounded: dict[str, _Rounded] = {}
        self._inputs: dict[str, _Input] = {}
        self._digests: dict[int, tuple[nir.NIRNode, str]] = {}

    # what the stages ask

    def spikes(self, graph: nir.NIRGraph, population: str) -> np.ndarray:
        """(T, images, *shape) integer spikes of ``population`` in ``graph``'s deployed form."""
        return self._run(graph, population).spikes.read(slice(None))

    def spike_values(self, graph: nir.NIRGraph, population: str, index: np.ndarray,
                     dtype: type = np.float64) -> np.ndarray:
        """(T, len(index), *shape) spikes of the images ``index`` times the population's
        float theta (ANN units), ``core.encoding.spike_values``."""
        record = self._run(graph, population).spikes
        return spike_values(graph, population, record.read(index), dtype)

    def mean_rates(self, graph: nir.NIRGraph, population: str) -> np.ndarray:
        """(*shape) mean over the images of the value sent per step (ANN units). The spikes
        are counted in integers, exactly, and turned into values once: a float64 copy of
        every record summed step by step and image by image took a tenth of calibrate on the
        Fashion CNN."""
        record = self._run(graph, population).spikes
        counts = sum(record.read(chunk).sum(axis=(0, 1), dtype=np.int64)
                     for chunk in self._chunks())
        values = spike_values(graph, population, counts[np.newaxis, np.newaxis])[0, 0]
        return values / (self.steps * len(self.images))

    def logits(self, graph: nir.NIRGraph) -> np.ndarray:
        """(images, classes) readout after the whole window, in ANN units."""
        return self._run(graph, self.readout).logits

    def currents(self, graph: nir.NIRGraph, population: str) -> tuple[np.ndarray, Population]:
        """(T, images, *shape) integer synaptic input of ``population`` in ``graph``'s
        deployed form (what the reference records as its currents), and the population's
        integer record: its sources are simulated only if not kept, the population not."""
        self._forget_dropped_nodes(graph)
        done: dict[str, _Run] = {}
        for source in self._sources(population):
            self._current(graph, source, done)
        rounded = self._rounded_nodes(graph, population)
        out = np.empty((self.steps, len(self.images),
                        *population_shape(graph.nodes[population])), np.int64)
        for chunk, currents in self._input_chunks(graph, population, rounded):
            out[:, chunk] = currents.numpy()
        return out, get_node_meta(rounded.nodes[population], Population)

    def synops(self, graph: nir.NIRGraph, population: str) -> list[int]:
        """Per synapse layer ``population``'s spikes reach (sum pools included, as the
        simulator counts them): the synaptic operations they cause there, over the window and
        the images (a graded spike is one event)."""
        ops = []
        for consumer in self.populations:
            for path in self.paths[consumer]:
                if path.source == population:
                    counted = self._run(graph, consumer).synops
                    if path.nodes not in counted:
                        counted[path.nodes] = self._count_synops(graph, consumer, path)
                    ops += counted[path.nodes].values()
        return ops

    def release_behind(self, corrected: list[str]) -> None:
        """Frees the spike records a layer-by-layer stage will not read again once it has
        corrected ``corrected``, in its order: the last of them runs again for its consumers
        (with its final correction), so its sources stay, as do the sources of every
        population still to come. Without this, every population's record stayed to the end
        of the stage: memory grew with the whole network, not with the layers being worked on.
        A released record asked for again is simulated again."""
        last = corrected[-1]
        to_come = [p for p in self.populations if p not in corrected]
        needed = {last, *self._sources(last), *(s for p in to_come for s in self._sources(p))}
        for name in corrected:
            run = self._runs.get(name)
            if name not in needed and run is not None and not run.released:
                self._runs[name] = _Run(run.key, None, run.logits, released=True)

    # keeping the runs

    def _run(self, graph: nir.NIRGraph, population: str) -> _Run:
        """The population's run for ``graph``, simulated (with what it needs) if not kept."""
        self._forget_dropped_nodes(graph)
        return self._current(graph, population, {})

    def _forget_dropped_nodes(self, graph: nir.NIRGraph) -> None:
        live = {id(node) for node in graph.nodes.values()}
        self._digests = {k: v for k, v in self._digests.items() if k in live}

    def _sources(self, population: str) -> list[str]:
        """The populations whose spikes ``population`` receives (not the input)."""
        return [path.source for path in self.paths[population]
                if path.source != self._input_name]

    def _current(self, graph: nir.NIRGraph, population: str, done: dict[str, _Run],
                 keys: dict[str, str] | None = None) -> _Run:
        """The population's run for ``graph`` with its spikes; its sources are made current
        (and simulated) only when it has to be simulated itself."""
        if population in done:
            return done[population]
        keys = {} if keys is None else keys
        key = self._key(graph, population, keys)
        run = self._runs.get(population)
        if run is None or run.key != key or run.released:
            self._runs.pop(population, None)  # free the old record before making the new one
            for source in self._sources(population):
                self._current(graph, source, done, keys)
            run = self._simulate(graph, population, self._rounded_nodes(graph, population), key)
            self._runs[population] = run
        done[population] = run
        return run

    def _key(self, graph: nir.NIRGraph, population: str, keys: dict[str, str]) -> str:
        """Content key of the population's run in ``graph``: its rounded nodes and its
        sources' keys, so a change anywhere upstream changes it; no spikes are needed."""
        if population not in keys:
            keys[population] = _digest(self._rounded_nodes(graph, population).key,
                                       *(self._key(graph, s, keys)
                                         for s in self._sources(population)))
        return keys[population]

    def _rounded_nodes(self, graph: nir.NIRGraph, population: str) -> _Rounded:
        """The population and its synapses rounded: again only when the population, its paths
        or its sources changed."""
        names = [population, *(n for path in self.paths[population]
                               for n in (path.source, *path.nodes))]
        key = _digest(*(self._node_digest(graph.nodes[n]) for n in names))
        kept = self._rounded.get(population)
        if kept is None or kept.key != key:
            local = copy_graph(graph, {self._input_name: self._input.nodes[self._input_name]})
            nodes = quantize_population(local, population, self.ctx.target)
            dtype = self._exact_dtype(local, population, nodes)
            synapses = _digest(dtype, *(part for path in self.paths[population]
                                        for n in path.nodes
                                        for part in _content(vars(nodes.get(n, local.nodes[n])))))
            kept = self._rounded[population] = _Rounded(key, nodes, dtype, synapses)
        return kept

    def _node_digest(self, node: nir.NIRNode) -> str:
        """Content digest of a node, computed once per node object (graphs share the nodes
        a stage did not change)."""
        kept = self._digests.get(id(node))
        if kept is None or kept[0] is not node:
            kept = self._digests[id(node)] = (node, _digest(*_content(vars(node))))
        return kept[1]

    # simulating one population

    def _simulate(self, graph: nir.NIRGraph, population: str, rounded: _Rounded, key: str
                  ) -> _Run:
        shape = population_shape(graph.nodes[population])
        nodes = rounded.nodes
        params = get_node_meta(nodes[population], Population).neuron_params(shape)
        fires = population != self.readout
        spikes = None
        last = np.empty((len(self.images), *shape), np.int64) if not fires else None
        for chunk, currents in self._input_chunks(graph, population, rounded):
            out, membranes = neuron.run(currents.numpy(), params, keep_membranes=not fires)
            if fires:
                if spikes is None:
                    spikes = SpikeRecord(out, len(self.images), params)
                spikes.write(chunk, out)
            else:
                last[chunk] = membranes[-1]
        logits = None if fires else readout_logits(
            copy_graph(graph, {population: nodes[population]}), last, self.steps)
        return _Run(key, spikes, logits)

    def _input_chunks(self, graph, population: str, rounded: _Rounded
                      ) -> Iterator[tuple[slice, torch.Tensor]]:
        """(images, synaptic input) of the population chunk by chunk (``_currents``).

        One population's input is kept, while it takes at most an eighth of the memory
        budget: one computed a second time for the same synapses and source spikes (a search
        runs the population it probes again and again on one input, others between: AdaFire's
        tables, a sixth of AdaFire on the Fashion CNN), and one computed once unless the input
        kept was computed twice (a layer-by-layer stage runs each population again on its
        input once it corrected it: 4 to 14% of calibrate on the ResNet-18 and VGG-11 shapes)."""
        key = _digest(rounded.synapses, *(self._runs[s].key for s in self._sources(population)))
        kept = self._inputs.get(population)
        if kept is not None and kept.key == key and kept.chunks is not None:
            yield from zip(self._chunks(), kept.chunks, strict=True)
            return
        times = kept.computed + 1 if kept is not None and kept.key == key else 1
        size = self.steps * len(self.images) * int(np.prod(
            population_shape(graph.nodes[population]))) * rounded.dtype.itemsize
        held = [i for p, i in self._inputs.items() if p != population and i.chunks is not None]
        keep = size <= self.ctx.memory_budget // 8 and \
            (times > 1 or all(i.computed == 1 for i in held))
        if keep:  # the input it replaces goes before this one is made
            for other in held:
                other.chunks = None
        self._inputs[population] = _Input(key, times)  # not kept before every chunk is made
        computed = []
        for chunk in self._chunks():
            currents = self._currents(graph, population, rounded.nodes, chunk, rounded.dtype)
            if keep:
                computed.append(currents)
            yield chunk, currents
        if keep:
            self._inputs[population] = _Input(key, times, computed)

    def _currents(self, graph, population: str, nodes: dict[str, nir.NIRNode], chunk: slice,
                  dtype: torch.dtype) -> torch.Tensor:
        """(T, chunk, *shape) synaptic input of the population, exact integers in ``dtype``,
        summed over its paths in the simulator's order."""
        total = None
        for path in self.paths[population]:
            x = self._path_input(path, chunk, dtype)
            for name in path.nodes:
                node = nodes.get(name, graph.nodes[name])
                if not isinstance(node, nir.Delay):
                    x = dense(synapse(node, x))
            x = x.unsqueeze(0).expand(self.steps, *x.shape) if path.source == self._input_name \
                else x.reshape(self.steps, -1, *x.shape[1:])
            total = x if total is None else total + x
        return total

    def _path_input(self, path: _Path, chunk: slice, dtype: torch.dtype) -> torch.Tensor:
        """What enters ``path`` for the images ``chunk``: the encoded inputs (batch, ...), the
        same every step, or the source's kept spikes (T * batch, ...)."""
        if path.source == self._input_name:
            return dense(torch.as_tensor(self.inputs[chunk]), dtype)
        return _steps_as_batch(torch.from_numpy(self._runs[path.source].spikes.read(chunk)),
                               dtype)

    def _count_synops(self, graph, consumer: str, path: _Path) -> dict[str, int]:
        """Synaptic operations the spikes entering ``path`` cause at each of its synapse
        layers (sum pools included), over the window and the images, in the kept run."""
        rounded = self._rounded_nodes(graph, consumer)
        nodes, dtype = rounded.nodes, rounded.dtype
        ops: dict[str, int] = {}
        source = None if path.source == self._input_name else self._run(graph, path.source)
        for chunk in self._chunks():
            # a source's kept spikes are counted as they are, (T, chunk, ...): converting
            # them for counting alone took a third of the count
            spikes = source is not None
            x = torch.from_numpy(source.spikes.read(chunk)) if spikes else \
                self._path_input(path, chunk, dtype)
            for name in path.nodes:
                node = nodes.get(name, graph.nodes[name])
                if isinstance(node, SYNAPSE_TYPES):
                    counts = count_nonzero(x, lead=2 if spikes else 1).numpy()
                    ops[name] = ops.get(name, 0) + int((counts * fan_out(node, counts.shape)).sum())
                if name != path.synapse and not isinstance(node, nir.Delay):
                    if spikes:  # the spikes already read, as _path_input converts them
                        x, spikes = _steps_as_batch(x, dtype), False
                    x = dense(synapse(node, x))
        return ops

    def _exact_dtype(self, local: nir.NIRGraph, population: str,
                     nodes: dict[str, nir.NIRNode]) -> torch.dtype:
        """float32 while every partial sum of the population's input stays below 2^24 (the
        static bound ``check_overflow`` records), float64 otherwise (``local``: the graph
        with the rounded input)."""
        bound = 0.0
        for path in self.paths[population]:
            source = synapse_source(local, path.synapse)
            weight = np.abs(np.asarray(nodes[path.synapse].weight, np.float64))
            reach = max(abs(source.low), abs(source.high))
            bound += float(weight.sum(axis=tuple(range(1, weight.ndim))).max()) * reach
        return torch.float32 if bound < FLOAT32_EXACT else torch.float64

    def _chunks(self) -> list[slice]:
        return chunks(len(self.images), self.chunk)


def _steps_as_batch(spikes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A source's (T, batch, ...) spikes as the (T * batch, ...) input of its synapses."""
    return dense(_as_dtype(spikes, dtype).reshape(-1, *spikes.shape[2:]))


def _as_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` converted in one pass that keeps its axes' memory order, dense: between
    like-ordered arrays the copy streams, and numpy casts int8 four times faster than torch
    (the conversions took a sixth of scoring a candidate)."""
    order = sorted(range(x.dim()), key=lambda a: -x.stride(a))
    stored = x.permute(*order).numpy()
    converted = np.asarray(stored, torch.empty(0, dtype=dtype).numpy().dtype, order="C")
    return torch.from_numpy(converted).permute(*np.argsort(order).tolist())


def _path(graph: nir.NIRGraph, synapse_name: str, preds: dict[str, list[str]]) -> _Path:
    nodes = [synapse_name]
    while True:
        (previous,) = preds[nodes[0]]
        if isinstance(graph.nodes[previous], (*NEURON_TYPES, nir.Input)):
            return _Path(previous, tuple(nodes))
        nodes.insert(0, previous)


def _content(value) -> list:
    """A node's attributes (arrays, numbers, nested metadata) as digestible parts."""
    if isinstance(value, dict):
        return [part for k in sorted(value) for part in (k, *_content(value[k]))]
    if isinstance(value, np.ndarray):
        return [str(value.dtype), str(value.shape), np.ascontiguousarray(value).tobytes()]
    if isinstance(value, list | tuple):
        return [part for v in value for part in _content(v)]
    return [repr(value)]


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()

"""Measure a float SNN graph as it will be deployed, for calibration stages.

``simulate`` quantizes the graph for the context's target and runs the exact reference
simulator; spikes come back in ANN units (a spike of population p is worth its float theta),
so they compare directly with the ANN's activations (``ann_activations``). Calibrating
against the integer network also corrects the rounding the deployed network will have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import nir
import numpy as np
import torch

from neurodeploy.backends import Record, Trace
from neurodeploy.backends.memory import (
    DEFAULT_MEMORY_BUDGET,
    chunk_size,
    chunks,
    samples_within,
)
from neurodeploy.backends.reference import ReferenceBackend
from neurodeploy.core.encoding import quantize_inputs, spike_values
from neurodeploy.core.graph import populations, readout_name
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods.base import MethodContext
from neurodeploy.passes import quantize

FLOAT_BYTES = 4  #: an ANN activation (float32)


@dataclass(frozen=True)
class Probe:
    """One reference run of a float graph's deployed (integer) version."""

    float_graph: nir.NIRGraph
    graph: nir.NIRGraph  #: the quantized graph that ran
    trace: Trace  #: integer spikes of every firing population (record SPIKES or ALL)

    def spike_values(self, population: str) -> np.ndarray:
        """(T, batch, *shape) spikes times the population's float theta (ANN units)."""
        return spike_values(self.float_graph, population, self.trace.spikes[population])

    def rates(self, population: str) -> np.ndarray:
        """(batch, *shape) mean value sent per step: the SNN's estimate of the activation."""
        return self.spike_values(population).mean(axis=0)

    @property
    def logits(self) -> np.ndarray:
        """(batch, classes) readout in ANN units after the whole window."""
        return self.trace.logits


def simulate(graph: nir.NIRGraph, images: np.ndarray, ctx: MethodContext,
             record: Record = Record.SPIKES) -> Probe:
    """Quantize ``graph`` for ``ctx.target`` and run it on float ``images`` for its window.

    Saturation and a network too large for the chip are allowed here (this is a measurement;
    compile still checks both).
    """
    quantized = quantize(graph, ctx.target, allow_saturation=True, capacity_check=False)
    steps = get_graph_meta(quantized).timesteps
    backend = ReferenceBackend()
    size = chunk_size(quantized, steps, ctx.memory_budget, record)
    trace = Trace.concatenate([
        backend.run(quantized, quantize_inputs(quantized, images[rows]), steps, record=record)
        for rows in chunks(len(images), size)])
    return Probe(graph, quantized, trace)


def ann_activations(ctx: MethodContext, images: np.ndarray,
                    graph: nir.NIRGraph) -> dict[str, np.ndarray]:
    """Per population of ``graph``: the activation of the context's ANN it replaces."""
    return population_activations(ctx.ann, images, graph, ctx.memory_budget)


def population_activations(ann: AnnGraph, images: np.ndarray, graph: nir.NIRGraph,
                           memory_budget: int = DEFAULT_MEMORY_BUDGET
                           ) -> dict[str, np.ndarray]:
    """Per population of ``graph``: the ANN activation it replaces, (batch, *shape); the
    readout gets the ANN's output (logits). The ANN runs on chunks of images, so only the
    kept activations grow with the number of images."""
    sources = _activation_sources(ann, graph)
    out: dict[str, np.ndarray] = {}
    for first, acts in ann_chunks(ann, images, set(sources), memory_budget):
        for src, value in acts.items():
            if first == 0:
                out[sources[src]] = np.empty((len(images), *value.shape[1:]), np.float32)
            out[sources[src]][first:first + len(value)] = value.numpy()
    return out


class ActivationStream:
    """``ann_activations`` made when a stage asks for them (``pop``), in network order: the
    ANN runs node by node (``AnnGraph.stream``) and holds only what later nodes read, so a
    layer-by-layer stage does not hold every layer's activation from its start. The values
    are ``ann_activations``'s."""

    def __init__(self, ctx: MethodContext, images: np.ndarray, graph: nir.NIRGraph):
        self._sources = _activation_sources(ctx.ann, graph)
        self._sources[ctx.ann.output] = self._sources.pop("output")
        self._stream = ctx.ann.stream(images, ann_chunk(ctx.ann, ctx.memory_budget),
                                      set(self._sources))
        self._made: dict[str, np.ndarray] = {}

    def pop(self, population: str) -> np.ndarray:
        """(images, *shape) ANN activation ``population`` replaces, handed over (not kept)."""
        while population not in self._made:
            node, value = next(self._stream)
            self._made[self._sources[node]] = value
        return self._made.pop(population)


def _activation_sources(ann: AnnGraph, graph: nir.NIRGraph) -> dict[str, str]:
    """ANN node -> the population of ``graph`` that replaces it (the readout: the output)."""
    sources = {population_meta(graph, p).source: p for p in populations(graph)}
    sources["output"] = readout_name(graph)
    return sources


def ann_chunk(ann: AnnGraph, memory_budget: int) -> int:
    """Images per ANN run whose working memory (every node's output) is within
    ``memory_budget``."""
    per_image = sum(int(np.prod(shape)) for shape in ann.shapes().values())
    return samples_within(per_image * FLOAT_BYTES, memory_budget)


def ann_chunks(ann: AnnGraph, images: np.ndarray, keep: set[str], memory_budget: int
               ) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(first image, the ``keep`` activations) of the ANN run on consecutive chunks of
    ``images``, each run's working memory (every node's output) within ``memory_budget``."""
    chunk = ann_chunk(ann, memory_budget)
    for first in range(0, len(images), chunk):
        yield first, ann.run(torch.as_tensor(images[first:first + chunk], dtype=torch.float32),
                             keep=keep)

"""Shared steps of the calibration stages: editing populations, the theta/(2T) rounding
shift, and the layer-by-layer bias and potential correction (algorithms.md §2.3).

Corrections are measured on the deployed integer network (``methods.deployed``), one layer
at a time in network order, so every layer is corrected for the spikes its already-corrected
inputs really send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import nir
import numpy as np

from neurodeploy.core.graph import populations, readout_name
from neurodeploy.core.meta import (
    copy_graph,
    get_graph_meta,
    population_meta,
    set_graph_meta,
    with_records,
)
from neurodeploy.core.population import param_for_shape
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.probe import ActivationStream
from neurodeploy.progress import progress


def firing(graph: nir.NIRGraph) -> list[str]:
    """The spiking populations (the readout excluded), in network order."""
    readout = readout_name(graph)
    return [p for p in populations(graph) if p != readout]


def with_population(graph: nir.NIRGraph, name: str, **changes: Any) -> nir.NIRGraph:
    """A new graph whose population ``name`` has ``changes`` in its record."""
    return with_populations(graph, {name: changes})


def with_populations(graph: nir.NIRGraph, changes: dict[str, dict[str, Any]]) -> nir.NIRGraph:
    """``with_population`` of several populations, in one copy of the graph."""
    return with_records(graph, {name: population_meta(graph, name).replace(**c)
                                for name, c in changes.items()})


def with_note(graph: nir.NIRGraph, stage: str, note: dict[str, Any]) -> nir.NIRGraph:
    """A new graph recording ``note`` under ``stage`` in GraphMeta.notes."""
    out = copy_graph(graph, {})
    meta = get_graph_meta(out)
    set_graph_meta(out, dataclasses.replace(meta, notes={**meta.notes, stage: note}))
    return out


def rounding_shift(graph: nir.NIRGraph, timesteps: int) -> nir.NIRGraph:
    """v_init = 0 and theta/(2T) more bias every step: over the window the neuron gains
    theta/2, which turns the rate code's floor into a round (algorithms.md §2.1)."""
    shifted = {}
    for name in firing(graph):
        meta = population_meta(graph, name)
        shift = np.asarray(meta.theta, np.float64) / (2 * timesteps)
        shifted[name] = meta.replace(v_init=np.array(0.0),
                                     bias=np.asarray(meta.bias, np.float64) + shift)
    return with_records(graph, shifted)


def correct(graph: nir.NIRGraph, ctx: MethodContext, images: np.ndarray, stage: str,
            potential: bool) -> tuple[nir.NIRGraph, dict[str, float]]:
    """Bias correction, and with ``potential`` potential correction, of every population in
    network order (``correct_population``). Returns the graph and, per population, the mean
    |error| before its correction (ANN units)."""
    ann = ActivationStream(ctx, images, graph)
    net = DeployedNetwork(graph, images, ctx)
    before = {}
    for name in layer_by_layer(graph, net, stage, ctx.show_progress):
        graph, before[name] = correct_population(graph, net, name, ann.pop(name), potential)
    return graph, before


def layer_by_layer(graph: nir.NIRGraph, net: DeployedNetwork, description: str,
                   show_progress: bool) -> Iterator[str]:
    """``firing(graph)`` in order, with a progress bar, for a stage that changes one population
    at a time: once the caller is done with one, ``net`` frees the spike records no later
    population reads (``DeployedNetwork.release_behind``)."""
    order = firing(graph)
    for k, name in enumerate(progress(order, description, show_progress)):
        yield name
        net.release_behind(order[:k + 1])


def correct_population(graph: nir.NIRGraph, net: DeployedNetwork, name: str,
                       target: np.ndarray, potential: bool) -> tuple[nir.NIRGraph, float]:
    """One population's bias (and with ``potential``, v_init) correction against the ANN
    activation ``target`` on ``net``'s images; the graph and the mean |error| before it.

    The mean error (SNN rate - ANN activation, over the images) of each neuron splits into
    its channel's mean, removed from the bias (per channel, every step), and the per-neuron
    remainder, removed from ``v_init`` as T times the remainder (once per window).
    """
    error = net.mean_rates(graph, name) - target.mean(axis=0)
    channel = error.reshape(len(error), -1).mean(axis=1)
    meta = population_meta(graph, name)
    changes: dict[str, Any] = {"bias": np.asarray(meta.bias, np.float64) - channel}
    if potential and error.ndim > 1:
        remainder = error - channel.reshape(-1, *(1,) * (error.ndim - 1))
        v_init = np.broadcast_to(param_for_shape(np.asarray(meta.v_init, np.float64),
                                                 error.shape), error.shape)
        changes["v_init"] = v_init - net.steps * remainder
    return with_population(graph, name, **changes), float(np.abs(error).mean())

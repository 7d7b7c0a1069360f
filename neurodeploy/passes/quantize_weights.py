"""quantize_weights: fold each source's spike value into the weights, then round them."""

from __future__ import annotations

import dataclasses
import math

import nir
import numpy as np

from neurodeploy.core.graph import topological_order
from neurodeploy.core.meta import copy_graph, population_meta, population_node
from neurodeploy.core.population import population_shape
from neurodeploy.passes.base import PassContext
from neurodeploy.passes.sources import per_input_channel, synapse_source

WEIGHTED = (nir.Linear, nir.Conv2d)


def quantize_weights(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """A spike of layer l-1 is worth theta_{l-1}, so W' = W * theta_{l-1} turns spikes into
    small integers. W' is rounded to a signed mantissa of the target's width with one
    power-of-two exponent per population; that exponent fixes the population's membrane
    unit (2**e), so no hardware shift is needed and theta, bias and v_init are later
    rounded in the same unit. All synapses into one population share its exponent."""
    limit = (1 << (ctx.target.weights.mantissa_bits - 1)) - 1
    theta_limit = (1 << ctx.target.neuron.threshold_bits) - 1
    folded: dict[str, np.ndarray] = {}
    inbound: dict[str, list[str]] = {}
    for name in topological_order(graph):
        node = graph.nodes[name]
        if isinstance(node, WEIGHTED):
            unit = synapse_source(graph, name).unit
            groups = int(getattr(node, "groups", 1))
            folded[name] = node.weight * per_input_channel(node.weight, groups, unit)
            (population,) = [dst for src, dst in graph.edges if src == name]
            inbound.setdefault(population, []).append(name)
    new_nodes: dict[str, nir.NIRNode] = {}
    errors = {}
    for population, synapses in inbound.items():
        largest = max(float(np.abs(folded[s]).max()) for s in synapses)
        exponent = math.ceil(math.log2(largest / limit)) if largest > 0 else 0
        for s in synapses:
            mantissa = np.clip(np.round(folded[s] / 2.0**exponent), -limit - 1, limit)
            new_nodes[s] = dataclasses.replace(graph.nodes[s], weight=mantissa.astype(np.int32))
            errors[s] = _relative_error(folded[s], mantissa * 2.0**exponent)
        meta = population_meta(graph, population)
        shift = _input_shift(meta, exponent, theta_limit)
        meta = meta.replace(exponent=exponent + shift, input_shift=shift,
                            membrane_bits=ctx.target.neuron.membrane_bits)
        new_nodes[population] = population_node(
            meta, population_shape(graph.nodes[population]))
    ctx.notes["quantize_weights"] = {"relative_rms_error": errors}
    return copy_graph(graph, new_nodes)


def _input_shift(meta, weight_exponent: int, theta_limit: int) -> int:
    """Bits to drop from the synaptic sum so theta fits the target's threshold width.

    A first layer sees 8-bit inputs, so its threshold can be hundreds of thousands of weight
    units; shifting the sum (as Loihi's weight exponent does) coarsens the membrane unit
    instead of the weights."""
    if not meta.fires:
        return 0
    theta = float(np.max(meta.theta)) / 2.0**weight_exponent
    return max(0, math.ceil(math.log2(theta / theta_limit))) if theta > theta_limit else 0


def _relative_error(exact: np.ndarray, rounded: np.ndarray) -> float:
    norm = float(np.linalg.norm(exact))
    return float(np.linalg.norm(rounded - exact) / norm) if norm else 0.0

"""quantize_weights: fold each source's spike value into the weights, then round them."""

from __future__ import annotations

import math

import nir
import numpy as np

from neurodeploy.core.conformance import WEIGHTED
from neurodeploy.core.graph import topological_order
from neurodeploy.core.meta import copy_graph, population_meta, population_node
from neurodeploy.core.population import MAX_EXPONENT, MAX_INPUT_SHIFT, Population, population_shape
from neurodeploy.errors import InputError, WeightsLost
from neurodeploy.nir_compat import replace_node
from neurodeploy.passes.base import PassContext
from neurodeploy.passes.sources import per_input_channel, synapse_source
from neurodeploy.targets import Target


def quantize_weights(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """A spike of layer l-1 is worth theta_{l-1}, so W' = W * theta_{l-1} turns spikes into
    small integers. W' is rounded to a signed mantissa of the target's width with one
    power-of-two exponent per population; that exponent fixes the population's membrane
    unit (2**e), so no hardware shift is needed and theta, bias and v_init are later
    rounded in the same unit. All synapses into one population share its exponent."""
    inbound: dict[str, list[str]] = {}
    for name in topological_order(graph):
        if isinstance(graph.nodes[name], WEIGHTED):
            (population,) = [dst for src, dst in graph.edges if src == name]
            inbound.setdefault(population, []).append(name)
    new_nodes: dict[str, nir.NIRNode] = {}
    errors: dict[str, float] = {}
    for population, synapses in inbound.items():
        synapse_nodes, record, synapse_errors = quantize_inbound(graph, population, synapses,
                                                                 ctx.target)
        _check_none_lost(graph, synapse_nodes, ctx.target)
        new_nodes.update(synapse_nodes)
        errors.update(synapse_errors)
        new_nodes[population] = population_node(record,
                                                population_shape(graph.nodes[population]))
    ctx.notes["quantize_weights"] = {"relative_rms_error": errors}
    return copy_graph(graph, new_nodes)


def quantize_inbound(graph: nir.NIRGraph, population: str, synapses: list[str], target: Target
                     ) -> tuple[dict[str, nir.NIRNode], Population, dict[str, float]]:
    """One population's weighted synapses rounded with their shared exponent, its record
    with the exponent (membrane unit) and input shift, and each synapse's rounding error."""
    limit = (1 << (target.weights.mantissa_bits - 1)) - 1
    folded = {}
    for s in synapses:
        node = graph.nodes[s]
        unit = synapse_source(graph, s).unit
        folded[s] = node.weight * per_input_channel(node.weight, int(getattr(node, "groups", 1)),
                                                    unit)
    largest = max(float(np.abs(w).max()) for w in folded.values())
    exponent = math.ceil(math.log2(largest / limit)) if largest > 0 else 0
    if abs(exponent) > MAX_EXPONENT:
        raise InputError(f"its synapses' weights need an exponent of {exponent}, beyond "
                         f"-{MAX_EXPONENT}..{MAX_EXPONENT} (largest weight {largest:.3g}, "
                         "its source's spike value included)", node=population,
                         hint="Check the model's scale (for an imported file, its dt)")
    nodes, errors = {}, {}
    for s, weight in folded.items():
        mantissa = np.clip(np.round(weight / 2.0**exponent), -limit - 1, limit)
        nodes[s] = replace_node(graph.nodes[s], weight=mantissa.astype(np.int32))
        errors[s] = _relative_error(weight, mantissa * 2.0**exponent)
    meta = population_meta(graph, population)
    shift = _input_shift(meta, exponent, (1 << target.neuron.threshold_bits) - 1)
    if shift > MAX_INPUT_SHIFT:
        raise InputError(f"its threshold is {float(np.max(meta.theta)) / largest:.3g} times "
                         f"its largest weight: beyond a {target.neuron.threshold_bits}-bit "
                         f"threshold even with the synaptic sums shifted by {MAX_INPUT_SHIFT} "
                         "bits", node=population,
                         hint="Check the model's scale (for an imported file, its thresholds "
                              "against its weights)")
    record = meta.replace(exponent=exponent + shift, input_shift=shift,
                          membrane_bits=target.neuron.membrane_bits)
    return nodes, record, errors


def _check_none_lost(graph: nir.NIRGraph, rounded: dict[str, nir.NIRNode], target: Target
                     ) -> None:
    """Refuse a synapse layer whose weights all round to zero. Only synapses that share a
    population's exponent with larger ones can (a recurrent or residual population): the
    largest weight of a lone synapse is the top of the mantissa."""
    for name, node in rounded.items():
        if not np.any(node.weight) and np.any(graph.nodes[name].weight):
            others = sorted(set(rounded) - {name})
            raise WeightsLost(
                f"every weight rounds to zero on {target.name}: it shares the weight exponent "
                f"of its population with {', '.join(others)}, whose weights are far larger in "
                "units of the population's membrane", node=name,
                hint="Scale the network so the synapses into one population are of similar "
                     "size (an imported network whose inputs count events: import it with "
                     "events=True, --events)")


def _input_shift(meta, weight_exponent: int, theta_limit: int) -> int:
    """Bits to drop from the synaptic sum so theta fits the target's threshold width.

    A first layer sees 8-bit inputs, so its threshold can be hundreds of thousands of weight
    units; shifting the sum (as Loihi's weight exponent does) coarsens the membrane unit
    instead of the weights."""
    if not meta.fires:
        return 0
    theta = float(np.max(meta.theta)) / 2.0**weight_exponent
    return math.ceil(math.log2(theta / theta_limit)) if theta > theta_limit else 0


def _relative_error(exact: np.ndarray, rounded: np.ndarray) -> float:
    norm = float(np.linalg.norm(exact))
    return float(np.linalg.norm(rounded - exact) / norm) if norm else 0.0

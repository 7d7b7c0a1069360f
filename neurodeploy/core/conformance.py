"""Does an integer graph fit its target? One set of checks, run by the ``check_target`` pass
when a network is compiled and by ``nir_io.read`` on every file naming a known target, so a
file edited by hand (or by another tool) is refused, naming the node and the limit, before
anything runs it. Each check names the target feature it needs, so the user can choose another
target or method instead of getting a silently different network."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.graph import input_name, populations
from neurodeploy.core.meta import InputMeta, get_node_meta, population_meta
from neurodeploy.core.neuron import MAX_MEMBRANE_BITS
from neurodeploy.core.population import MAX_PARAM_DIMS_PER_CHANNEL, Population, Reset
from neurodeploy.errors import MetadataError, TargetLimitExceeded, all_whole
from neurodeploy.targets import Target

WEIGHTED = (nir.Linear, nir.Conv2d)


def check_graph(graph: nir.NIRGraph, target: Target) -> None:
    """Every population, synapse layer and the input against ``target``'s widths/features."""
    if target.neuron.membrane_bits > MAX_MEMBRANE_BITS:
        raise TargetLimitExceeded(node=target.name, limit="membrane_bits",
                                  value=target.neuron.membrane_bits, allowed=MAX_MEMBRANE_BITS)
    name = input_name(graph)
    bits = get_node_meta(graph.nodes[name], InputMeta, name).bits
    if bits > target.input.bits:
        raise TargetLimitExceeded(node=name, limit="input bits", value=bits,
                                  allowed=target.input.bits)
    for name in populations(graph):
        check_population(population_meta(graph, name), name, target)
    check_weights(graph, target.weights.mantissa_bits)


def check_weights(graph: nir.NIRGraph, mantissa_bits: int) -> None:
    """Every synapse layer's weights are integer mantissas of ``mantissa_bits`` (a graph of a
    target not at hand is held to the widest any target may have)."""
    limit = 1 << (mantissa_bits - 1)
    for name, node in graph.nodes.items():
        if isinstance(node, WEIGHTED):
            weight = np.asarray(node.weight)
            if not all_whole(weight):
                raise MetadataError("weights are not all finite integers (a compiled "
                                    "network's weights are integer mantissas)", node=name)
            if weight.size and (weight.min() < -limit or weight.max() > limit - 1):
                raise TargetLimitExceeded(
                    node=name, limit="weight mantissa", value=f"{weight.min():.0f}.."
                    f"{weight.max():.0f}", allowed=f"{-limit}..{limit - 1}")


def check_spikes(max_burst: int, dual: bool, name: str, target: Target) -> None:
    """The spikes the target can send: also checked on the options before a compile (a
    burst size the target refuses made calibration run for minutes first)."""
    spec = target.neuron
    if dual and not (spec.dual_threshold and target.spikes.signed):
        raise TargetLimitExceeded(node=name, limit="dual_threshold", value="on",
                                  allowed="off", hint=f"Target '{target.name}' has no "
                                  "negative spikes; use the target loihi2")
    if max_burst > 1 and not target.spikes.graded:
        raise TargetLimitExceeded(node=name, limit="max_burst", value=max_burst, allowed=1,
                                  hint=f"Target '{target.name}' has binary spikes; use the "
                                       "target loihi2")
    if max_burst > spec.max_burst:
        raise TargetLimitExceeded(node=name, limit="max_burst", value=max_burst,
                                  allowed=spec.max_burst)


def check_population(p: Population, name: str, target: Target) -> None:
    spec = target.neuron
    check_spikes(p.max_burst, p.dual, name, target)
    if p.fires and p.reset is Reset.SUBTRACT and not spec.soft_reset:
        raise TargetLimitExceeded(node=name, limit="soft_reset", value="reset by subtraction",
                                  allowed="reset to zero", hint=f"Target '{target.name}' "
                                  "cannot subtract the threshold on a spike, which every "
                                  "converted network needs")
    if np.ndim(p.v_init) > MAX_PARAM_DIMS_PER_CHANNEL and not spec.per_neuron_v_init:
        raise TargetLimitExceeded(node=name, limit="per_neuron_v_init", value="needed",
                                  allowed="none", hint=f"Target '{target.name}' loads one "
                                  "initial membrane per channel; use the target loihi2")
    if p.bias_table is not None and not spec.bias_table:
        raise TargetLimitExceeded(node=name, limit="bias_table", value="needed",
                                  allowed="none", hint=f"FTBC adds a bias per step, which "
                                  f"target '{target.name}' cannot load; use the target loihi2")
    if p.membrane_bits != spec.membrane_bits:
        raise TargetLimitExceeded(node=name, limit="membrane_bits", value=p.membrane_bits,
                                  allowed=spec.membrane_bits)
    threshold = (1 << spec.threshold_bits) - 1
    if p.fires and np.max(p.theta) > threshold:
        raise TargetLimitExceeded(node=name, limit="threshold", value=int(np.max(p.theta)),
                                  allowed=threshold)
    for values in (p.bias, p.bias_table):
        if values is not None and not np.array_equal(representable(
                values, spec.bias_mantissa_bits, spec.bias_exponent_bits, name), values):
            raise TargetLimitExceeded(node=name, limit="bias", value="not mantissa << shift",
                                      allowed=f"{spec.bias_mantissa_bits}-bit mantissa, "
                                              f"{spec.bias_exponent_bits}-bit shift")


def representable(values: np.ndarray, mantissa_bits: int, exponent_bits: int,
                  node: str) -> np.ndarray:
    """Round to the nearest mantissa << shift with the smallest shift that fits."""
    limit = (1 << (mantissa_bits - 1)) - 1
    result = np.round(values)
    unresolved = np.abs(result) > limit
    for shift in range(1, 1 << exponent_bits):
        if not unresolved.any():
            break
        candidate = np.round(values / 2.0**shift)
        fits = unresolved & (np.abs(candidate) <= limit)
        result = np.where(fits, candidate * 2.0**shift, result)
        unresolved &= ~fits
    if unresolved.any():
        worst = float(np.abs(values).max())
        raise TargetLimitExceeded(node=node, limit="bias", value=f"{worst:.0f} membrane units",
                                  allowed=f"{limit} << {(1 << exponent_bits) - 1}",
                                  hint="The bias is large relative to the weights")
    return result

"""The ANN activations a report compares the SNN's rates with.

A compiled ``.nir`` file does not contain the float model, so there are two references:

- ``ModelReference`` (``--ann model.pt``): the original float ANN on the float images. The
  difference to the SNN is everything deployment changed: input, weight and threshold
  quantization plus the rate-coding (conversion) error.
- ``EquivalentReference`` (default): the rate network the integer SNN approximates, rebuilt
  from the compiled graph: each population computes ``relu(sum of W_int x + bias)`` in its
  membrane units on the same integer inputs, its output in spikes per step is that over
  ``theta``, and its ANN value is the activation times ``2**exponent``. Weights, thresholds
  and biases are the deployed integers, so the difference isolates the conversion error
  (clipping at the largest rate, the rate's few levels, residual membrane) from
  quantization. A per-step bias table (FTBC) is a correction of that error, not part of
  the network, so the equivalent leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import nir
import numpy as np

from neurodeploy.core.encoding import is_stream
from neurodeploy.core.graph import (
    back_edges,
    input_name,
    populations,
    predecessors,
    topological_order,
)
from neurodeploy.core.meta import population_meta
from neurodeploy.core.population import NEURON_TYPES, param_for_shape
from neurodeploy.core.synapse import propagate
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods.probe import population_activations


class AnnReference(Protocol):
    kind: ClassVar[str]  #: "model" or "equivalent"
    description: str

    def activations(self, images: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Per population (batch, *shape) in ANN units, the readout's logits included, from
        float ``images`` and the integer ``inputs`` the SNN receives."""
        ...


def check_compiled_from(ann: AnnGraph, graph: nir.NIRGraph) -> None:
    """Refuse a float model the network cannot have been compiled from: another input shape,
    or no node for a population's source (a comparison with it would mean nothing)."""
    expected = tuple(int(d) for d in graph.nodes[input_name(graph)].input_type["input"])
    if ann.input_shape != expected:
        raise InputError(f"the float model (ann) takes input shape {ann.input_shape}, the "
                         f"network {expected}", hint="Pass the model it was compiled from")
    names = {node.name for node in ann.nodes}
    for pop in populations(graph):
        source = population_meta(graph, pop).source
        if population_meta(graph, pop).fires and source not in names:
            raise InputError(f"the float model (ann) has no node '{source}', which population "
                             f"'{pop}' was converted from",
                             hint="Pass the model the network was compiled from")


@dataclass(frozen=True)
class ModelReference:
    kind: ClassVar[str] = "model"
    ann: AnnGraph
    graph: nir.NIRGraph
    description: str

    def __post_init__(self) -> None:
        check_compiled_from(self.ann, self.graph)

    def activations(self, images: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
        return population_activations(self.ann, images, self.graph)


@dataclass(frozen=True)
class EquivalentReference:
    kind: ClassVar[str] = "equivalent"
    graph: nir.NIRGraph
    description: str = ("the rate network rebuilt from the compiled integer weights, "
                        "thresholds and biases, on the quantized inputs (isolates the "
                        "conversion error from quantization)")

    def activations(self, images: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
        if back_edges(self.graph) or is_stream(self.graph, inputs):
            raise InputError("the report's rate reference is a static network: it has no "
                             "recurrent edges and no input streams",
                             hint="Compare a recurrent or event-driven network with `verify` "
                                  "and `evaluate`")
        preds = predecessors(self.graph)
        values: dict[str, np.ndarray] = {}  # what each node sends, per step
        out = {}
        for name in topological_order(self.graph):
            node = self.graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = np.asarray(inputs, np.float64)
            elif isinstance(node, NEURON_TYPES):
                meta = population_meta(self.graph, name)
                shape = tuple(int(d) for d in node.input_type["input"])
                current = sum(values[p] for p in preds[name]) / 2.0**meta.input_shift
                membrane = current + param_for_shape(np.asarray(meta.bias, np.float64), shape)
                if meta.fires:
                    membrane = np.maximum(membrane, 0.0)
                    values[name] = membrane / param_for_shape(
                        np.asarray(meta.theta, np.float64), shape)
                out[name] = membrane * 2.0**meta.exponent
            elif not isinstance(node, nir.Output):
                values[name] = propagate(node, sum(values[p] for p in preds[name]))
        return out

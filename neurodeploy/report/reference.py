"""The ANN activations a report compares the SNN's rates with (docs/report.md).

A compiled ``.nir`` file does not contain the float model, so there are two references:
``ModelReference`` (``--ann model.pt``), the float ANN on the float images, differs from the SNN
by everything deployment changed; ``EquivalentReference`` (default), the rate network of the
compiled integers on the same integer inputs, isolates the conversion error from quantization.
A per-step bias table (FTBC) corrects that error, so the equivalent leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import nir
import numpy as np

from neurodeploy.core.encoding import is_stream
from neurodeploy.core.graph import back_edges, populations, predecessors, topological_order
from neurodeploy.core.meta import population_meta
from neurodeploy.core.population import NEURON_TYPES, param_for_shape
from neurodeploy.core.synapse import propagate
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods.probe import population_activations
from neurodeploy.simulation import input_shape


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
    expected = input_shape(graph)
    if ann.input_shape != expected:
        raise InputError(f"the float model (ann) takes input shape {ann.input_shape}, the "
                         f"network {expected}", hint="Pass the model it was compiled from")
    names = {node.name for node in ann.nodes}
    for pop in populations(graph):
        meta = population_meta(graph, pop)
        if meta.fires and meta.source not in names:
            raise InputError(f"the float model (ann) has no node '{meta.source}', which population "
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

"""Run two backends on the same inputs and compare every spike and membrane exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

from neurodeploy.backends import Record, Trace, get_backend
from neurodeploy.fileio import write_files
from neurodeploy.graph import populations


@dataclass(frozen=True)
class Divergence:
    population: str
    quantity: str  #: "spikes", "membranes" or "outputs"
    timestep: int  #: in the population's window (add its offset for the chip's step)
    sample: int
    neuron: tuple[int, ...]  #: index within the population's (C, H, W) or (N,) shape
    expected: int
    actual: int

    def __str__(self) -> str:
        where = ",".join(map(str, self.neuron))
        return (f"first divergence in population '{self.population}', {self.quantity} of "
                f"neuron ({where}) at timestep {self.timestep} of sample {self.sample}: "
                f"{self.expected} (reference) != {self.actual}")


@dataclass(frozen=True)
class Comparison:
    populations: int
    neurons: int
    timesteps: int
    samples: int
    values: int  #: number of integers compared
    divergence: Divergence | None


def compare(graph: nir.NIRGraph, expected: Trace, actual: Trace) -> Comparison:
    """Exact comparison in topological order, so the first divergence is the earliest cause."""
    names = populations(graph)
    neurons, values = 0, 0
    for name in names:
        for quantity in ("spikes", "membranes"):
            a, b = getattr(expected, quantity).get(name), getattr(actual, quantity).get(name)
            if a is None and b is None:
                continue
            if a is None or b is None or a.shape != b.shape:
                raise ValueError(f"traces of '{name}' {quantity} are not comparable")
            values += a.size
            divergence = _first_difference(name, quantity, a, b)
            if divergence:
                return _result(expected, names, neurons, values, divergence)
        neurons += int(np.prod(graph.nodes[name].input_type["input"]))
    a, b = expected.outputs, actual.outputs
    values += a.size
    if not np.array_equal(a, b):
        sample, unit = np.argwhere(a != b)[0]
        div = Divergence(names[-1], "outputs", expected.timesteps - 1, int(sample), (int(unit),),
                         int(a[sample, unit]), int(b[sample, unit]))
        return _result(expected, names, neurons, values, div)
    return _result(expected, names, neurons, values, None)


def run_and_compare(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int,
                    backend: str = "lava", reference: str = "reference"
                    ) -> tuple[Comparison, Trace, Trace]:
    expected = get_backend(reference).run(graph, inputs, timesteps, record=Record.ALL)
    actual = get_backend(backend).run(graph, inputs, timesteps, record=Record.ALL)
    return compare(graph, expected, actual), expected, actual


def save_traces(stem: Path, traces: dict[str, Trace]) -> list[str]:
    """The traces of a mismatch as ``STEM.<backend>.npz``, written together: both or neither."""
    paths = {f"{stem}.{name}.npz": trace for name, trace in traces.items()}
    write_files({path: trace.write_npz for path, trace in paths.items()})
    return list(paths)


def _first_difference(name: str, quantity: str, a: np.ndarray, b: np.ndarray
                      ) -> Divergence | None:
    if np.array_equal(a, b):
        return None
    t, sample, *neuron = (int(i) for i in np.argwhere(a != b)[0])
    return Divergence(name, quantity, t, sample, tuple(neuron), int(a[(t, sample, *neuron)]),
                      int(b[(t, sample, *neuron)]))


def _result(trace: Trace, names, neurons, values, divergence) -> Comparison:
    return Comparison(populations=len(names), neurons=neurons, timesteps=trace.timesteps,
                      samples=trace.outputs.shape[0], values=values, divergence=divergence)

"""Run two backends on the same inputs and compare every spike and membrane exactly."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import nir
import numpy as np

from neurodeploy.backends import Backend, Record, Trace, available_backends, get_backend
from neurodeploy.backends.memory import check_free_memory, sample_bytes
from neurodeploy.core.graph import populations
from neurodeploy.errors import BitExactMismatch, InputError
from neurodeploy.fileio import write_files
from neurodeploy.shards import IN_PROCESS, Workers, run_sharded


@dataclass(frozen=True)
class Divergence:
    population: str
    quantity: str  #: "spikes", "membranes" or "outputs"
    timestep: int  #: in the population's window (add its offset for the chip's step)
    sample: int
    neuron: tuple[int, ...]  #: index within the population's (C, H, W) or (N,) shape
    expected: int | float  #: as recorded (a backend under development may record floats)
    actual: int | float

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


def compare(graph: nir.NIRGraph, expected: Trace, actual: Trace,
            samples: slice = slice(None)) -> Comparison:
    """Exact comparison in topological order, so the first divergence is the earliest cause;
    ``samples`` restricts it to some samples of the batch (each runs its own window)."""
    names = populations(graph)
    neurons, values = 0, 0
    for name in names:
        for quantity in ("spikes", "membranes"):
            a, b = getattr(expected, quantity).get(name), getattr(actual, quantity).get(name)
            if a is None and b is None:
                continue
            _check_comparable(f"{quantity} of population '{name}'", a, b)
            a, b = a[:, samples], b[:, samples]
            values += a.size
            divergence = _first_difference(name, quantity, a, b)
            if divergence:
                return _result(expected, samples, names, neurons, values, divergence)
        neurons += int(np.prod(graph.nodes[name].input_type["input"]))
    _check_comparable("outputs", expected.outputs, actual.outputs)
    a, b = expected.outputs[samples], actual.outputs[samples]
    values += a.size
    if not np.array_equal(a, b):
        sample, unit = np.argwhere(a != b)[0]
        div = Divergence(names[-1], "outputs", expected.timesteps - 1, int(sample), (int(unit),),
                         a[sample, unit].item(), b[sample, unit].item())
        return _result(expected, samples, names, neurons, values, div)
    return _result(expected, samples, names, neurons, values, None)


@dataclass(frozen=True)
class Verification:
    """One verify run: both traces and their comparison."""

    graph: nir.NIRGraph
    backend: str  #: the backend checked against the reference simulator
    comparison: Comparison
    expected: Trace  #: the reference simulator's
    actual: Trace  #: the backend's

    @property
    def bit_exact(self) -> bool:
        return self.comparison.divergence is None

    def per_sample(self) -> list[Comparison]:
        """One comparison per sample: samples run separate windows, so each is its own
        finding, while a later population's divergence mostly follows from an earlier one."""
        return [self._sample(k) for k in range(self.comparison.samples)]

    def save_traces(self, directory: str | Path, stem: str) -> list[Path]:
        """Both traces as ``STEM.reference.npz`` and ``STEM.BACKEND.npz`` (``Trace.load``),
        written together: both or neither."""
        traces = {Path(directory) / f"{stem}.{name}.npz": trace for name, trace in
                  (("reference", self.expected), (self.backend, self.actual))}
        write_files({path: trace.write_npz for path, trace in traces.items()})
        return list(traces)

    def describe(self, divergence: Divergence) -> str:
        """``divergence`` with the checked backend named after its value."""
        return f"{divergence} ({self.backend})"

    def __str__(self) -> str:
        c = self.comparison
        if c.divergence:
            return f"MISMATCH: {self.describe(c.divergence)}"
        return (f"bit-exact: {self.backend} == reference on {c.populations} populations, "
                f"{c.neurons} neurons, {c.timesteps} timesteps, {c.samples} samples "
                f"({c.values} values compared)")

    def _sample(self, k: int) -> Comparison:
        result = compare(self.graph, self.expected, self.actual, slice(k, k + 1))
        if result.divergence is None:
            return result
        return replace(result, divergence=replace(result.divergence, sample=k))


def run_and_compare(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int,
                    backend: str | Backend = "lava", reference: str = "reference", *,
                    workers: Workers = IN_PROCESS) -> Verification:
    """``backend`` is a registered name, or an object with the Backend protocol (one under
    development, or a wrapper around hardware). On ``workers`` the samples run in shards
    (``neurodeploy.shards``); the traces are joined before they are compared, so the result
    is the one-process result."""
    engine = _engine(backend)
    # both runs' whole traces are kept to be compared
    check_free_memory(2 * sample_bytes(graph, timesteps, Record.ALL), len(inputs), timesteps,
                      hint="Verify fewer samples at once or a shorter window")
    shards = run_sharded(_run_both, len(inputs), (graph, inputs, timesteps, engine, reference),
                         workers, description="verify")
    expected = Trace.concatenate([pair[0] for pair in shards])
    actual = Trace.concatenate([pair[1] for pair in shards])
    return Verification(graph, engine.name, compare(graph, expected, actual), expected, actual)


def _run_both(rows: slice, graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int,
              engine: Backend, reference: str) -> tuple[Trace, Trace]:
    """(reference trace, backend trace) of the samples ``rows`` (one shard)."""
    x = inputs[rows]
    actual = engine.run(graph, x, timesteps, record=Record.ALL)
    if not isinstance(actual, Trace):
        raise BitExactMismatch(f"backend '{engine.name}' returned {type(actual).__name__}, "
                               "not a Trace", divergence=None)
    return get_backend(reference).run(graph, x, timesteps, record=Record.ALL), actual


def _engine(backend: str | Backend) -> Backend:
    if isinstance(backend, str):
        return get_backend(backend)
    if not callable(getattr(backend, "run", None)) or not isinstance(
            getattr(backend, "name", None), str):
        raise InputError(f"backend must be a backend's name or an object with the Backend "
                         f"protocol (a name and run()), got {type(backend).__name__}",
                         hint=f"Names: {', '.join(available_backends())}")
    return backend


def _check_comparable(what: str, expected: np.ndarray | None, actual: np.ndarray | None
                      ) -> None:
    """A trace the checked backend recorded in another shape, or not at all, cannot agree:
    a finding about the backend, not an error of the comparison."""
    if expected is None or actual is None or expected.shape != actual.shape:
        raise BitExactMismatch(f"{what}: the checked backend recorded {_recorded(actual)}, "
                               f"the reference {_recorded(expected)}", divergence=None)


def _recorded(values: np.ndarray | None) -> str:
    return "nothing" if values is None else f"shape {tuple(values.shape)}"


def _first_difference(name: str, quantity: str, a: np.ndarray, b: np.ndarray
                      ) -> Divergence | None:
    if np.array_equal(a, b):
        return None
    t, sample, *neuron = (int(i) for i in np.argwhere(a != b)[0])
    return Divergence(name, quantity, t, sample, tuple(neuron), a[(t, sample, *neuron)].item(),
                      b[(t, sample, *neuron)].item())


def _result(trace: Trace, samples: slice, names, neurons, values, divergence) -> Comparison:
    return Comparison(populations=len(names), neurons=neurons, timesteps=trace.timesteps,
                      samples=len(trace.outputs[samples]), values=values, divergence=divergence)

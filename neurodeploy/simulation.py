"""Run a compiled graph: encode inputs, simulate one window, measure accuracy over windows.

Below the API and the report (both call it), above the backends; it works on NIR graphs, so
a ``Deployment`` and the report share one implementation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurodeploy.backends import Record, Trace, get_backend
from neurodeploy.backends.memory import (
    DEFAULT_MEMORY_BUDGET,
    check_free_memory,
    chunk_size,
    chunks,
    sample_bytes,
)
from neurodeploy.backends.trace_file import TraceFile
from neurodeploy.core.encoding import is_stream, quantize_inputs
from neurodeploy.core.graph import input_name, num_outputs
from neurodeploy.core.meta import get_graph_meta, longest_window
from neurodeploy.data import as_array, labelled
from neurodeploy.errors import InputError, whole_number
from neurodeploy.fileio import atomic_write, scratch_dir
from neurodeploy.progress import progress
from neurodeploy.shards import IN_PROCESS, Workers, run_sharded


def input_shape(graph: nir.NIRGraph) -> tuple[int, ...]:
    """One sample's shape, without the batch dimension."""
    return tuple(int(d) for d in graph.nodes[input_name(graph)].input_type["input"])


def encode(graph: nir.NIRGraph, inputs) -> np.ndarray:
    """What a user hands in -> the integers the input node injects every step
    (``quantize_inputs``): arrays or tensors, floats in [0, 1] or integers, a batch or one
    sample (a batch of one)."""
    return quantize_inputs(graph, as_batch(graph, inputs))


def random_inputs(graph: nir.NIRGraph, samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` integer inputs drawn uniformly over the input's whole range."""
    samples = whole_number(samples, "samples")
    whole_number(seed, "seed", least=0)
    high = quantize_inputs(graph, np.ones(1, np.float32))[0]
    shape = (samples, *input_shape(graph))
    return np.random.default_rng(seed).integers(0, high + 1, shape).astype(np.int32)


def window(graph: nir.NIRGraph, timesteps: int | None) -> int:
    """The steps a run takes: ``timesteps``, or the compiled window when it is None (0 is
    an error, not a request for the default)."""
    if timesteps is None:
        return get_graph_meta(graph).timesteps
    return whole_number(timesteps, "timesteps")


def check_windows(timesteps: Any) -> list[int]:
    """One window length or several, each a whole number, sorted, without repeats."""
    values = [timesteps] if np.ndim(timesteps) == 0 else list(timesteps)
    if not values:
        raise InputError("timesteps must name at least one window")
    return sorted({whole_number(t, "timesteps") for t in values})


def simulate(graph: nir.NIRGraph, inputs, timesteps: int | None = None, *,
             backend: str = "reference", record: Record = Record.ALL) -> Trace:
    """Run a batch (float images in [0, 1] or integers) for one window of T steps."""
    record = Record.of(record)
    steps = window(graph, timesteps)
    x = encode(graph, inputs)
    _warn_unread_steps(graph, x, steps)
    check_free_memory(sample_bytes(graph, steps, record), len(x), steps,
                      hint="Run fewer samples at once (predict and simulate_to_file run in "
                           "chunks) or a shorter window")
    return get_backend(backend).run(graph, x, steps, record=record)


def _warn_unread_steps(graph: nir.NIRGraph, x: np.ndarray, steps: int) -> None:
    """A window reads the first steps of a longer stream; the rest were dropped unsaid."""
    if is_stream(graph, x) and x.shape[1] > steps:
        warnings.warn(f"the input streams hold {x.shape[1]} steps; a window of {steps} runs "
                      f"the first {steps} (timesteps={x.shape[1]}, -T {x.shape[1]}, runs them "
                      "all)", stacklevel=3)


def predict(graph: nir.NIRGraph, inputs, timesteps: int | None = None, *,
            backend: str = "reference", show_progress: bool = True,
            memory_budget: int = DEFAULT_MEMORY_BUDGET
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Readout (batch, n_out) and spike events per neuron of any number of samples, run in
    chunks that keep a run's working memory within ``memory_budget`` bytes (``simulate``
    keeps every step of every sample)."""
    steps = window(graph, timesteps)
    x = as_batch(graph, inputs)
    _warn_unread_steps(graph, x, steps)
    engine = get_backend(backend)
    outputs, events = [], {}
    for rows in progress(chunks(len(x), chunk_size(graph, steps, memory_budget)), "simulate",
                         show_progress):
        trace = engine.run(graph, encode(graph, x[rows]), steps, record=Record.COUNTS)
        outputs.append(trace.outputs)
        for pop, count in trace.events.items():
            events[pop] = events.get(pop, 0) + count
        del trace  # its readout steps would otherwise stay alive through the next run
    return np.concatenate(outputs), events


def simulate_to_file(graph: nir.NIRGraph, inputs, path: str | Path,
                     timesteps: int | None = None, *, backend: str = "reference",
                     record: Record = Record.ALL, show_progress: bool = True,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``simulate`` of any number of samples, its trace written to the .npz ``path`` chunk
    by chunk (``Trace.load`` reads it); returns the readout and spike events per neuron."""
    record = Record.of(record)
    steps = window(graph, timesteps)
    x = as_batch(graph, inputs)
    _warn_unread_steps(graph, x, steps)
    engine = get_backend(backend)
    with scratch_dir(path) as scratch:
        trace_file = TraceFile(len(x), scratch)
        for rows in progress(chunks(len(x), chunk_size(graph, steps, memory_budget, record)),
                             "simulate", show_progress):
            trace_file.add(engine.run(graph, encode(graph, x[rows]), steps, record=record),
                           rows)
        atomic_write(path, trace_file.write_npz)
        return trace_file.outputs, trace_file.events


def default_windows(graph: nir.NIRGraph) -> list[int]:
    """The windows an accuracy sweep shows unless told: powers of two up to twice the
    compiled window, and the window itself, as far as the network can run (an FTBC bias
    table ends at the compiled window)."""
    compiled = get_graph_meta(graph).timesteps
    longest = longest_window(graph) or 2 * compiled
    steps = {compiled}
    step = 1
    while step <= min(2 * compiled, longest):
        steps.add(step)
        step *= 2
    return sorted(steps)


def window_specific(graph: nir.NIRGraph) -> bool:
    """Whether the network's method calibrated it for its compiled window
    (``Method.window_specific``); False for a network from another tool."""
    from neurodeploy.methods import get_method  # the methods simulate through this module

    try:
        return get_method(get_graph_meta(graph).method).window_specific
    except InputError:
        return False


def evaluate(graph: nir.NIRGraph, images, labels,
             timesteps: int | Sequence[int] | None = None, *,
             backend: str = "reference", show_progress: bool = True,
             memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: Workers = IN_PROCESS
             ) -> dict[int, float]:
    """Accuracy for each window length (``default_windows`` when None). One run at the
    longest T suffices: the neuron rule is causal, so the readout after t steps is exactly
    the output of a t-step window. Runs in chunks within ``memory_budget`` bytes, on
    ``workers`` (``neurodeploy.shards``) in shards of samples."""
    images, labels = labelled(images, labels, num_outputs(graph))
    if timesteps is not None:
        steps = check_windows(timesteps)
    else:
        steps = default_windows(graph)
        if is_stream(graph, images):  # as far as the streams reach
            steps = [t for t in steps if t <= images.shape[1]] or [images.shape[1]]
    shards = run_sharded(_correct, len(images), (graph, images, labels, steps, backend,
                                                 memory_budget, show_progress),
                         workers, description="evaluate", show_progress=show_progress)
    return {t: sum(shard[t] for shard in shards) / len(images) for t in steps}


def _correct(rows: slice, graph: nir.NIRGraph, images: np.ndarray, labels: np.ndarray,
             steps: list[int], backend: str, memory_budget: int, show_progress: bool
             ) -> dict[int, int]:
    """Samples ``rows`` classified right after each window of ``steps`` (one shard)."""
    correct = dict.fromkeys(steps, 0)
    engine = get_backend(backend)
    size = chunk_size(graph, steps[-1], memory_budget)
    for chunk in progress(chunks(rows.stop - rows.start, size), "evaluate", show_progress):
        part = slice(rows.start + chunk.start, rows.start + chunk.stop)
        trace = engine.run(graph, encode(graph, images[part]), steps[-1], record=Record.OUTPUT)
        for t in steps:
            correct[t] += int((trace.output_steps[t - 1].argmax(axis=1) == labels[part]).sum())
        del trace  # else its readout steps stay alive through the next run
    return correct


@dataclass(frozen=True)
class AdaptiveResult:
    """Early exit (IAT) against the same network run for its whole window."""

    timesteps: int  #: the compiled window, the most any sample runs
    accuracy: float
    mean_timesteps: float
    full_accuracy: float  #: every sample run for the whole window
    exits: dict[int, int]  #: step -> samples that stopped there


def evaluate_adaptive(graph: nir.NIRGraph, images, labels, *,
                      backend: str = "reference", show_progress: bool = True,
                      memory_budget: int = DEFAULT_MEMORY_BUDGET) -> AdaptiveResult:
    """Accuracy and mean timesteps with the network's calibrated early exit (``+iat``)."""
    from neurodeploy.methods.iat import confidence_steps, exit_steps, iat_thresholds

    thresholds = iat_thresholds(graph)
    images, labels = labelled(images, labels, num_outputs(graph))
    steps = get_graph_meta(graph).timesteps
    engine = get_backend(backend)
    hits = full_hits = taken_sum = 0
    exits = dict.fromkeys(range(1, steps + 1), 0)
    for rows in progress(chunks(len(images), chunk_size(graph, steps, memory_budget)),
                         "evaluate", show_progress):
        outputs = engine.run(graph, encode(graph, images[rows]), steps,
                             record=Record.OUTPUT).output_steps
        y = labels[rows]
        taken, predictions = exit_steps(confidence_steps(graph, outputs),
                                        outputs.argmax(axis=2), thresholds)
        hits += int((predictions == y).sum())
        full_hits += int((outputs[-1].argmax(axis=1) == y).sum())
        taken_sum += int(taken.sum())
        for t in exits:
            exits[t] += int((taken == t).sum())
    return AdaptiveResult(steps, hits / len(images), taken_sum / len(images),
                          full_hits / len(images), exits)


def as_batch(graph: nir.NIRGraph, inputs) -> np.ndarray:
    """A batch of samples, or one sample as a batch of one."""
    x = as_array(inputs)
    if x.dtype.kind not in "biuf" or x.ndim == 0 or x.size == 0:
        raise InputError(f"inputs must be a non-empty batch of numbers, got {x.dtype} of shape "
                         f"{x.shape}")
    return x[None] if x.shape == input_shape(graph) else x



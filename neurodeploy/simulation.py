"""Run a compiled graph: encode inputs, simulate one window, measure accuracy over windows.

Below the API and the report (both call it), above the backends; it works on NIR graphs, so
a ``Deployment`` and the report share one implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.backends import Record, Trace, get_backend
from neurodeploy.core.encoding import quantize_inputs
from neurodeploy.core.graph import input_name, num_outputs
from neurodeploy.core.meta import get_graph_meta, longest_window
from neurodeploy.data import as_array, check_labels
from neurodeploy.errors import InputError
from neurodeploy.progress import progress

#: evaluation batches are sized so one population's (T, batch, neurons) spikes stay this small
EVAL_MEMORY_ELEMENTS = 1 << 26


def input_shape(graph: nir.NIRGraph) -> tuple[int, ...]:
    """One sample's shape, without the batch dimension."""
    return tuple(int(d) for d in graph.nodes[input_name(graph)].input_type["input"])


def encode(graph: nir.NIRGraph, inputs) -> np.ndarray:
    """What a user hands in -> the integers the input node injects every step
    (``quantize_inputs``): arrays or tensors, floats in [0, 1] or integers, a batch or one
    sample (a batch of one)."""
    x = as_array(inputs)
    return quantize_inputs(graph, x[None] if x.shape == input_shape(graph) else x)


def random_inputs(graph: nir.NIRGraph, samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` integer inputs drawn uniformly over the input's whole range."""
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}")
    high = quantize_inputs(graph, np.ones(1, np.float32))[0]
    shape = (samples, *input_shape(graph))
    return np.random.default_rng(seed).integers(0, high + 1, shape).astype(np.int32)


def simulate(graph: nir.NIRGraph, inputs, timesteps: int | None = None, *,
             backend: str = "reference", record: Record = Record.ALL) -> Trace:
    """Run a batch (float images in [0, 1] or integers) for one window of T steps."""
    steps = timesteps or get_graph_meta(graph).timesteps
    return get_backend(backend).run(graph, encode(graph, inputs), steps, record=record)


def predict(graph: nir.NIRGraph, inputs, timesteps: int | None = None, *,
            backend: str = "reference", show_progress: bool = True
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Readout (batch, n_out) and spike events per neuron of any number of samples, run in
    batches so memory stays bounded (``simulate`` keeps every step of every sample)."""
    steps = timesteps or get_graph_meta(graph).timesteps
    x = as_array(inputs)
    x = x[None] if x.shape == input_shape(graph) else x
    batch = eval_batch_size(graph, steps)
    engine = get_backend(backend)
    outputs, events = [], {}
    for start in progress(range(0, len(x), batch), "simulate", show_progress):
        trace = engine.run(graph, encode(graph, x[start:start + batch]), steps,
                           record=Record.COUNTS)
        outputs.append(trace.outputs)
        for pop, count in trace.events.items():
            events[pop] = events.get(pop, 0) + count
    return np.concatenate(outputs), events


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


def evaluate(graph: nir.NIRGraph, images, labels, timesteps: Sequence[int] | None = None, *,
             backend: str = "reference", show_progress: bool = True
             ) -> dict[int, float]:
    """Accuracy for each window length (``default_windows`` when None). One run at the
    longest T suffices: the neuron rule is causal, so the readout after t steps is exactly
    the output of a t-step window."""
    steps = sorted(set(default_windows(graph) if timesteps is None else timesteps))
    if not steps or steps[0] < 1:
        raise InputError("timesteps must be positive integers")
    images, labels = _labelled(graph, images, labels)
    longest = steps[-1]
    batch = eval_batch_size(graph, longest)
    correct = dict.fromkeys(steps, 0)
    engine = get_backend(backend)
    for start in progress(range(0, len(images), batch), "evaluate", show_progress):
        x = encode(graph, images[start:start + batch])
        trace = engine.run(graph, x, longest, record=Record.OUTPUT)
        y = labels[start:start + batch]
        for t in steps:
            correct[t] += int((trace.output_steps[t - 1].argmax(axis=1) == y).sum())
    return {t: correct[t] / len(images) for t in steps}


@dataclass(frozen=True)
class AdaptiveResult:
    """Early exit (IAT) against the same network run for its whole window."""

    timesteps: int  #: the compiled window, the most any sample runs
    accuracy: float
    mean_timesteps: float
    full_accuracy: float  #: every sample run for the whole window
    exits: dict[int, int]  #: step -> samples that stopped there


def evaluate_adaptive(graph: nir.NIRGraph, images, labels, *,
                      backend: str = "reference", show_progress: bool = True
                      ) -> AdaptiveResult:
    """Accuracy and mean timesteps with the network's calibrated early exit (``+iat``)."""
    from neurodeploy.methods.iat import confidence_steps, exit_steps, iat_thresholds

    thresholds = iat_thresholds(graph)
    images, labels = _labelled(graph, images, labels)
    steps = get_graph_meta(graph).timesteps
    batch = eval_batch_size(graph, steps)
    engine = get_backend(backend)
    hits = full_hits = 0
    taken_all = []
    for start in progress(range(0, len(images), batch), "evaluate", show_progress):
        x = encode(graph, images[start:start + batch])
        outputs = engine.run(graph, x, steps, record=Record.OUTPUT).output_steps
        y = labels[start:start + batch]
        taken, predictions = exit_steps(confidence_steps(graph, outputs),
                                        outputs.argmax(axis=2), thresholds)
        hits += int((predictions == y).sum())
        full_hits += int((outputs[-1].argmax(axis=1) == y).sum())
        taken_all.append(taken)
    taken = np.concatenate(taken_all)
    exits = {int(t): int((taken == t).sum()) for t in range(1, steps + 1)}
    return AdaptiveResult(steps, hits / len(images), float(taken.mean()),
                          full_hits / len(images), exits)


def eval_batch_size(graph: nir.NIRGraph, timesteps: int) -> int:
    """Samples per reference run that keep one population's window near EVAL_MEMORY_ELEMENTS."""
    largest = max(int(np.prod(n.output_type["output"])) for n in graph.nodes.values())
    return int(np.clip(EVAL_MEMORY_ELEMENTS // (timesteps * largest), 1, 2000))


def _labelled(graph: nir.NIRGraph, images, labels) -> tuple[np.ndarray, np.ndarray]:
    images, labels = as_array(images), as_array(labels)
    if len(images) == 0 or labels.shape != (len(images),):
        raise InputError(f"need one label per image: {len(images)} images, labels of shape "
                         f"{labels.shape}")
    check_labels(labels, num_outputs(graph), "labels")
    return images, labels

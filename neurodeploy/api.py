"""The Python API; the CLI is a thin layer over these functions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import nir
import numpy as np

from neurodeploy import nir_io
from neurodeploy.backends import Record, Trace, get_backend
from neurodeploy.convert import ConvertOptions
from neurodeploy.data import calibration_set
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.graph import input_name
from neurodeploy.meta import InputMeta, get_graph_meta, get_node_meta, longest_window
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.passes import quantize
from neurodeploy.progress import progress
from neurodeploy.targets import Target, load_target

DEFAULT_CALIBRATION_SAMPLES = 512
#: evaluation batches are sized so one population's (T, batch, neurons) spikes stay this small
EVAL_MEMORY_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class CompileResult:
    graph: nir.NIRGraph
    ann: AnnGraph
    seconds: float  #: conversion + passes, excluding model and data loading
    notes: dict
    target: Target


def compile(model: str | Path | AnnGraph, *, target: str | Target = "loihi2",
            method: str = "p99.99",
            calib: str | np.ndarray | None = None, timesteps: int = 4,
            calib_samples: int = DEFAULT_CALIBRATION_SAMPLES, arch: str | None = None,
            trust_pickle: bool = False, input_shape: tuple[int, ...] | None = None,
            options: ConvertOptions | None = None, allow_saturation: bool = False,
            capacity_check: bool = True, stop_after: str | None = None,
            dump_dir: str | Path | None = None, seed: int = 0,
            show_progress: bool = True) -> CompileResult:
    """PyTorch model -> quantized SNN as a NIR graph, checked against ``target``.

    ``method`` is a ``+``-joined list of method stages (see ``neurodeploy.methods``);
    ``calib`` gives the unlabeled images methods calibrate on (a dataset name or an array);
    ``seed`` draws them from a named dataset and seeds every random choice of the stages.
    ``capacity_check=False`` records, instead of refusing, a network the target's cores
    cannot hold (``neurodeploy.capacity``).
    """
    if timesteps < 1:
        raise InputError(f"--timesteps must be at least 1, got {timesteps}")
    chip = target if isinstance(target, Target) else load_target(target)
    conversion = get_method(method)
    calib_x = _calibration_data(calib, calib_samples, seed)
    if conversion.needs_calibration and calib_x is None:
        raise InputError(f"method '{conversion.name}' needs calibration data",
                         hint="Pass --calib DATASET (e.g. digits, fashion-mnist, x.npz)")
    if input_shape is None and calib_x is not None:
        input_shape = tuple(calib_x.shape[1:])
    if not isinstance(model, AnnGraph):
        from neurodeploy.frontend import load_model

        model = load_model(model, arch=arch, trust_pickle=trust_pickle, input_shape=input_shape)
    ann = model
    if calib_x is not None and tuple(calib_x.shape[1:]) != ann.input_shape:
        raise InputError(f"calibration data has shape {tuple(calib_x.shape[1:])}, the model "
                         f"expects {ann.input_shape}")
    start = time.perf_counter()
    opts = replace(options or ConvertOptions(), timesteps=timesteps)
    more = partial(calibration_set, calib, seed=seed) if isinstance(calib, str) else None
    graph = conversion.convert(MethodContext(ann=ann, calib=calib_x, options=opts, target=chip,
                                             seed=seed, show_progress=show_progress,
                                             more_calibration=more))
    graph, notes = quantize(graph, chip, timesteps, allow_saturation=allow_saturation,
                            capacity_check=capacity_check, stop_after=stop_after,
                            dump_dir=dump_dir)
    return CompileResult(graph, ann, time.perf_counter() - start, notes, chip)


@dataclass(frozen=True)
class ImportResult:
    graph: nir.NIRGraph
    #: what the target cannot express exactly: the import's choices, then the passes' rounding
    approximations: list
    seconds: float  #: import + passes, excluding reading the file
    notes: dict
    target: Target


def import_nir(path: str | Path | nir.NIRGraph, *, target: str | Target = "loihi2",
               dt: float, timesteps: int = 4, reset: str = "zero",
               allow_saturation: bool = False, capacity_check: bool = True) -> ImportResult:
    """A NIR graph written by another tool -> quantized SNN for ``target``.

    ``dt`` discretizes NIR's continuous-time neurons (use the step the exporting tool
    simulates with); ``reset`` is "zero" (NIR's reset to v_reset = 0) or "subtract" (for
    tools that export v_reset = 0 but reset by subtraction). See docs/interop.md.
    """
    from neurodeploy.interop.approximations import rounding_rows
    from neurodeploy.interop.nir_import import import_graph, read_foreign

    if timesteps < 1:
        raise InputError(f"--timesteps must be at least 1, got {timesteps}")
    chip = target if isinstance(target, Target) else load_target(target)
    foreign = path if isinstance(path, nir.NIRGraph) else read_foreign(path)
    start = time.perf_counter()
    graph, approximations = import_graph(foreign, dt=dt, reset=reset, timesteps=timesteps)
    graph, notes = quantize(graph, chip, timesteps, allow_saturation=allow_saturation,
                            capacity_check=capacity_check)
    rows = approximations + rounding_rows(notes, chip.weights.mantissa_bits)
    return ImportResult(graph, rows, time.perf_counter() - start, notes, chip)


def load(path: str | Path) -> nir.NIRGraph:
    return nir_io.read(path)


def save(graph: nir.NIRGraph, path: str | Path) -> None:
    nir_io.write(graph, path)


def quantize_inputs(graph: nir.NIRGraph, images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> the integers the input node injects every step."""
    name = input_name(graph)
    meta = get_node_meta(graph.nodes[name], InputMeta, name)
    x = np.asarray(images)
    if x.dtype.kind not in "biuf":
        raise InputError(f"inputs must be numbers, got {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        high = (1 << meta.bits) - 1
        if x.size and (x.min() < 0 or x.max() > high):  # int32 would wrap them
            raise InputError(f"integer inputs must lie in [0, {high}] (the {meta.bits}-bit "
                             f"input), got values from {x.min()} to {x.max()}",
                             hint="Give floats in [0, 1] to have them quantized")
        return x.astype(np.int32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InputError("float inputs must be finite and in [0, 1]")
    return np.round(x / meta.scale).astype(np.int32)


def simulate(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int | None = None, *,
             backend: str = "reference", record: Record = Record.ALL) -> Trace:
    """Run a batch (float images in [0, 1] or integers) for one window of T steps."""
    steps = timesteps or get_graph_meta(graph).timesteps
    return get_backend(backend).run(graph, quantize_inputs(graph, inputs), steps, record=record)


def predict(graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int | None = None, *,
            backend: str = "reference", show_progress: bool = True
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Readout (batch, n_out) and spike events per neuron of any number of samples, run in
    batches so memory stays bounded (``simulate`` keeps every step of every sample)."""
    steps = timesteps or get_graph_meta(graph).timesteps
    batch = eval_batch_size(graph, steps)
    engine = get_backend(backend)
    outputs, events = [], {}
    for start in progress(range(0, len(inputs), batch), "simulate", show_progress):
        x = quantize_inputs(graph, inputs[start:start + batch])
        trace = engine.run(graph, x, steps, record=Record.COUNTS)
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
    try:
        return get_method(get_graph_meta(graph).method).window_specific
    except InputError:
        return False


def evaluate(graph: nir.NIRGraph, images: np.ndarray, labels: np.ndarray,
             timesteps: Sequence[int] | None = None, *, backend: str = "reference",
             show_progress: bool = True) -> dict[int, float]:
    """Accuracy for each window length (``default_windows`` when None). One run at the
    longest T suffices: the neuron rule is causal, so the readout after t steps is exactly
    the output of a t-step window."""
    steps = sorted(set(default_windows(graph) if timesteps is None else timesteps))
    if not steps or steps[0] < 1:
        raise InputError("timesteps must be positive integers")
    longest = steps[-1]
    batch = eval_batch_size(graph, longest)
    correct = dict.fromkeys(steps, 0)
    engine = get_backend(backend)
    for start in progress(range(0, len(images), batch), "evaluate", show_progress):
        x = quantize_inputs(graph, images[start:start + batch])
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


def evaluate_adaptive(graph: nir.NIRGraph, images: np.ndarray, labels: np.ndarray, *,
                      backend: str = "reference", show_progress: bool = True
                      ) -> AdaptiveResult:
    """Accuracy and mean timesteps with the network's calibrated early exit (``+iat``)."""
    from neurodeploy.methods.iat import confidence_steps, exit_steps, iat_thresholds

    thresholds = iat_thresholds(graph)
    steps = get_graph_meta(graph).timesteps
    batch = eval_batch_size(graph, steps)
    engine = get_backend(backend)
    hits = full_hits = 0
    taken_all = []
    for start in progress(range(0, len(images), batch), "evaluate", show_progress):
        x = quantize_inputs(graph, images[start:start + batch])
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


def ann_accuracy(ann: AnnGraph, images: np.ndarray, labels: np.ndarray,
                 alter: dict | None = None) -> float:
    """The float ANN's accuracy; ``alter`` changes node values on the way (``AnnGraph.run``)."""
    import torch

    hits = 0
    for start in range(0, len(images), 1000):
        out = ann.run(torch.as_tensor(images[start:start + 1000]), alter=alter)["output"]
        hits += int((out.argmax(1).numpy() == labels[start:start + 1000]).sum())
    return hits / len(images)


def _calibration_data(calib: str | np.ndarray | None, samples: int, seed: int
                      ) -> np.ndarray | None:
    if calib is None or isinstance(calib, np.ndarray):
        return calib
    return calibration_set(calib, samples, seed)


def eval_batch_size(graph: nir.NIRGraph, timesteps: int) -> int:
    """Samples per reference run that keep one population's window near EVAL_MEMORY_ELEMENTS."""
    largest = max(int(np.prod(n.output_type["output"])) for n in graph.nodes.values())
    return int(np.clip(EVAL_MEMORY_ELEMENTS // (timesteps * largest), 1, 2000))


def dataset(name: str, split: str = "test", limit: int | None = None):
    """Images and labels of a built-in dataset or an .npz file (see neurodeploy.data)."""
    from neurodeploy.data import load_dataset

    x, y = load_dataset(name, split=split, limit=limit)
    if y is None:
        raise InputError(f"{name}: has no labels (array 'y'), needed for accuracy")
    return x, y

"""The Python API; the CLI is a thin layer over these functions. The graph-level run
functions live in ``neurodeploy.simulation`` (the report uses them too) and are re-exported."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurodeploy import nir_io
from neurodeploy.convert import ConvertOptions
from neurodeploy.data import calibration_images, calibration_set
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.passes import quantize
from neurodeploy.simulation import (
    AdaptiveResult,
    default_windows,
    eval_batch_size,
    evaluate,
    evaluate_adaptive,
    quantize_inputs,
    simulate,
    window_specific,
)
from neurodeploy.targets import Target, load_target

__all__ = ["DEFAULT_CALIBRATION_SAMPLES", "AdaptiveResult", "CompileResult", "ImportResult",
           "ann_accuracy", "compile", "dataset", "default_windows", "eval_batch_size",
           "evaluate", "evaluate_adaptive", "import_nir", "load", "quantize_inputs", "save",
           "simulate", "window_specific"]

DEFAULT_CALIBRATION_SAMPLES = 512


@dataclass(frozen=True)
class CompileResult:
    graph: nir.NIRGraph
    ann: AnnGraph
    seconds: float  #: conversion + passes, excluding model and data loading
    notes: dict
    target: Target


def compile(model: Any, *, target: str | Target = "loihi2", method: str = "p99.99",
            calib: Any = None, timesteps: int = 4,
            calib_samples: int = DEFAULT_CALIBRATION_SAMPLES, arch: str | None = None,
            trust_pickle: bool = False, input_shape: tuple[int, ...] | None = None,
            options: ConvertOptions | None = None, allow_saturation: bool = False,
            capacity_check: bool = True, stop_after: str | None = None,
            dump_dir: str | Path | None = None, seed: int = 0,
            show_progress: bool = True) -> CompileResult:
    """PyTorch model -> quantized SNN as a NIR graph, checked against ``target``.

    ``model`` is an ``nn.Module`` (also scripted or ``torch.export``-ed) in memory, a file
    of one (see ``neurodeploy.frontend``), or an ``AnnGraph``. ``method`` is a ``+``-joined
    list of method stages (see ``neurodeploy.methods``); ``calib`` gives the unlabeled images
    methods calibrate on: a dataset name or .npz path (``calib_samples`` of them, drawn with
    ``seed``), an array or tensor, or a DataLoader (its first ``calib_samples`` images).
    ``seed`` also seeds every random choice of the stages. ``capacity_check=False`` records,
    instead of refusing, a network the target's cores cannot hold (``neurodeploy.capacity``).
    """
    if timesteps < 1:
        raise InputError(f"--timesteps must be at least 1, got {timesteps}")
    chip = target if isinstance(target, Target) else load_target(target)
    conversion = get_method(method)
    calib_x = calibration_images(calib, calib_samples, seed)
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
    named = isinstance(calib, str | os.PathLike)
    more = partial(calibration_set, os.fspath(calib), seed=seed) if named else None
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


def ann_accuracy(ann: AnnGraph, images: np.ndarray, labels: np.ndarray,
                 alter: dict | None = None) -> float:
    """The float ANN's accuracy; ``alter`` changes node values on the way (``AnnGraph.run``)."""
    import torch

    hits = 0
    for start in range(0, len(images), 1000):
        out = ann.run(torch.as_tensor(images[start:start + 1000]), alter=alter)["output"]
        hits += int((out.argmax(1).numpy() == labels[start:start + 1000]).sum())
    return hits / len(images)


def dataset(name: str, split: str = "test", limit: int | None = None):
    """Images and labels of a built-in dataset or an .npz file (see neurodeploy.data)."""
    from neurodeploy.data import load_dataset

    x, y = load_dataset(name, split=split, limit=limit)
    if y is None:
        raise InputError(f"{name}: has no labels (array 'y'), needed for accuracy")
    return x, y

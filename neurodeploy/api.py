"""The Python API; the CLI is a thin layer over it.

``compile`` (a PyTorch model) and ``import_nir`` (another tool's NIR graph) make a
``Deployment``, and ``load`` reads one from a .nir file; its methods simulate, evaluate,
verify, report and export it. The graph-level functions (``simulate``, ``evaluate``, ...)
are re-exported from ``neurodeploy.simulation`` for code that holds a bare NIR graph.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nir
import numpy as np

from neurodeploy import nir_io
from neurodeploy.backends import Backend, Record, Trace
from neurodeploy.backends.memory import (
    DEFAULT_MEMORY_BUDGET,
    check_budget,
    chunk_size,
    parse_memory,
)
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.conformance import check_spikes
from neurodeploy.core.encoding import quantize_inputs
from neurodeploy.core.meta import GraphMeta, get_graph_meta
from neurodeploy.data import (
    DATASETS,
    as_array,
    calibration_images,
    calibration_set,
    encodable_images,
    labelled,
    load_dataset,
)
from neurodeploy.errors import InputError, TargetError, whole_number
from neurodeploy.fileio import file_path
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.methods import DEFAULT_METHOD, MethodContext, get_method
from neurodeploy.methods.base import CALIBRATION_HINT
from neurodeploy.passes import DEFAULT_PIPELINE, quantize
from neurodeploy.shards import IN_PROCESS, Workers
from neurodeploy.simulation import (
    AdaptiveResult,
    check_windows,
    default_windows,
    encode,
    evaluate,
    evaluate_adaptive,
    input_shape,
    predict,
    random_inputs,
    simulate,
    simulate_to_file,
    window,
    window_specific,
)
from neurodeploy.targets import Target, available_targets, load_target
from neurodeploy.verify import Verification, run_and_compare

if TYPE_CHECKING:
    from neurodeploy.report.build import Report

__all__ = ["DEFAULT_CALIBRATION_SAMPLES", "DEFAULT_MEMORY_BUDGET", "DEFAULT_PIPELINE",
           "EXPORT_SUFFIXES", "AdaptiveResult", "ConvertOptions", "Deployment", "Workers",
           "ann_accuracy", "chunk_size", "compile", "dataset", "default_windows", "evaluate",
           "evaluate_adaptive", "import_nir", "list_targets", "load", "parse_memory", "predict",
           "quantize_inputs", "save", "simulate", "simulate_to_file", "window_specific"]

DEFAULT_CALIBRATION_SAMPLES = 512
#: export flavor -> the suffix a default output file name gets
EXPORT_SUFFIXES = {"standard": ".standard.nir", "netx": ".net"}


@dataclass(frozen=True)
class Deployment:
    """A compiled (integer) spiking network, ready to run, check and ship."""

    graph: nir.NIRGraph
    #: what it was compiled for; None when loaded from a file compiled for a target that is
    #: not shipped (``report`` then needs the target file)
    target: Target | None
    ann: AnnGraph | None = None  #: the float network it was compiled from (not in a .nir file)
    seconds: float = 0.0  #: conversion + passes, excluding model and data loading
    #: what the target cannot express exactly of a network from another tool (``import_nir``)
    approximations: list | None = None
    #: what compile found doubtful in what it was given (the compile summary prints them)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path, *, target: str | Path | Target | None = None
             ) -> Deployment:
        """Read a .nir file written by ``save``; ``target`` names the target file when the
        compiled one is not shipped."""
        graph = nir_io.read(path)
        if target is None:
            try:
                target = load_target(get_graph_meta(graph).target)
            except TargetError:
                pass  # report() asks for it; nothing else needs the target file
        return cls(graph, _target(target))

    @property
    def meta(self) -> GraphMeta:
        """Window, method, target name and the other graph facts."""
        return get_graph_meta(self.graph)

    @property
    def notes(self) -> dict:
        """What each pass changed (kept in the graph's metadata)."""
        return self.meta.notes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return input_shape(self.graph)

    def save(self, path: str | Path) -> None:
        nir_io.write(self.graph, path)

    def simulate(self, inputs: Any, timesteps: int | None = None, *,
                 backend: str = "reference", record: Record = Record.ALL) -> Trace:
        """One window on a batch (or one sample): float images in [0, 1] or integers."""
        return simulate(self.graph, inputs, timesteps, backend=backend, record=record)

    def predict(self, inputs: Any, timesteps: int | None = None, *, backend: str = "reference",
                show_progress: bool = True, memory_budget: int = DEFAULT_MEMORY_BUDGET
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Readouts and spike counts of any number of samples, in chunks whose runs hold at
        most ``memory_budget`` bytes."""
        return predict(self.graph, inputs, timesteps, backend=backend,
                       show_progress=show_progress, memory_budget=memory_budget)

    def simulate_to_file(self, inputs: Any, path: str | Path, timesteps: int | None = None, *,
                         backend: str = "reference", record: Record = Record.ALL,
                         show_progress: bool = True,
                         memory_budget: int = DEFAULT_MEMORY_BUDGET
                         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Any number of samples, their full trace streamed to the .npz ``path`` chunk by
        chunk (``Trace.load``); returns readouts and spike counts."""
        return simulate_to_file(self.graph, inputs, path, timesteps, backend=backend,
                                record=record, show_progress=show_progress,
                                memory_budget=memory_budget)

    def evaluate(self, images: Any, labels: Any, timesteps: int | list[int] | None = None, *,
                 backend: str = "reference", show_progress: bool = True,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: Workers = IN_PROCESS
                 ) -> dict[int, float]:
        """Accuracy per window length (default: ``default_windows``), in chunks within
        ``memory_budget`` bytes, on ``workers`` (a local Ray or a cluster: docs/ray.md)."""
        return evaluate(self.graph, images, labels, timesteps, backend=backend,
                        show_progress=show_progress, memory_budget=memory_budget,
                        workers=workers)

    def evaluate_adaptive(self, images: Any, labels: Any, *, backend: str = "reference",
                          show_progress: bool = True,
                          memory_budget: int = DEFAULT_MEMORY_BUDGET) -> AdaptiveResult:
        """Accuracy and mean timesteps with the early exit calibrated by ``+iat``."""
        return evaluate_adaptive(self.graph, images, labels, backend=backend,
                                 show_progress=show_progress, memory_budget=memory_budget)

    def ann_accuracy(self, images: Any, labels: Any, ann: Any = None,
                     arch: str | None = None) -> float:
        """The float model's accuracy: ``ann`` (a path, module or AnnGraph; ``arch`` for a
        state dict file), else the model this was compiled from."""
        return ann_accuracy(self._float_model(ann, arch), images, labels)

    def random_inputs(self, samples: int, seed: int = 0) -> np.ndarray:
        """Integer inputs drawn over the input's whole range (verifying needs no dataset)."""
        return random_inputs(self.graph, samples, seed)

    def verify(self, inputs: Any, *, backend: str | Backend = "lava",
               timesteps: int | None = None, workers: Workers = IN_PROCESS) -> Verification:
        """Run ``backend`` and the reference simulator on ``inputs`` and compare every spike
        and membrane; the result names the first divergence (``neurodeploy.testing`` turns
        it into a test failure). ``workers`` shards the samples (docs/ray.md)."""
        steps = window(self.graph, timesteps)
        return run_and_compare(self.graph, encode(self.graph, inputs), steps, backend=backend,
                               workers=workers)

    def report(self, images: Any, labels: Any, *, ann: Any = None, arch: str | None = None,
               timesteps: int | list[int] | None = None,
               target: str | Path | Target | None = None,
               network: str = "", dataset: str = "", show_progress: bool = True,
               memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Report:
        """The deployment report on labelled images (``Report.write`` saves it). The SNN is
        compared with ``ann`` or the model this was compiled from; without either, with the
        rate network rebuilt from the compiled integers (docs/report.md)."""
        from neurodeploy.report.build import build_report
        from neurodeploy.report.reference import EquivalentReference, ModelReference

        chip = _target(target) or self.target
        if chip is None:
            raise TargetError(f"the network was compiled for target '{self.meta.target}', "
                              "which is not a shipped target",
                              hint="Pass the .toml file it was compiled for (target=, "
                                   "--target)")
        if ann is None and self.ann is None:
            reference = EquivalentReference(self.graph)
        else:
            named = f" {ann}" if isinstance(ann, str | os.PathLike) else ""
            reference = ModelReference(self._float_model(ann, arch), self.graph,
                                       f"the float model{named}")
        return build_report(self.graph, as_array(images), as_array(labels), target=chip,
                            reference=reference,
                            timesteps=None if timesteps is None else check_windows(timesteps),
                            network=network, dataset=dataset, show_progress=show_progress,
                            memory_budget=memory_budget)

    def export(self, path: str | Path, flavor: str = "standard") -> list[str]:
        """Write the network for another tool (``EXPORT_SUFFIXES``); returns one warning per
        feature the format cannot express (docs/interop.md)."""
        if flavor == "standard":
            from neurodeploy.interop.standard import write_standard

            return write_standard(self.graph, path)
        if flavor == "netx":
            from neurodeploy.interop.netx import to_netx

            return to_netx(self.graph, path)
        raise InputError(f"unknown export flavor '{flavor}'",
                         hint=f"Use one of: {', '.join(EXPORT_SUFFIXES)}")

    def summary(self, path: str | Path) -> dict:
        """What `neurodeploy compile` prints: resources, bounds, capacity ("text" renders it)."""
        from neurodeploy.summary import compile_summary

        return compile_summary(self, file_path(path))

    def _float_model(self, ann: Any, arch: str | None = None) -> AnnGraph:
        """``ann`` as an AnnGraph, refused if the network was not compiled from it; the
        model this was compiled from when None."""
        if ann is None and self.ann is not None:
            return self.ann
        from neurodeploy.frontend import SHAPE_HINT, load_model
        from neurodeploy.report.reference import check_compiled_from

        if not isinstance(ann, AnnGraph):
            try:
                ann = load_model(ann, arch=arch, input_shape=self.input_shape)
            except InputError as err:  # its hint offered an --input-shape these lack
                if err.hint != SHAPE_HINT:
                    raise
                raise InputError(f"the float model (ann=, --ann) does not take the network's "
                                 f"input: {err.message}",
                                 hint="Give the model the network was compiled from") from None
        check_compiled_from(ann, self.graph)
        return ann


def _keeps_torch_random_state(function: Callable[..., Deployment]
                              ) -> Callable[..., Deployment]:
    """Stages seed and draw from torch's global generator; the caller's seeded stream (a
    notebook's training) must continue after a compile as it would have without it."""
    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Deployment:
        import torch

        with torch.random.fork_rng(devices=[]):
            return function(*args, **kwargs)
    return wrapper


@_keeps_torch_random_state
def compile(model: Any, *, target: str | Path | Target = "loihi2", method: str = DEFAULT_METHOD,
            calib: Any = None, timesteps: int = 4,
            calib_samples: int = DEFAULT_CALIBRATION_SAMPLES, arch: str | None = None,
            trust_pickle: bool = False, input_shape: tuple[int, ...] | None = None,
            options: ConvertOptions | None = None, allow_saturation: bool = False,
            capacity_check: bool = True, stop_after: str | None = None,
            dump_dir: str | Path | None = None, seed: int = 0,
            show_progress: bool = True, memory_budget: int = DEFAULT_MEMORY_BUDGET
            ) -> Deployment:
    """PyTorch model -> quantized SNN as a NIR graph, checked against ``target``.

    ``model`` is an ``nn.Module`` (also scripted or ``torch.export``-ed) in memory, a file
    of one (see ``neurodeploy.frontend``), or an ``AnnGraph``. ``method`` is a ``+``-joined
    list of method stages (see ``neurodeploy.methods``); ``calib`` gives the unlabeled images
    methods calibrate on: a dataset name or .npz path (``calib_samples`` of them, drawn with
    ``seed``), an array or tensor, or a DataLoader (its first ``calib_samples`` images).
    ``seed`` also seeds every random choice of the stages. ``capacity_check=False`` records,
    instead of refusing, a network the target's cores cannot hold (``neurodeploy.capacity``).
    ``memory_budget`` bounds the bytes a simulator run on calibration images holds.
    """
    whole_number(timesteps, "timesteps")
    whole_number(calib_samples, "calib_samples")
    whole_number(seed, "seed", least=0)
    check_budget(memory_budget)
    if not isinstance(options, ConvertOptions | None):
        raise InputError(f"options must be a ConvertOptions, got {type(options).__name__}",
                         hint="neurodeploy.convert.ConvertOptions(max_burst=2, ...)")
    chip = target if isinstance(target, Target) else load_target(target)  # None: refused
    opts = replace(options or ConvertOptions(), timesteps=timesteps)
    check_spikes(opts.max_burst, opts.dual, "options", chip)
    conversion = get_method(method)
    calib_x = calibration_images(calib, calib_samples, seed)
    if conversion.needs_calibration and calib_x is None:
        raise InputError(f"method '{conversion.name}' needs calibration data",
                         hint=CALIBRATION_HINT)
    shape_given = input_shape is not None
    shape_of_calib = not shape_given and calib_x is not None
    a_dataset = isinstance(calib, str) and calib in DATASETS  # batched, whatever the count
    if shape_of_calib and (len(calib_x) > 1 or a_dataset):  # one sample of the user's own may
        input_shape = tuple(calib_x.shape[1:])  # lack its batch axis (x[0])
    if not isinstance(model, AnnGraph):
        from neurodeploy.frontend import load_model

        model = load_model(model, arch=arch, trust_pickle=trust_pickle, input_shape=input_shape,
                           shape_of="the calibration images (calib=, --calib)"
                           if shape_of_calib else None)
    ann = model
    if calib_x is not None and tuple(calib_x.shape[1:]) != ann.input_shape:
        says = "input_shape (--input-shape) is" if shape_given else "the model expects"
        raise InputError(f"calibration data has shape {tuple(calib_x.shape[1:])}, {says} "
                         f"{ann.input_shape}")
    start = time.perf_counter()
    named = isinstance(calib, str | os.PathLike)
    more = partial(calibration_set, os.fspath(calib), seed=seed) if named else None
    graph = conversion.convert(MethodContext(ann=ann, calib=calib_x, options=opts, target=chip,
                                             seed=seed, show_progress=show_progress,
                                             more_calibration=more,
                                             memory_budget=memory_budget))
    graph = quantize(graph, chip, allow_saturation=allow_saturation,
                     capacity_check=capacity_check, stop_after=stop_after, dump_dir=dump_dir)
    return Deployment(graph, chip, ann, time.perf_counter() - start,
                      warnings=_calibration_warnings(calib_x))


def _calibration_warnings(images: np.ndarray | None) -> list[str]:
    """Copies of one image set every threshold for that input alone; the network compiles
    and is wrong on everything else."""
    if images is None or len(images) < 2 or not (images == images[0]).all():
        return []
    return [f"the {len(images)} calibration images are all the same image: every threshold "
            "fits that one input (calibrate on samples of the data the network will run on)"]


def import_nir(path: str | Path | nir.NIRGraph, *, target: str | Path | Target = "loihi2",
               dt: float, timesteps: int = 4, reset: str = "zero", events: bool = False,
               allow_saturation: bool = False, capacity_check: bool = True) -> Deployment:
    """A NIR graph written by another tool -> quantized SNN for ``target``.

    ``dt`` discretizes NIR's continuous-time neurons (use the step the exporting tool
    simulates with); ``reset`` is "zero" (NIR's reset to v_reset = 0) or "subtract" (for
    tools that export v_reset = 0 but reset by subtraction). ``events``: the inputs are
    event counts or spikes, one integer per event (``encoding.EVENT_INPUT``), not values in
    [0, 1]. See docs/interop.md.
    """
    from neurodeploy.interop.approximations import rounding_rows
    from neurodeploy.interop.nir_import import import_graph, read_foreign

    whole_number(timesteps, "timesteps")
    chip = _target(target)
    foreign = path if isinstance(path, nir.NIRGraph) else read_foreign(path)
    start = time.perf_counter()
    graph, approximations = import_graph(foreign, dt=dt, reset=reset, timesteps=timesteps,
                                         events=events)
    graph = quantize(graph, chip, allow_saturation=allow_saturation,
                     capacity_check=capacity_check)
    rows = approximations + rounding_rows(get_graph_meta(graph).notes,
                                          chip.weights.mantissa_bits)
    return Deployment(graph, chip, None, time.perf_counter() - start, rows)


def load(path: str | Path, *, target: str | Path | Target | None = None) -> Deployment:
    """A compiled .nir file as a Deployment (``Deployment.load``)."""
    return Deployment.load(path, target=target)


def save(graph: nir.NIRGraph, path: str | Path) -> None:
    nir_io.write(graph, path)


def list_targets() -> list[Target]:
    """Every shipped target (``neurodeploy/target_files/*.toml``)."""
    return [load_target(name) for name in available_targets()]


def ann_accuracy(ann: AnnGraph, images: np.ndarray, labels: np.ndarray,
                 alter: dict | None = None) -> float:
    """The float ANN's accuracy; ``alter`` changes node values on the way (``AnnGraph.run``).
    Images and labels are checked as ``evaluate`` checks them."""
    import torch

    images, labels = labelled(images, labels, ann.shapes()[ann.output][-1])
    if images.shape[1:] != ann.input_shape:
        raise InputError(f"images have shape {images.shape}, the model takes "
                         f"(N, {', '.join(map(str, ann.input_shape))})")
    images = encodable_images(images, "images")
    hits = 0
    for start in range(0, len(images), 1000):
        out = ann.run(torch.as_tensor(images[start:start + 1000]), alter=alter)["output"]
        hits += int((out.argmax(1).numpy() == labels[start:start + 1000]).sum())
    return hits / len(images)


def dataset(name: str | os.PathLike, split: str = "test", limit: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a built-in dataset or an .npz file (see neurodeploy.data)."""
    x, y = load_dataset(name, split=split, limit=limit)
    if y is None:
        raise InputError(f"{name}: has no labels, needed for accuracy",
                         hint="Give an .npz file with the images as x and the labels as y")
    return x, y


def _target(target: str | Path | Target | None) -> Target | None:
    return target if target is None or isinstance(target, Target) else load_target(target)

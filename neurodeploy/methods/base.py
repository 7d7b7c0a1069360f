"""The method contract: how a conversion method turns an ANN into a float SNN graph.

A method is a sequence of *stages*, written on the command line as a ``+``-joined list
(``calibrate+ftbc``, ``adafire+iat``). Rules every stage meets:

1. The first stage *builds* the SNN from the ANN (``builds = True``): it chooses thresholds
   and neuron options and returns a float neurodeploy NIR graph (``convert.to_snn``). Every
   later stage *refines* a graph (``builds = False``): it returns a new graph with changed
   parameters (bias, ``v_init``, ``max_burst``, thresholds, bias tables, metadata notes) and
   leaves its input untouched, like a pass (``passes.base.copy_graph`` and
   ``update_populations`` build the new graph). A method that names no builder starts from
   the default threshold statistic.
2. Stages take everything from the ``MethodContext``: the ANN, unlabeled calibration images,
   conversion options, the target and a seed. They never read labels: calibration is
   unsupervised, so it can use any unlabeled data the user has.
3. To measure the SNN a stage uses ``methods.probe``, which quantizes the graph for the target
   and runs the exact reference simulator: corrections computed that way also correct the
   integer rounding the deployed network will have. A stage that changes one layer at a time
   measures through ``methods.deployed`` (the same spikes, each layer re-run only when it or
   what feeds it changed).
4. A stage records what it chose (searched thresholds, burst sizes, calibration statistics)
   under its name in the graph's ``GraphMeta.notes``, so an artifact says how it was made.
5. Long work shows a progress bar (``neurodeploy.progress``) and is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import nir
import numpy as np

from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.meta import get_graph_meta, set_graph_meta
from neurodeploy.errors import InputError
from neurodeploy.frontend.ann import AnnGraph
from neurodeploy.targets import Target

CALIBRATION_HINT = ("Pass calib= (--calib): images, a DataLoader or a dataset (e.g. digits, "
                    "fashion-mnist, x.npz). Every method chooses its thresholds on data, "
                    "except qcfs on a model fine-tuned for it (finetune)")


@dataclass(frozen=True)
class MethodContext:
    ann: AnnGraph
    calib: np.ndarray | None  #: unlabeled float images in [0, 1], NCHW (None: no data given)
    options: ConvertOptions
    target: Target
    seed: int = 0
    show_progress: bool = True
    #: (n, skip) -> n images of the same unlabeled source after its first ``skip`` (``calib``
    #: is its first ``len(calib)``), for a stage that needs more than ``calib`` or images no
    #: other stage saw (None: ``calib`` is all there is)
    more_calibration: Callable[..., np.ndarray] | None = None
    #: bytes a simulator run on calibration images may hold (``backends.memory``)
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def calibration(self, stage: str, samples: int = 0) -> np.ndarray:
        """The calibration images, at least ``samples`` of them where the source has more;
        a readable error naming the stage when there are none."""
        if self.calib is None:
            raise InputError(f"method stage '{stage}' needs calibration data",
                             hint=CALIBRATION_HINT)
        if samples <= len(self.calib) or self.more_calibration is None:
            return self.calib
        return self.more_calibration(samples)

    def unseen(self, stage: str, samples: int, skip: int) -> np.ndarray | None:
        """Up to ``samples`` images of the source beyond its first ``skip`` (the ones the
        stages calibrate on), to score their result honestly; None when the source has no
        more (an array was given, or a small dataset is used up)."""
        self.calibration(stage)
        if self.more_calibration is None:
            return None
        images = self.more_calibration(samples, skip=skip)
        return images if len(images) else None


def seeded_subset(images: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """At most ``samples`` of ``images``, drawn with ``seed``, in their order (all of them,
    in order, when there are no more)."""
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.permutation(len(images))[:samples])]


class Stage(Protocol):
    name: str
    builds: bool  #: chooses thresholds and builds the SNN (first stage only)
    needs_calibration: bool
    #: calibrated for the compiled window T (a correction, a table, exit thresholds): the
    #: network runs other windows, but a fair comparison compiles one per window
    window_specific: bool

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph: ...


@dataclass(frozen=True)
class Method:
    """A validated sequence of stages; ``name`` is the canonical ``+``-joined spelling."""

    stages: tuple[Stage, ...]

    @property
    def name(self) -> str:
        return "+".join(stage.name for stage in self.stages)

    @property
    def needs_calibration(self) -> bool:
        return any(stage.needs_calibration for stage in self.stages)

    @property
    def window_specific(self) -> bool:
        return any(stage.window_specific for stage in self.stages)

    def convert(self, ctx: MethodContext) -> nir.NIRGraph:
        graph = None
        for stage in self.stages:
            graph = stage(graph, ctx)
        set_graph_meta(graph, replace(get_graph_meta(graph), method=self.name))
        return graph


def compose(stages: Sequence[Stage], default_builder: Stage, spec: str) -> Method:
    """Check the order (one builder, first) and prepend ``default_builder`` if none."""
    builders = [s.name for s in stages if s.builds]
    if len(builders) > 1:
        raise InputError(f"method '{spec}' chooses thresholds twice ({' and '.join(builders)})",
                         hint="Name at most one of them, first")
    if builders and not stages[0].builds:
        raise InputError(f"method '{spec}': '{builders[0]}' chooses the thresholds, so it must "
                         "come first", hint=f"Write {builders[0]}+... instead")
    if not builders:
        stages = (default_builder, *stages)
    names = [s.name for s in stages]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"method '{spec}' names '{repeated[0]}' twice")
    early = [s.name for s in stages[:-1] if getattr(s, "last", False)]
    if early:
        raise InputError(f"method '{spec}': '{early[0]}' measures the finished network, so it "
                         "must come last", hint=f"Write ...+{early[0]} instead")
    return Method(tuple(stages))
